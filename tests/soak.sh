#!/bin/bash
# `make soak`: the fault and churn tests at their long scale (100 restarts of moatd, 20
# kill -9s, 200 containers churned, 300 churned while moatd is paused and dockerd restarted)
# and a 10-minute soak of churn and traffic with moatd's RSS and fds sampled. Needs root.
# Prints each test's FIGURES line and the closing line "N passed, N failed".
# MOAT_BUILD=DIR for binaries built with make B=DIR (default build/).
set -u
cd "$(dirname "$0")/.."
logs=${MOAT_BUILD:-build}/test-logs
mkdir -p "$logs"
pass=0 fail=0
for t in tests/e2e/60-restarts.sh tests/e2e/61-churn.sh; do
	name=${t##*/}
	log=$logs/soak-${name%.sh}.log
	t0=$SECONDS
	if MOAT_SOAK=1 "$t" >"$log" 2>&1; then
		pass=$((pass + 1)); printf 'PASS %-30s %4ds\n' "$name" $((SECONDS - t0))
	else
		fail=$((fail + 1)); printf 'FAIL %-30s %4ds\n' "$name" $((SECONDS - t0))
		grep -v '^time=' "$log" | tail -n 40 | sed 's/^/    | /'
	fi
	grep -h 'FIGURES\|^# probe\|RSS' "$log" | sed 's/^/    /'
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
