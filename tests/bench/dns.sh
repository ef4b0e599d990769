#!/bin/bash
# DNS benchmark (egress by name): what learning from answers costs. An endpoint asks dnsmasq
# through the node where moatd runs, side by side in one run:
#   none       a policy without domainNames: no reply is queued (the control)
#   learnt     a domainNames rule matching every name asked (each a fresh name and address):
#              every reply goes through moatd, which adds its address to the kernel's sets
#              before letting it through
#   unnamed    the same rule, names it does not match: queued, read and let through
# For each: query round-trip time p50/p99 (one query at a time), answers per second (many in
# flight), and moatd's own time per learnt reply (status). Figures are printed, not asserted.
#
#   netns $NS "node": moatd --runtime none --endpoints FILE   (br0 10.0.0.254/16, v-dns)
#      | v-c1                                   | v-dns 192.0.2.1/24
#   netns $NS-c1 10.0.1.1 (dns_bench.py)      netns $NS-dns 192.0.2.53: dnsmasq, a zone of
#                                             BENCH_DNS_NAMES names n<i>.pay.test, o<i>.other.test
# Usage (root): B=build tests/bench/dns.sh   BENCH_DNS_RTT=2000 BENCH_DNS_RATE=20000
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${B:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
NRTT=${BENCH_DNS_RTT:-2000}
NRATE=${BENCH_DNS_RATE:-20000}
NAMES=$((NRTT > NRATE ? NRTT : NRATE))
PY=/usr/bin/python3
CLIENT=(nsenter --net=/var/run/netns/NS-c1 "$PY" "$ROOT/tests/bench/dns_bench.py")
[ "$(id -u)" = 0 ] || { echo "dns.sh: needs root; skipped" >&2; exit 0; }
command -v dnsmasq >/dev/null || { echo "dns.sh: no dnsmasq (tests/deps.sh)" >&2; exit 1; }

D=$(mktemp -d /tmp/moat-dnsbench.XXXXXX)
chmod 755 "$D"		# dnsmasq reads the zone as nobody
NS=moatdb-${D##*.}
CLIENT=("${CLIENT[@]/NS-c1/$NS-c1}")
SOCK=$D/moatd.sock
PIDS=()
cleanup() {
	local p
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for n in "$NS-c1" "$NS-dns" "$NS"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$D"
}
trap cleanup EXIT
[ -z "${BENCH_KEEP:-}" ] || trap "cat \"\$D/moatd.log\" >&2; cleanup" EXIT
log() { echo "# $*" >&2; }
in_ns() { local n=$1; shift; nsenter --net=/var/run/netns/"$n" "$@"; }

ip netns add "$NS"
in_ns "$NS" sysctl -qw net.ipv4.ip_forward=1
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge
ip -n "$NS" addr add 10.0.0.254/16 dev br0
ip -n "$NS" link set br0 up
for n in c1 dns; do
	ip netns add "$NS-$n"
	ip -n "$NS" link add "v-$n" type veth peer name eth0 netns "$NS-$n"
	ip -n "$NS-$n" link set lo up
	ip -n "$NS-$n" link set eth0 up
done
ip -n "$NS" link set v-c1 master br0 up
ip -n "$NS-c1" addr add 10.0.1.1/16 dev eth0
ip -n "$NS-c1" route add default via 10.0.0.254
ip -n "$NS" addr add 192.0.2.1/24 dev v-dns
ip -n "$NS" link set v-dns up
ip -n "$NS-dns" addr add 192.0.2.53/24 dev eth0
ip -n "$NS-dns" route add default via 192.0.2.1

# dnsmasq reads the zone from a hosts file: NAMES names of each kind, addresses apart.
"$PY" - "$D/hosts" "$NAMES" <<-'EOF'
	import sys
	with open(sys.argv[1], "w") as f:
	    for i in range(1, int(sys.argv[2]) + 1):
	        f.write("198.18.%d.%d n%d.pay.test\n" % (i // 250, i % 250 + 1, i))
	        f.write("198.19.%d.%d o%d.other.test\n" % (i // 250, i % 250 + 1, i))
EOF
# nsenter itself in the background (it execs the program): the pid kept is the program's
nsenter --net=/var/run/netns/"$NS-dns" dnsmasq --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$D/hosts" \
	--bind-interfaces --listen-address=192.0.2.53 --except-interface=lo --local-ttl=300 \
	--cache-size=0 --dns-forward-max=10000 --pid-file= --log-facility=/dev/null </dev/null &
PIDS+=($!)

cat >"$D/eps.yaml" <<'EOF'
endpoints:
  - {name: c1, namespace: x, labels: {app: api}, ips: [10.0.1.1], ifaces: [v-c1]}
EOF
mkdir -p "$D/policies"
policy() {	# policy DOMAINS?: the policy, with a domainNames rule or without
	{
	cat <<-'EOF'
	apiVersion: policy.networking.k8s.io/v1alpha2
	kind: ClusterNetworkPolicy
	metadata: {name: egress}
	spec:
	  tier: Admin
	  priority: 10
	  subject: {namespaces: {}}
	  egress:
	    - {name: dns, action: Accept, to: [{networks: [192.0.2.0/24]}]}
	EOF
	[ "$1" = no ] || echo '    - {name: pay, action: Accept, to: [{domainNames: ["*.pay.test"]}], protocols: [{tcp: {destinationPort: {number: 443}}}]}'
	echo '    - {name: rest, action: Deny, to: [{networks: [0.0.0.0/0]}]}'
	} >"$D/policies/egress.yaml"
}
policy no
nsenter --net=/var/run/netns/"$NS" "$B/moatd" --config /dev/null --runtime none --endpoints "$D/eps.yaml" \
	--policy-dir "$D/policies" --socket "$SOCK" --state-dir "$D/state" --log-level warn \
	--resync-interval 0 </dev/null >>"$D/moatd.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do "$B/moat" --socket "$SOCK" status >/dev/null 2>&1 && break; sleep 0.1; done
for i in $(seq 50); do "${CLIENT[@]}" rtt 192.0.2.53 n%d.pay.test 1 >/dev/null 2>&1 && break; sleep 0.1; done

field() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
run() {	# run LABEL FMT: rtt and rate for names FMT
	local r t
	r=$("${CLIENT[@]}" rtt 192.0.2.53 "$2" "$NRTT")
	t=$("${CLIENT[@]}" rate 192.0.2.53 "$2" "$NRATE" 64)
	[ "$(field "$r" failed)" = 0 ] || { log "dnsmasq answered $(field "$r" failed) with an error"; exit 1; }
	printf '  %-9s %8s %8s %8s %10s\n' "$1" "$(field "$r" p50_us)" "$(field "$r" p99_us)" \
		"$(field "$r" lost)" "$(field "$t" per_s)"
}

echo "DNS through moatd: $NRTT queries one at a time, $NRATE with 64 in flight; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-9s %8s %8s %8s %10s\n' names "p50 us" "p99 us" lost "answers/s"
run none 'n%d.pay.test'
policy yes
"$B/moat" --socket "$SOCK" policy reload >/dev/null
queued() {
	"${CLIENT[@]}" rtt 192.0.2.53 warm%d.pay.test 1 >/dev/null
	"$B/moat" --socket "$SOCK" status | grep -Eq '^dns +[1-9]'
}
for i in $(seq 50); do queued && break; sleep 0.1; done
queued || { log "moatd does not read DNS replies: $(tail -3 "$D/moatd.log")"; exit 1; }
run learnt 'n%d.pay.test'
run unnamed 'o%d.other.test'
"$B/moat" --socket "$SOCK" status | grep '^dns' | tee "$D/status"
grep -Eq 'replies read, [1-9][0-9]* learnt' "$D/status" || { log "moatd learnt nothing"; exit 1; }
echo "  learnt: every reply a fresh name and address: moatd parses it, adds the address to the"
echo "  kernel's sets (one netlink batch, acknowledged) and only then lets it through"
