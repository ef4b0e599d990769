#!/bin/sh
# Runs every benchmark built into $B/tests/bench (default build/). Prints figures; the
# targets (compile < 100 ms, plan < 64 MiB for 10,000 endpoints and 1,000 policies) are read
# by people, not asserted: timing on shared machines is noise for a pass/fail test.
set -e
cd "$(dirname "$0")/../.."
B=${B:-build}
for t in "$B"/tests/bench/*; do
	case "$t" in *.o|*.d) continue ;; esac
	[ -x "$t" ] && [ -f "$t" ] || continue
	echo "== ${t##*/}"
	"$t"
done
# Scripted benchmarks on real namespaces (root; they say so and skip otherwise).
echo "== flows.sh"
B=$B tests/bench/flows.sh
echo "== enforce.sh"
B=$B tests/bench/enforce.sh
echo "== events.sh"
B=$B tests/bench/events.sh
echo "== matrix.sh"
B=$B tests/bench/matrix.sh
echo "== dns.sh"
B=$B tests/bench/dns.sh
echo "== cluster.sh"
B=$B tests/bench/cluster.sh
echo "== docker_node.sh"
B=$B tests/bench/docker_node.sh
