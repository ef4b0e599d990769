#!/bin/bash
# Runs every test tier and prints one closing line "N passed, N failed".
# Each test is a program or script that exits 0 on success; its output goes to
# build/test-logs/NAME.log and is shown when it fails.
# ONLY=pattern runs the tests whose name contains pattern.
set -u
cd "$(dirname "$0")/.."
logs=build/test-logs
mkdir -p "$logs"
pass=0 fail=0 failed=""

run() {
	local name=$1; shift
	case "$name" in *"${ONLY:-}"*) ;; *) return ;; esac
	local log="$logs/$(echo "$name" | tr '/' '_').log" t0=$SECONDS
	if "$@" >"$log" 2>&1; then
		pass=$((pass + 1)); printf 'PASS %-40s %3ds\n' "$name" $((SECONDS - t0))
	else
		fail=$((fail + 1)); failed="$failed $name"
		printf 'FAIL %-40s %3ds\n' "$name" $((SECONDS - t0))
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
}

for t in build/tests/unit/*; do
	[ -x "$t" ] && [ -f "$t" ] && [ "${t%.d}" = "$t" ] && [ "${t%.o}" = "$t" ] && run "unit/${t##*/}" "$t"
done
for t in build-san/tests/unit/*; do
	[ -x "$t" ] && [ -f "$t" ] && [ "${t%.d}" = "$t" ] && [ "${t%.o}" = "$t" ] && run "unit-san/${t##*/}" "$t"
done
for t in tests/conformance/run.sh tests/deploy.sh tests/e2e/[0-9]*.sh; do
	[ -x "$t" ] && run "${t#tests/}" "$t"
done
# moatd built with AddressSanitizer and UndefinedBehaviorSanitizer through the main end-to-end
# tests (a report fails the test: tests/e2e/lib.sh reads moatd.log)
for t in tests/e2e/30-moatd-enforce.sh tests/e2e/40-flows.sh tests/e2e/81-web-scale.sh; do
	run "e2e-san/${t#tests/e2e/}" env MOAT_BUILD="$PWD/build-san" "$t"
done
for t in tests/fuzz/*.c; do	# a short bounded run of each harness (FUZZ_SECONDS, default 12)
	t=${t##*/} && run "fuzz/${t%.c}" tests/fuzz/run.sh "${t%.c}"
done
run lint make --no-print-directory lint

[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
