#!/bin/bash
# Cluster benchmark (issue 15): one real moatd and a load generator that publishes simulated
# nodes of 100 endpoints each into the same etcd (tests/bench/cluster_load.py). Prints, with
# the targets beside (never asserted: timing on a shared machine is noise for a test):
#   put -> kernel     from etcd's answer to a put (or delete) of one endpoint of another node
#                     to the kernel's notification of its ep4 element, at 1,000 and at 10,000
#                     endpoints of other nodes: p50 < 20 ms, p99 < 100 ms at 10,000
#   growth            per change, 10,000 against 1,000 (wall p50 and moatd's CPU): <= 1.5x
#   cold start        moatd started with 10,000 endpoints of others in etcd, to its first
#                     apply with all of them: < 2 s
#   RSS               moatd's with 10,000 endpoints of others: < 64 MiB
#
#   root namespace (never touched)
#   .........................................................................
#   netns $NS: etcd 127.0.0.1:2379 (its own data dir), moatd --runtime none --endpoints
#   (10 local endpoints in 10.64.0.0/24) --etcd http://127.0.0.1:2379, 20 policies pushed,
#   the load generator and the nftables listener
#
# Usage (root): B=build tests/bench/cluster.sh  (make bench runs it)
#   BENCH_CLUSTER_CHANGES=200 (put+delete pairs count 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${B:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
CHANGES=${BENCH_CLUSTER_CHANGES:-200}
[ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root; skipped"; exit 0; }
command -v etcd >/dev/null || { echo "cluster.sh: etcd is not installed (tests/deps.sh); skipped"; exit 0; }

D=$(mktemp -d /tmp/moat-bench-cluster.XXXXXX)
NS=moat-bc-${D##*.}
ETCD_PID= MOATD_PID=
# stop PID - TERM, KILL after 20 s; returns once it is gone.
stop() {
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
}
cleanup() {
	set +e
	for p in $MOATD_PID $(cat "$D/moatd.pid" 2>/dev/null) $ETCD_PID; do stop "$p"; done
	ip netns del "$NS" 2>/dev/null
	rm -rf --one-file-system "$D"
}
trap cleanup EXIT
inns() { nsenter --net=/var/run/netns/"$NS" "$@"; }
py() { inns python3 "$ROOT/tests/bench/cluster_load.py" "$@"; }
URL=http://127.0.0.1:2379

ip netns add "$NS"
inns ip link set lo up
nsenter --net=/var/run/netns/"$NS" etcd --name bench --data-dir "$D/etcd" \
	--listen-client-urls $URL --advertise-client-urls $URL \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster bench=http://127.0.0.1:2380 --log-level warn \
	</dev/null >"$D/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 100); do inns etcdctl --endpoints $URL endpoint health >/dev/null 2>&1 && break; sleep 0.1; done

mkdir -p "$D/pol" "$D/state"
{
	echo "subnets: [10.64.0.0/24]"
	echo "endpoints:"
	for j in $(seq 0 9); do echo "  - {name: l$j, labels: {app: app$j}, ips: [10.64.0.$((j + 1))]}"; done
} >"$D/endpoints.yaml"
for k in $(seq 0 19); do
	cat >"$D/pol/app$k.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: app$k-in}
spec:
  podSelector: {matchLabels: {app: app$k}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: app$(((k + 1) % 20))}}}]
      ports: [{port: http}]
EOF
done
inns "$B/moat" policy push --etcd $URL "$D/pol" >/dev/null
MOATD=("$B/moatd" --runtime none --endpoints "$D/endpoints.yaml" --etcd $URL --node-name self
       --socket "$D/moatd.sock" --state-dir "$D/state" --log-level warn)

# 1,000 endpoints of 10 nodes, moatd running
echo "load: $(py load $URL 0 10 100)"
# nsenter, not the inns function: $! is moatd itself
nsenter --net=/var/run/netns/"$NS" "${MOATD[@]}" </dev/null >>"$D/moatd.log" 2>&1 &
MOATD_PID=$!
for _ in $(seq 300); do
	[ "$(python3 "$ROOT/tests/bench/enforce_probe.py" status "$D/moatd.sock" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["remote_endpoints"])' 2>/dev/null)" = 1000 ] && break
	sleep 0.1
done
P1=$(py probe $URL "$D/moatd.sock" "$MOATD_PID" "$CHANGES")
echo "1,000 of others: $P1"

# 10,000 endpoints of 100 nodes
echo "load: $(py load $URL 10 90 100)"
for _ in $(seq 600); do
	[ "$(python3 "$ROOT/tests/bench/enforce_probe.py" status "$D/moatd.sock" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["remote_endpoints"])' 2>/dev/null)" = 10000 ] && break
	sleep 0.1
done
P2=$(py probe $URL "$D/moatd.sock" "$MOATD_PID" "$CHANGES")
echo "10,000 of others: $P2"
R1=$(py rss "$MOATD_PID")

# cold start with the 10,000 there
stop "$MOATD_PID"
MOATD_PID=
COLD=$(py cold "$D/moatd.sock" 10000 "$D/moatd.pid" "${MOATD[@]}")
MOATD_PID=$(cat "$D/moatd.pid")
R2=$(py rss "$MOATD_PID")

python3 - "$P1" "$P2" "$R1" "$COLD" "$R2" <<'EOF'
import json, sys
p1, p2, r1, cold, r2 = (json.loads(a) for a in sys.argv[1:])
ms = lambda us: "%.1f ms" % (us / 1000)
print("%-34s %-28s %s" % ("", "figure", "target"))
print("%-34s %-28s %s" % ("put -> kernel, 10,000 of others",
      "p50 %s, p99 %s" % (ms(p2["all"]["p50_us"]), ms(p2["all"]["p99_us"])), "p50 < 20 ms, p99 < 100 ms"))
print("%-34s %-28s %s" % ("put -> kernel, 1,000 of others",
      "p50 %s, p99 %s" % (ms(p1["all"]["p50_us"]), ms(p1["all"]["p99_us"])), ""))
print("%-34s %-28s %s" % ("growth 1,000 -> 10,000 per change",
      "wall p50 %.2fx, CPU %.2fx" % (p2["all"]["p50_us"] / max(p1["all"]["p50_us"], 1),
                                   p2["cpu_ms"] / max(p1["cpu_ms"], 0.001)), "<= 1.5x"))
print("%-34s %-28s %s" % ("moatd CPU per change", "%.2f ms (1,000), %.2f ms (10,000)"
      % (p1["cpu_ms"], p2["cpu_ms"]), ""))
print("%-34s %-28s %s" % ("cold start, 10,000 of others", "%d ms" % cold["cold_ms"], "< 2 s"))
print("%-34s %-28s %s" % ("moatd RSS, 10,000 of others", "%.1f MiB (after the load), %.1f MiB "
      "(cold start)" % (r1["rss_mib"], r2["rss_mib"]), "< 64 MiB"))
EOF
