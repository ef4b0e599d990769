#!/bin/bash
# Observing under load (root): connection starts per second that moatd reads and learns,
# its CPU, and what the kernel dropped, while a client opens new connections as fast as one
# core can; moatd's CPU during a bulk TCP transfer (only connection starts are logged, so it
# should be ~0); the flow table's memory per flow from moatd's RSS. Prints figures; asserts
# nothing (timing on shared machines is noise).
#
#   netns $P-r: moatd --runtime none (endpoints file), forwarding, table inet moat
#        |  vc 10.88.1.1                      |  vs 10.88.2.1
#   netns $P-c: client 10.88.1.2          netns $P-s: server 10.88.2.2
#        flow_bench storm (UDP, new          drops the storm in prerouting;
#        5-tuple per datagram); iperf3 -c    iperf3 -s
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
SECONDS_RUN=${FLOWS_BENCH_SECONDS:-10}
CLIENTS=${FLOWS_BENCH_CLIENTS:-$(nproc)}	# storm processes (nice 19: moatd comes first), one source-port share each
[ "$(id -u)" = 0 ] || { echo "flows bench: needs root; skipped"; exit 0; }
[ -x "$B/moatd" ] && [ -x "$B/tests/bench/flow_bench" ] || { echo "flows bench: build $B first"; exit 1; }
P=moatfb${$}
D=$(mktemp -d /tmp/moat-flows-bench.XXXXXX)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for n in r c s; do ip netns del "$P-$n" 2>/dev/null || true; done
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
for n in r c s; do ip netns add "$P-$n"; in_ns "$n" ip link set lo up; done
in_ns r sysctl -qw net.ipv4.ip_forward=1
# A connection start every datagram: unreplied UDP entries leave conntrack after 1 s, so the
# table (nf_conntrack_max) holds the storm.
in_ns r sysctl -qw net.netfilter.nf_conntrack_udp_timeout=1 net.netfilter.nf_conntrack_udp_timeout_stream=1
ip -n "$P-r" link add vc type veth peer name eth0 netns "$P-c"
ip -n "$P-r" link add vs type veth peer name eth0 netns "$P-s"
in_ns r ip addr add 10.88.1.1/24 dev vc
in_ns r ip addr add 10.88.2.1/24 dev vs
in_ns r ip link set vc up
in_ns r ip link set vs up
for n in c s; do in_ns "$n" ip link set eth0 up; done
in_ns c ip addr add 10.88.1.2/24 dev eth0
in_ns s ip addr add 10.88.2.2/24 dev eth0
in_ns c ip route add default via 10.88.1.1
in_ns s ip route add default via 10.88.2.1
in_ns s nft -f - <<'EOF'
table ip sink {
	chain pre {
		type filter hook prerouting priority -400; policy accept;
		udp dport 5000-65000 drop
	}
}
EOF
cat >"$D/endpoints.yaml" <<'EOF'
endpoints:
  - {name: client, labels: {app: client}, ips: [10.88.1.2], ifaces: [vc]}
  - {name: server, labels: {app: server}, ips: [10.88.2.2], ifaces: [vs]}
EOF
mkdir -p "$D/policies" "$D/state"

MOAT() { "$B/moat" --socket "$D/moatd.sock" "$@"; }
ip netns exec "$P-r" "$B/moatd" --config /dev/null --runtime none --endpoints "$D/endpoints.yaml" \
	--policy-dir "$D/policies" --socket "$D/moatd.sock" --state-dir "$D/state" \
	--flow-cap "${FLOWS_BENCH_CAP:-65536}" --resync-interval 0 >"$D/moatd.log" 2>&1 &
MOATD=$!
PIDS+=("$MOATD")
for i in $(seq 50); do MOAT status >/dev/null 2>&1 && break; sleep 0.1; done
MOAT status >/dev/null || { cat "$D/moatd.log"; exit 1; }

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$MOATD/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$MOATD/status"; }
# status OBJ.FIELD... - figures of moat status -o json (capture.records, flows.count, ...).
# grep, not python: on a busy machine an interpreter's start-up would skew the timing.
status() {
	local j f v out=""
	j=$(MOAT status -o json | tr -d ' \n')
	for f in "$@"; do
		v=$(printf '%s' "$j" | grep -o "\"${f%%.*}\":{[^}]*}" | grep -o "\"${f#*.}\":[0-9]*")
		out="$out ${v#*:}"
	done
	echo $out
}
now() { date +%s.%N; }
wait_storms() { local j; for j in $(jobs -p); do [ "$j" = "$MOATD" ] || wait "$j"; done; }

