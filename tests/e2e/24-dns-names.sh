#!/bin/bash
# Egress by DNS name (ClusterNetworkPolicy domainNames), with moatd, a real resolver
# (dnsmasq) serving a private zone and "external" servers at the addresses it returns.
# Checks: the first connection right after each answer passes (a loop of 100 fresh names
# and addresses); an address never resolved, a resolved one on another port, a name no rule
# names are denied; CNAME chains; DNS over TCP; a resolver not in dns-resolvers teaches
# nothing; an endpoint that is not a subject is not concerned; the kernel keeps an answer
# for its TTL (above the floor); explain and flows name the rule; with moatd stopped,
# resolved names keep working, DNS still answers, new names are not learnt.
#
#   netns moat-XXXXXX "node": moatd --runtime none --endpoints eps.yaml
#   +----------------------------------------------------------------------------+
#   | br0 10.0.0.254/16          v-dns 192.0.2.1/24          v-ext 203.0.113.1/24 |
#   |  | v-c1      | v-c2           |                           |  198.51.100.0/24 |
#   +--|-----------|----------------|---------------------------|------------------+
#      | eth0      | eth0           | eth0                      | eth0   via .2
#   +---------+ +---------+   +--------------------------+  +-----------------------+
#   | c1      | | c2      |   | dns: dnsmasq 192.0.2.53  |  | ext 203.0.113.2       |
#   | x/api   | | x/web   |   | (the zone), and a rogue  |  | 198.51.100.0/24 local |
#   |10.0.1.1 | |10.0.1.2 |   | one on 192.0.2.99        |  | TCP 443, 80: "ok"     |
#   +---------+ +---------+   +--------------------------+  +-----------------------+
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat
PY=/usr/bin/python3
DN=$(cd "$(dirname "$0")" && pwd)/dnsnames.py
command -v dnsmasq >/dev/null || e2e_fail "dnsmasq is not installed (tests/deps.sh)"

e2e_setup
e2e_moat_dirs
P=${E2E_NS}-
PIDS=()
in_ns() { local n=$1; shift; nsenter --net=/var/run/netns/$P$n "$@"; }
node() { nsenter --net=/var/run/netns/$E2E_NS "$@"; }
cleanup_local() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for n in c1 c2 dns ext; do e2e_netns_del "$P$n"; done
}
e2e_on_exit cleanup_local

# ---- topology ----------------------------------------------------------------------------

# link NAME NODE_ADDR NS_ADDR VIA: namespace P$NAME with eth0 NS_ADDR, its peer v-NAME in the
# node with NODE_ADDR (or on br0 when NODE_ADDR is "br0"), default route via VIA.
link() {
	local n=$1 node_addr=$2 addr=$3 via=$4
	ip netns add "$P$n"
	ip -n "$E2E_NS" link add "v-$n" type veth peer name eth0 netns "$P$n"
	if [ "$node_addr" = br0 ]; then
		ip -n "$E2E_NS" link set "v-$n" master br0 up
	else
		ip -n "$E2E_NS" addr add "$node_addr" dev "v-$n"
		ip -n "$E2E_NS" link set "v-$n" up
	fi
	ip -n "$P$n" link set lo up
	ip -n "$P$n" addr add "$addr" dev eth0
	ip -n "$P$n" link set eth0 up
	ip -n "$P$n" route add default via "$via"
}

ip -n "$E2E_NS" link add br0 type bridge
ip -n "$E2E_NS" addr add 10.0.0.254/16 dev br0
ip -n "$E2E_NS" link set br0 up
link c1 br0 10.0.1.1/16 10.0.0.254
link c2 br0 10.0.1.2/16 10.0.0.254
link dns 192.0.2.1/24 192.0.2.53/24 192.0.2.1
ip -n "${P}dns" addr add 192.0.2.99/24 dev eth0
link ext 203.0.113.1/24 203.0.113.2/24 203.0.113.1
ip -n "${P}ext" route add local 198.51.100.0/24 dev lo
ip -n "$E2E_NS" route add 198.51.100.0/24 via 203.0.113.2

# ---- servers -----------------------------------------------------------------------------

# start NS CMD...: CMD in P$NS, its pid (nsenter execs it) kept for cleanup.
# (nsenter itself in the background, not in_ns: a function would be a subshell, its pid not
# the server's, and killing it would leave the server running)
start() {
	local n=$1; shift
	nsenter --net=/var/run/netns/"$P$n" "$@" </dev/null >>"$D/$n.log" 2>&1 &
	PIDS+=($!)
	e2e_alive "$!" || e2e_fail "$1 did not start in $n"
}

zone=(--address=/other.test/198.51.100.177 --address=/late.pay.test/198.51.100.210
	--address=/t1.pay.test/198.51.100.101 --host-record=target.cdn.test,198.51.100.150
	--cname=alias.pay.test,target.cdn.test)
for i in $(seq 1 100); do zone+=(--address=/n$i.pay.test/198.51.100.$i); done
start dns dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
	--listen-address=192.0.2.53 --except-interface=lo --local-ttl=120 --pid-file= \
	--log-facility="$D/dnsmasq.log" "${zone[@]}"
start dns dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
	--listen-address=192.0.2.99 --except-interface=lo --local-ttl=120 --pid-file= \
	--log-facility="$D/rogue.log" --address=/evil.pay.test/198.51.100.200
start ext "$PY" "$DN" serve 443 80
wait_for 50 in_ns c1 "$PY" "$DN" query 192.0.2.53 n1.pay.test >/dev/null ||
	e2e_fail "dnsmasq does not answer: $(cat "$D"/dns.log "$D"/dnsmasq.log 2>/dev/null | tail -5)"
