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
# End-to-end tests mostly wait (for dockerd, Podman, etcd, timeouts): E2E_JOBS of them run at
# once (default 2), each in namespaces of its own; results print as they end.
pending=()
report() {	# report NAME: the result of a background test, once it ended
	local name=$1 log rc secs
	log="$logs/$(echo "$name" | tr '/' '_').log"
	read -r rc secs <"$log.rc"
	rm -f "$log.rc"
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1)); printf 'PASS %-40s %3ds\n' "$name" "$secs"
	else
		fail=$((fail + 1)); failed="$failed $name"
		printf 'FAIL %-40s %3ds\n' "$name" "$secs"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
}
reap() {	# reap N: wait until at most N background tests run, reporting those that ended
	local n keep
	while :; do
		keep=()
		for n in "${pending[@]}"; do
			if [ -e "$logs/$(echo "$n" | tr '/' '_').log.rc" ]; then report "$n"; else keep+=("$n"); fi
		done
		pending=("${keep[@]}")
		[ "${#pending[@]}" -le "$1" ] && return
		wait -n 2>/dev/null || sleep 1
	done
}
result() {	# result NAME CMD...: run CMD, its exit code and seconds in NAME's .rc file
	local name=$1 t0=$SECONDS; shift
	local log="$logs/$(echo "$name" | tr '/' '_').log"
	"$@" >"$log" 2>&1
	echo "$? $((SECONDS - t0))" >"$log.rc.tmp" && mv "$log.rc.tmp" "$log.rc"
}
run_bg() {	# run_bg NAME CMD...: like run, E2E_JOBS at a time
	local name=$1; shift
	case "$name" in *"${ONLY:-}"*) ;; *) return ;; esac
	reap $(( ${E2E_JOBS:-2} - 1 ))
	rm -f "$logs/$(echo "$name" | tr '/' '_').log.rc"
	result "$name" "$@" &
	pending+=("$name")
}

# The fuzz harnesses, a short bounded run each (FUZZ_SECONDS, default 12), one after another
# beside the end-to-end tests: they use a CPU while those mostly wait.
fuzz=()
for t in tests/fuzz/*.c; do
	t=${t##*/} && case "fuzz/${t%.c}" in *"${ONLY:-}"*) fuzz+=("fuzz/${t%.c}") ;; esac
done
for n in "${fuzz[@]}"; do rm -f "$logs/$(echo "$n" | tr '/' '_').log.rc"; done
(for n in "${fuzz[@]}"; do result "$n" tests/fuzz/run.sh "${n#fuzz/}"; done) &

for t in tests/conformance/run.sh tests/deploy.sh; do
	[ -x "$t" ] && run "${t#tests/}" "$t"
done
for t in tests/e2e/[0-9]*.sh; do
	[ -x "$t" ] && run_bg "${t#tests/}" "$t"
done
# moatd built with AddressSanitizer and UndefinedBehaviorSanitizer through the main end-to-end
# tests (a report fails the test: tests/e2e/lib.sh reads moatd.log)
for t in tests/e2e/30-moatd-enforce.sh tests/e2e/40-flows.sh tests/e2e/81-web-scale.sh; do
	run_bg "e2e-san/${t#tests/e2e/}" env MOAT_BUILD="$PWD/build-san" "$t"
done
pending+=("${fuzz[@]}")
reap 0
run lint make --no-print-directory lint

[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
