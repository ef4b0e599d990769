#!/bin/bash
# The live matrix (root): moatd --runtime none with 1,000 endpoints, `moat policy matrix` on
# 64 ports (64 million verdicts), output to /dev/null. Two endpoint sets: 100 services of 10
# replicas (one ingress policy each), and 1,000 endpoints that no two verdicts treat alike
# (a policy per endpoint: the worst case for the matrix's classes). Prints, side by side,
# moatd's peak RSS before and after, the time moatd takes its snapshot (its loop is busy for
# that long), the snapshot's bytes, and the CLI's wall time and peak RSS. Asserts nothing.
# MATRIX_BENCH_BEFORE=DIR also runs DIR/moatd and DIR/moat (a build from before the stream)
# on 200 endpoints of the first kind: it builds the whole matrix as JSON (GBs: opt-in).
#
#   netns $P: moatd --runtime none --endpoints eps.yaml; moat on the host side of its socket
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "matrix bench: needs root; skipped"; exit 0; }
[ -x "$B/moatd" ] && [ -x "$B/moat" ] || { echo "matrix bench: build $B first"; exit 1; }
P=moatmx${$}
D=$(mktemp -d /tmp/moat-matrix-bench.XXXXXX)
MOATD_PID=

cleanup() {
	[ -n "$MOATD_PID" ] && kill "$MOATD_PID" 2>/dev/null && wait "$MOATD_PID" 2>/dev/null
	ip netns del "$P" 2>/dev/null || true
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$P"
ip netns exec "$P" ip link set lo up

# gen KIND N DIR - endpoints and policies: "services" (N/10 services of 10 replicas) or
# "distinct" (a policy per endpoint).
gen() {
	mkdir -p "$3/policies"
	python3 - "$@" <<'EOF'
import sys
kind, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = n // 10 if kind == "services" else n
pol = ("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
       "metadata: {name: p%d, namespace: ns%d}\nspec:\n  podSelector: {matchLabels: {app: s%d}}\n"
       "  ingress:\n    - from: [{podSelector: {matchLabels: {app: s%d}}, namespaceSelector: {}},"
       " {podSelector: {matchLabels: {app: s%d}}, namespaceSelector: {}}]\n"
       "      ports: [{port: 1001}, {port: 1010, endPort: 1020}]\n")
with open(d + "/eps.yaml", "w") as f:
    f.write("endpoints:\n")
    for i in range(n):
        f.write("  - {name: e%d, namespace: ns%d, labels: {app: s%d}, ips: [10.1.%d.%d]}\n"
                % (i, i % s % 5, i % s, i // 250, i % 250 + 1))
with open(d + "/policies/p.yaml", "w") as f:
    for k in range(s):
        f.write(pol % (k, k % 5, k, (k + 1) % s, (k + 7) % s))
EOF
}

PORTS=()
for p in $(seq 1001 1064); do PORTS+=(--port "$p/tcp"); done
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$MOATD_PID/status"; }

# run LABEL BUILD KIND N - one moatd, one matrix, one line of figures.
run() {
	local label=$1 b=$2 kind=$3 n=$4 dir=$D/$3-$4 before after t0 t1 snap bytes cli
	[ -d "$dir" ] || gen "$kind" "$n" "$dir"
	rm -rf "$dir/state"
	ip netns exec "$P" "$b/moatd" --config /dev/null --runtime none --endpoints "$dir/eps.yaml" \
		--policy-dir "$dir/policies" --socket "$dir/moatd.sock" --state-dir "$dir/state" \
		--resync-interval 0 --log-level debug >"$dir/moatd.log" 2>&1 &
	MOATD_PID=$!
	for _ in $(seq 100); do
		"$b/moat" --socket "$dir/moatd.sock" status 2>/dev/null | grep -q "^endpoints  *$n$" && break
		sleep 0.1
	done
	before=$(hwm)
	t0=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$dir/cli.rss" "$b/moat" --socket "$dir/moatd.sock" policy matrix \
		"${PORTS[@]}" >/dev/null 2>"$dir/cli.err" || { echo "  $label: failed: $(tail -1 "$dir/cli.err")"; }
	t1=$(date +%s%N)
	after=$(hwm)
	snap=$(sed -n 's/.*matrix: .* taken in \([0-9]*\) us (\([0-9]*\) bytes).*/\1 \2/p' "$dir/moatd.log")
	printf '  %-34s %6d kB  %8d kB  %9s  %10s  %7.1f s  %7s kB\n' "$label" "$before" "$after" \
		"${snap:+$(( ${snap% *} / 1000 )) ms}" "${snap#* }" "$(( (t1 - t0) / 1000000 ))e-3" \
		"$(tail -1 "$dir/cli.rss")"
	kill "$MOATD_PID"
	wait "$MOATD_PID" 2>/dev/null || true
	MOATD_PID=
}

echo "live matrix, 64 ports; moatd peak RSS before and after, its snapshot, the CLI"
printf '  %-34s %9s  %11s  %9s  %10s  %9s  %10s\n' "" "moatd pre" "moatd post" "snapshot" \
	"snap bytes" "CLI wall" "CLI RSS"
run "1,000 endpoints, 100 services" "$B" services 1000
run "1,000 endpoints, all distinct" "$B" distinct 1000
if [ -n "${MATRIX_BENCH_BEFORE:-}" ]; then
	run "before: 200 endpoints, 20 services" "$MATRIX_BENCH_BEFORE" services 200
	run "after:  200 endpoints, 20 services" "$B" services 200
fi