wait_for 50 in_ns c2 "$PY" "$DN" connect 198.51.100.1 443 || e2e_fail "the external server does not answer"
e2e_log "topology up: resolver, rogue resolver, external servers; no policy yet: all reachable"

# ---- moatd with the policy ----------------------------------------------------------------

mkdir -p "$D/policies"
cat >"$D/eps.yaml" <<'EOF'
namespaces: {x: {}}
endpoints:
  - {name: c1, namespace: x, labels: {app: api}, ips: [10.0.1.1], ifaces: [v-c1]}
  - {name: c2, namespace: x, labels: {app: web}, ips: [10.0.1.2], ifaces: [v-c2]}
EOF
cat >"$D/policies/egress.yaml" <<'EOF'
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: egress}
spec:
  tier: Admin
  priority: 10
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}
  egress:
    - name: dns
      action: Accept
      to: [{networks: [192.0.2.0/24]}]
      protocols: [{udp: {destinationPort: {number: 53}}}, {tcp: {destinationPort: {number: 53}}}]
    - name: payments
      action: Accept
      to: [{domainNames: ["*.pay.test"]}]
      protocols: [{tcp: {destinationPort: {number: 443}}}]
    - name: rest
      action: Deny
      to: [{networks: [0.0.0.0/0]}]
EOF
moatd_start "$MOATD" --config /dev/null --runtime none --endpoints "$D/eps.yaml" \
	--policy-dir "$D/policies" --socket "$SOCK" --state-dir "$D/state" \
	--dns-resolvers 192.0.2.53 --resync-interval 0
e2e_on_exit moatd_stop
wait_for 100 sh -c "'$MOAT' --socket '$SOCK' status 2>/dev/null | grep -q '^endpoints  *2\b'" ||
	e2e_fail "moatd did not start: $(tail -5 "$D/moatd.log")"
wait_for 50 grep -q "learning from DNS replies" "$D/moatd.log" ||
	e2e_fail "moatd does not read the DNS queue: $(tail -5 "$D/moatd.log")"

c1() { in_ns c1 "$PY" "$DN" "$@"; }
allowed() { c1 connect "$1" "$2" || e2e_fail "c1 -> $1:$2 denied: $3"; e2e_log "ok: c1 -> $1:$2 passes ($3)"; }
denied() { ! c1 connect "$1" "$2" || e2e_fail "c1 -> $1:$2 passed: $3"; e2e_log "ok: c1 -> $1:$2 dropped ($3)"; }

# ---- names ---------------------------------------------------------------------------------

denied 198.51.100.1 443 "before any answer, n1.pay.test's address is just an address"
out=$(c1 loop 192.0.2.53 100 'n%d.pay.test' 443) || e2e_fail "$out"
e2e_log "$out"
denied 198.51.100.201 443 "never resolved"
denied 198.51.100.1 80 "resolved, but the rule allows 443 only"
[ "$(c1 query 192.0.2.53 other.test)" = 198.51.100.177 ] || e2e_fail "other.test does not resolve"
denied 198.51.100.177 443 "a name no rule names"
[ "$(c1 query 192.0.2.53 alias.pay.test)" = 198.51.100.150 ] || e2e_fail "the CNAME chain does not resolve"
allowed 198.51.100.150 443 "alias.pay.test, a CNAME to target.cdn.test"
[ "$(c1 query 192.0.2.53 t1.pay.test tcp)" = 198.51.100.101 ] || e2e_fail "DNS over TCP fails"
allowed 198.51.100.101 443 "resolved over TCP"
[ "$(c1 query 192.0.2.99 evil.pay.test)" = 198.51.100.200 ] || e2e_fail "the rogue resolver does not answer"
denied 198.51.100.200 443 "answered by a resolver not in dns-resolvers"
in_ns c2 "$PY" "$DN" connect 198.51.100.201 443 || e2e_fail "c2, no subject, was denied"
e2e_log "ok: c2, not a subject, reaches any address"

# ---- what moatd and the kernel hold ---------------------------------------------------------

set_line=$(node nft list set inet moat dns4_a1 | tr ',{}' '\n\n\n' | grep '10.0.1.1 . 198.51.100.1 . tcp . 443' || true)
case $set_line in *"timeout 2m"*) ;; *) e2e_fail "no 2-minute element for n1.pay.test (TTL 120 s): '$set_line'" ;; esac
e2e_log "ok: the kernel holds n1.pay.test's address for its TTL: $(echo "$set_line" | tr -s ' \t' ' ')"
explain=$(moat policy explain --from x/c1 --to 198.51.100.1 --port 443/tcp)
echo "$explain" | grep -q "allowed by ClusterNetworkPolicy egress, rule payments" ||
	e2e_fail "explain does not name the rule: $explain"
e2e_log "ok: $(echo "$explain" | sed -n 2p)"
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' flows -o json 2>/dev/null | grep -q 'Admin/egress/payments'" ||
	e2e_fail "no flow names Admin/egress/payments: $(moat flows | head -5)"
e2e_log "ok: flows name the rule Admin/egress/payments"
status=$(moat status | grep '^dns')
echo "$status" | grep -Eq ' 10[0-9] learnt from' && echo "$status" | grep -Eq ' [1-9][0-9]* untrusted' ||
	e2e_fail "status: $status"
e2e_log "$status"

# ---- moatd down ---------------------------------------------------------------------------

moatd_stop
allowed 198.51.100.1 443 "moatd stopped: what was resolved keeps its addresses"
[ "$(c1 query 192.0.2.53 late.pay.test)" = 198.51.100.210 ] || e2e_fail "DNS fails while moatd is down"
denied 198.51.100.210 443 "moatd stopped: a new name is not learnt"
e2e_log "PASS"
