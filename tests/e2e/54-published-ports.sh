#!/bin/bash
# Published ports (docker run -p) and the node itself, with Docker's userland proxy off and
# on (one dockerd each way). With the proxy, a container reaching <gateway>:<published port>
# talks to docker-proxy on the node, and the proxy connects to the container from the node:
# Moat decides the first connection as the client to the container on its port, with the
# container's policies, the cluster-wide tiers' among them. A client outside the node reaches a published port only when an
# ipBlock allows it. The node reaches its containers (--host-access allow, the default), or
# only as their policies allow its address, while containers reach only its published ports
# (--host-access policy).
#
#   netns moatx-XXXXXX (outside)      netns moat-XXXXXX: the node: dockerd, moatd, a node
#   +------------------------+        service on 10.219.1.1:9999
#   | ext1 192.0.2.2/24      |--------| ext0 192.0.2.1/24
#   +------------------------+        |  br-app 10.219.1.0/24 (gateway 10.219.1.1)
#                                     +-----|------------|--------------|------------
#                                      +---------+  +---------+  +------------+
#                                      | db :81  |  | api     |  | outsider   |
#                                      | -p 15432:81           |  |            |
#                                      +---------+  +---------+  +------------+
#   policy: db <- api on 81/tcp; db <- ipBlock 198.51.100.0/24 on 81 (then 192.0.2.0/24); for a
#   while an Admin tier: db <- api denied on 81, db <- outsider accepted.
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_moat_dirs
EXT=moatx-${E2E_DIR##*.}
GW=10.219.1.1 NODE=192.0.2.1 PUB=15432

e2e_netns_add "$EXT"
e2e_on_exit "e2e_netns_del $EXT"
ip link add ext0 netns "$E2E_NS" type veth peer name ext1 netns "$EXT"
ns ip addr add "$NODE/24" dev ext0
ns ip link set ext0 up
e2e_nsexec "$EXT" ip addr add 192.0.2.2/24 dev ext1
e2e_nsexec "$EXT" ip link set ext1 up

# A service of the node's own, on the gateway's address: an echo server.
e2e_node_service() {
	ns python3 -c '
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9999))
s.listen(16)
def echo(c):
    with c:
        c.sendall(c.recv(100))
while True:
    threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()' "$GW" \
		</dev/null >/dev/null 2>&1 &
	NODE_SVC=$!
}
e2e_on_exit '[ -z "${NODE_SVC:-}" ] || kill "$NODE_SVC" 2>/dev/null'

policy() {	# policy CIDR - db's ipBlock peer
	cat >"$POL/db.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: api}}}]
      ports: [{port: 81}]
    - from: [{ipBlock: {cidr: $1}}]
      ports: [{port: 81}]
EOF
}
policy 198.51.100.0/24

# guard - an Admin tier over db: api denied on 81 (which NetworkPolicy allows), the outsider
# accepted (which it does not)
guard() {
	cat >"$POL/guard.yaml" <<EOF
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard}
spec:
  tier: Admin
  priority: 1
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}}
  ingress:
    - name: no-api
      action: Deny
      from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}]
      protocols: [{tcp: {destinationPort: {number: 81}}}]
    - name: outsider
      action: Accept
      from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: outsider}}}}]
EOF
}

# Clients: a container (moat-host), the outside namespace, the node itself.
node_ok() { ns python3 -c "$_py_client" tcp "$1" "$2" "moat-$RANDOM" 2>/dev/null; }
ext_ok() { e2e_nsexec "$EXT" python3 -c "$_py_client" tcp "$1" "$2" "moat-$RANDOM" 2>/dev/null; }

start_moatd() {
	e2e_moatd_enforce "$@"
	wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q 'default/db.*enforce'" ||
		e2e_fail "db not isolated"
}

