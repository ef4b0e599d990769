#!/bin/bash
# Runs libFuzzer harnesses: tests/fuzz/run.sh [NAME...] (default: every tests/fuzz/*.c).
# Each runs for FUZZ_SECONDS (default 12) on a scratch copy of tests/fuzz/NAME.corpus/, with
# tests/fuzz/NAME.dict when there is one, so new inputs never land in the repo; a crash
# leaves its input in $B_FUZZ/artifacts/ and fails. Builds the harnesses first (make
# fuzz-build into B_FUZZ, default build-fuzz). Prints each harness's executions
# (libFuzzer's stat::number_of_executed_units).
set -u
cd "$(dirname "$0")/../.."
B_FUZZ=${B_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-12}

make --no-print-directory -s B_FUZZ="$B_FUZZ" fuzz-build || exit 1
names=("$@")
[ ${#names[@]} -gt 0 ] || for f in tests/fuzz/*.c; do names+=("$(basename "$f" .c)"); done

scratch=$(mktemp -d /tmp/moat-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$B_FUZZ/artifacts"
fail=0
for n in "${names[@]}"; do
	bin=$B_FUZZ/tests/fuzz/$n
	mkdir -p "$scratch/$n"
	[ -d "tests/fuzz/$n.corpus" ] && cp -r "tests/fuzz/$n.corpus/." "$scratch/$n/"
	log=$scratch/$n.log
	dict=() && [ -f "tests/fuzz/$n.dict" ] && dict=(-dict="tests/fuzz/$n.dict")
	# -timeout: one input may take at most 10 s; -rss_limit_mb: the machine has 24 GiB.
	if "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$B_FUZZ/artifacts/$n-" "${dict[@]}" "$scratch/$n" \
		>"$log" 2>&1; then
		echo "fuzz $n: ok, $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") executions in ${FUZZ_SECONDS}s"
	else
		fail=1
		echo "fuzz $n: FAILED (input in $B_FUZZ/artifacts/$n-*)"
		grep -v '^#\|^INFO\|^stat::' "$log" | tail -n 60
	fi
done
exit $fail