# storm NAME NPORTS - one storm of SECONDS_RUN; prints sent, read and learned per second.
storm() {
	local name=$1 nports=$2 t0 t1 c0 c1 r0 r1 l0 l1 d0 d1 m0 m1 e1 sent
	read -r r0 l0 d0 <<<"$(status capture.records learning.records capture.drops)"
	c0=$(cpu_ticks) m0=$(rss_kib) t0=$(now)
	sent=0
	for k in $(seq 0 $((CLIENTS - 1))); do
		in_ns c nice -n 19 "$B/tests/bench/flow_bench" storm "$SECONDS_RUN" 10.88.2.2 "$nports" "$k" "$CLIENTS" \
			>"$D/storm.$k" &
	done
	wait_storms
	for k in $(seq 0 $((CLIENTS - 1))); do
		sent=$((sent + $(sed -n 's/^storm: sent \([0-9]*\) .*/\1/p' "$D/storm.$k")))
	done
	# moatd may lag behind (the socket buffer is large): the run ends when it has read all
	local prev=-1 cur
	for i in $(seq 300); do
		cur=$(status capture.records)
		[ "$cur" = "$prev" ] && break
		prev=$cur
		sleep 0.1
	done
	t1=$(now) c1=$(cpu_ticks) m1=$(rss_kib)
	read -r r1 l1 d1 e1 fl <<<"$(status capture.records learning.records capture.drops flows.evicted flows.count)"
	python3 - "$name" "$sent" "$t0" "$t1" "$r0" "$r1" "$l0" "$l1" "$d0" "$d1" "$c0" "$c1" "$TCK" "$m0" "$m1" "$e1" "$fl" "$SECONDS_RUN" <<'EOF'
import sys
(name, sent, t0, t1, r0, r1, l0, l1, d0, d1, c0, c1, tck, m0, m1, ev, fl, run) = sys.argv[1:]
dt, run = float(t1) - float(t0), float(run)
cpu = (int(c1) - int(c0)) / int(tck) / dt * 100
print(f"{name}:")
read = int(r1) - int(r0)
print(f"  sent by the clients     {int(sent) / run:>10,.0f}/s  new 5-tuples ({int(sent):,} in {run:.0f} s)")
print(f"  read by moatd           {read / run:>10,.0f}/s  connection starts ({read:,}, {100 * read / max(int(sent), 1):.1f}% of those sent; all read {dt - run:.1f} s after the storm)")
print(f"  learned                 {(int(l1) - int(l0)) / run:>10,.0f}/s  ({int(l1) - int(l0):,} moat_baseline_add calls)")
print(f"  dropped (pcap/ENOBUFS)  {int(d1) - int(d0):>10}   overruns over the run")
print(f"  moatd CPU               {cpu:>10.1f}%  of one core")
print(f"  flows in the table      {int(fl):>10,}   ({int(ev):,} evicted so far); RSS {int(m0):,} -> {int(m1):,} KiB")
if int(m1) > int(m0) and int(fl) > 1000:
    print(f"  RSS growth per flow     {(int(m1) - int(m0)) * 1024 / int(fl):>10.0f}   bytes (flow table + names + baseline)")
EOF
}

echo "== flows bench (${SECONDS_RUN}s per run, $CLIENTS storm clients; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg))"
storm "one service (16 ports), not learning" 16
MOAT learn start --selector app=client >/dev/null
storm "one service (16 ports), learning" 16
storm "60,000 distinct flows (ports 5000-64999), learning" 60000
MOAT learn stop >/dev/null
echo "  baseline: $(status learning.flows) flows; saved to $D/state/baseline.json"
echo "  memory per flow: 148 bytes reserved per slot at start (struct flow 144 + bucket 4);"
echo "  RSS above shows the pages touched as the table fills"

if command -v iperf3 >/dev/null; then
	ip netns exec "$P-s" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &	# the pid kept is iperf3's
	PIDS+=("$!")
	sleep 0.5
	c0=$(cpu_ticks) t0=$(now)
	bps=$(in_ns c iperf3 -c 10.88.2.2 -p 5201 -t "$SECONDS_RUN" -J | python3 -c \
		'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))')
	c1=$(cpu_ticks) t1=$(now)
	python3 -c "
import sys
bps, c0, c1, t0, t1, tck = map(float, sys.argv[1:])
print('bulk TCP transfer (iperf3, one connection):')
print(f'  throughput              {bps / 1e9:>10.2f} Gbit/s')
print(f'  moatd CPU               {(c1 - c0) / tck / (t1 - t0) * 100:>10.2f}%  of one core')" \
		"$bps" "$c0" "$c1" "$t0" "$t1" "$TCK"
else
	echo "bulk TCP transfer: iperf3 not installed; skipped"
fi