round() {
	local proxy=$1 DB4
	e2e_log "======== userland proxy $proxy"
	e2e_dockerd_start --userland-proxy="$proxy"
	docker image inspect moat-host >/dev/null 2>&1 || e2e_images
	docker network inspect app >/dev/null 2>&1 || e2e_network app 10.219.1.0/24
	e2e_run_host db --network app --label app=db -p "$PUB:81"
	e2e_run_host api --network app --label app=api
	e2e_run_host outsider --network app --label app=outsider
	tcp6_echo_server db 81
	DB4=$(ctr_ip db app)
	[ -n "${NODE_SVC:-}" ] || e2e_node_service
	if [ "$proxy" = true ]; then
		wait_for 50 sh -c "pgrep -f 'docker-proxy.*-host-port $PUB' >/dev/null" ||
			e2e_fail "no docker-proxy for $PUB (the proxy round proves nothing)"
	fi

	e2e_log "== --host-access allow (the default)"
	start_moatd
	moat status | grep "^host access" >&2 || e2e_fail "moat status has no host access line"
	expect_ok "api -> db:81 (allowed, directly)" wait_for 30 tcp6_ok api "$DB4" 81
	expect_fail "outsider -> db:81 (directly)" tcp6_ok outsider "$DB4" 81
	expect_ok "api -> gateway:$PUB (allowed, through the node)" tcp6_ok api "$GW" "$PUB"
	expect_fail "outsider -> gateway:$PUB (through the node)" tcp6_ok outsider "$GW" "$PUB"
	expect_fail "outsider -> node's other address:$PUB" tcp6_ok outsider "$NODE" "$PUB"
	expect_fail "outside client -> node:$PUB (no ipBlock allows it)" ext_ok "$NODE" "$PUB"
	guard
	moat policy reload >/dev/null
	expect_fail "api -> db:81 (an Admin Deny before NetworkPolicy)" tcp6_ok api "$DB4" 81
	expect_fail "api -> gateway:$PUB (the same Admin Deny)" tcp6_ok api "$GW" "$PUB"
	expect_ok "outsider -> db:81 (an Admin Accept)" tcp6_ok outsider "$DB4" 81
	expect_ok "outsider -> gateway:$PUB (the same Admin Accept)" tcp6_ok outsider "$GW" "$PUB"
	rm "$POL/guard.yaml"
	moat policy reload >/dev/null
	expect_ok "api -> gateway:$PUB, the Admin tier gone" tcp6_ok api "$GW" "$PUB"
	expect_fail "outsider -> gateway:$PUB, the Admin tier gone" tcp6_ok outsider "$GW" "$PUB"
	policy 192.0.2.0/24
	moat policy reload >/dev/null
	expect_ok "outside client -> node:$PUB (an ipBlock allows it)" ext_ok "$NODE" "$PUB"
	expect_fail "outsider -> gateway:$PUB, still" tcp6_ok outsider "$GW" "$PUB"
	policy 198.51.100.0/24
	moat policy reload >/dev/null
	expect_ok "the node -> db:81 (the node reaches its containers)" node_ok "$DB4" 81
	expect_ok "the node -> gateway:$PUB" node_ok "$GW" "$PUB"
	expect_ok "api -> the node's service (egress not isolated)" tcp6_ok api "$GW" 9999
	expect_ok "outsider -> the node's service" tcp6_ok outsider "$GW" 9999
	moat flows --to "$GW" --verdict denied >&2 || true

	e2e_log "== --host-access policy"
	moatd_stop
	start_moatd --host-access policy
	moat status -o json | python3 -c '
import json, sys
h = json.load(sys.stdin)["host_access"]
assert h["mode"] == "policy" and h["published"] == 1, h
assert "--userland-proxy=false" in h["note"], h' || e2e_fail "moat status does not say what policy host access means"
	grep -q "host access policy: .*--userland-proxy=false" "$D/moatd.log" ||
		e2e_fail "moatd did not say at start what policy host access means for the proxy"
	expect_fail "the node -> db:81 (no policy allows the node)" node_ok "$DB4" 81
	expect_fail "api -> the node's service" tcp6_ok api "$GW" 9999
	expect_fail "outsider -> the node's service" tcp6_ok outsider "$GW" 9999
	expect_fail "outsider -> gateway:$PUB" tcp6_ok outsider "$GW" "$PUB"
	if [ "$proxy" = false ]; then
		expect_ok "api -> gateway:$PUB (NAT: decided as api -> db)" tcp6_ok api "$GW" "$PUB"
	else
		expect_fail "api -> gateway:$PUB (the proxy's connection is the node's, as moatd says)" \
			tcp6_ok api "$GW" "$PUB"
	fi
	policy "$GW/32"
	moat policy reload >/dev/null
	expect_ok "the node -> db:81 (an ipBlock allows the node)" node_ok "$DB4" 81
	policy 198.51.100.0/24
	moat policy reload >/dev/null
	expect_fail "the node -> db:81 again" node_ok "$DB4" 81
	{ ns nft list table inet moat && ns nft list table bridge moat; } >"$D/ruleset.$proxy" ||
		e2e_fail "nft list failed"
	grep -q 'meta l4proto . th dport @published jump published' "$D/ruleset.$proxy" ||
		e2e_fail "the published ports' rule is not listed"
	grep -q 'hook output priority' "$D/ruleset.$proxy" || e2e_fail "no output chain under policy"
	ns nft -c -f "$D/ruleset.$proxy" || e2e_fail "nft -f refuses what nft list printed"
	moatd_stop
	e2e_dockerd_stop || true	# its waits may time out; what is left, cleanup kills
}

round false
round true
echo "PASS"
