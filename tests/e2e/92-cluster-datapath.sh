#!/bin/bash
# Two nodes, real packets: policies that select across nodes hold both ways.
#
#   netns $E2E_NS (node a)                              netns ...-b (node b)
#   +-------------------------------------+             +-------------------------------------+
#   | dockerd a, moatd a                  |             | dockerd b, moatd b                  |
#   |  bridge brfront 10.235.1.0/24       |  veth pair  |  bridge brfront 10.235.2.0/24       |
#   |   db (app=db) :5432   web (app=web) | 10.236.0.1  |   api (app=api)   cache (app=cache) |
#   |                                     |-------------|   other (app=other)   :6379         |
#   |  route 10.235.2.0/24 via 10.236.0.2 | 10.236.0.2  |  route 10.235.1.0/24 via 10.236.0.1 |
#   +------------------|------------------+             +------------------|------------------+
#                      +---- 10.233.1.0/30 -- etcd (netns ...-etcd) -- 10.233.2.0/30 ----+
#
# No NAT between the nodes: each Docker network is made with
# com.docker.network.bridge.enable_ip_masquerade=false, so a container's packets leave
# with its own address (Docker's MASQUERADE would hide it behind the node's), and
# DOCKER-USER accepts what comes in over the link for the bridge (Docker's FORWARD chain
# drops what is not published otherwise); the nodes route each other's subnet.
# Policies (pushed to etcd, in force on both): db <- app=api on 5432; cache <- app=web on
# 6379. Then: a container started on b is enforced on a within 1 s; kill -9 of moatd b
# leaves b enforcing and a holding b's endpoints until b's lease expires, after which b's
# addresses fail closed on a.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

TTL=10

cl_setup

# the link between the nodes, and the routes to each other's containers
L=clab${E2E_NS##*-}
ip link add "${L}a" netns "$E2E_NS" type veth peer name "${L}b" netns "$NSB"
ns ip addr add 10.236.0.1/30 dev "${L}a"
ns ip link set "${L}a" up
e2e_nsexec "$NSB" ip addr add 10.236.0.2/30 dev "${L}b"
e2e_nsexec "$NSB" ip link set "${L}b" up
ns ip route add 10.235.2.0/24 via 10.236.0.2
e2e_nsexec "$NSB" ip route add 10.235.1.0/24 via 10.236.0.1

# node b's dockerd: its own directories under $D/b, its own cgroup parent
cl_dockerd_b_start
DA=$DOCKER_HOST
DB_HOST=unix://$D/b/docker.sock
e2e_dockerd_start
e2e_images
DOCKER_HOST=$DB_HOST e2e_images
nomasq=(-o com.docker.network.bridge.enable_ip_masquerade=false -o com.docker.network.bridge.name=brfront)
docker network create --subnet 10.235.1.0/24 "${nomasq[@]}" front >/dev/null
DOCKER_HOST=$DB_HOST docker network create --subnet 10.235.2.0/24 "${nomasq[@]}" front >/dev/null
ns iptables -I DOCKER-USER -i "${L}a" -o brfront -j ACCEPT
e2e_nsexec "$NSB" iptables -I DOCKER-USER -i "${L}b" -o brfront -j ACCEPT
b() { DOCKER_HOST=$DB_HOST "$@"; }

e2e_run db --network front --label app=db
e2e_run web --network front --label app=web
b e2e_run api --network front --label app=api
b e2e_run cache --network front --label app=cache
b e2e_run other --network front --label app=other
tcp_echo_server db 5432
b tcp_echo_server cache 6379
DB=$(ctr_ip db front)
CACHE=$(b ctr_ip cache front)

phase "0. the link carries container addresses both ways before moatd (positive control)"
expect_ok "api (b) reaches db (a), no moatd yet" b tcp_ok api "$DB" 5432
expect_ok "web (a) reaches cache (b), no moatd yet" tcp_ok web "$CACHE" 6379
# (that no NAT hides them shows below: db tells api from other by their addresses alone)

mkdir -p "$D/pol"
cat >"$D/pol/10-db.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: api}}}]
      ports: [{port: 5432}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cache-from-web}
spec:
  podSelector: {matchLabels: {app: cache}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 6379}]
EOF
ns "$E2E_BUILD/moat" policy push --etcd http://10.233.1.2:2479 "$D/pol" >/dev/null
cl_moatd_start a "$E2E_NS" --runtime "$DA" --etcd http://10.233.1.2:2479 --node-name a \
	--etcd-lease-ttl "$TTL" --socket "$D/a.sock" --state-dir "$D/a"
cl_moatd_start b "$NSB" --runtime "$DB_HOST" --etcd http://10.233.2.2:2479 --node-name b \
	--etcd-lease-ttl "$TTL" --socket "$D/b.sock" --state-dir "$D/b/state"
wait_for 150 cl_has a default/api@b || e2e_fail "a does not list api@b"
wait_for 50 cl_has b default/db@a || e2e_fail "b does not list db@a"

phase "1. policies across nodes, both ways, real TCP"
expect_ok "api (b) -> db (a) :5432, allowed by db-from-api" b tcp_ok api "$DB" 5432
expect_fail "other (b) -> db (a) :5432, not app=api" b tcp_ok other "$DB" 5432
expect_ok "web (a) -> cache (b) :6379, allowed by cache-from-web" tcp_ok web "$CACHE" 6379
expect_fail "db (a) -> cache (b) :6379, not app=web" tcp_ok db "$CACHE" 6379
expect_fail "other (b) -> cache (b) :6379, within b" b tcp_ok other "$CACHE" 6379
# each node enforces both directions for what crosses it: b drops other -> db itself, as
# it knows db@a is isolated; a sees api's allowed connection
flow_named() { cl_moat "$1" flows --verdict "$2" 2>/dev/null | grep -q "$3"; }
wait_for 50 flow_named a allowed 'default/api@b.*default/db' || { cl_moat a flows >&2; e2e_fail "a's flows do not name api@b"; }
wait_for 50 flow_named b denied 'default/other.*default/db@a' || { cl_moat b flows >&2; e2e_fail "b's flows do not name db@a"; }
e2e_log "ok: flows name the other node's endpoints (api@b on a, db@a on b)"

phase "2. a container started on b is enforced on a within 1 s"
API2=10.235.2.50
b e2e_run api2 --network front --ip "$API2" --label app=api
t0=$(date +%s%N)
until cl_element "$E2E_NS" "$API2"; do
	[ $(($(date +%s%N) - t0)) -lt 5000000000 ] || e2e_fail "api2 not in a's kernel after 5 s"
	sleep 0.01
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 1000 ] || e2e_fail "api2 reached a's kernel after $ms ms (more than 1 s)"
e2e_log "ok: api2 (b) in a's kernel $ms ms after docker run returned"
expect_ok "api2 (b) -> db (a), a new container of b, allowed" b tcp_ok api2 "$DB" 5432

phase "3. kill -9 of moatd b"
kill -KILL "$CL_PID_b"
t0=$SECONDS
expect_fail "b still enforces within itself: other (b) -> cache (b)" b tcp_ok other "$CACHE" 6379
expect_fail "db (a) -> cache (b) still denied" tcp_ok db "$CACHE" 6379
expect_ok "b still allows web (a) -> cache (b)" tcp_ok web "$CACHE" 6379
expect_ok "a still knows api (b) while b's lease lives" b tcp_ok api "$DB" 5432
wait_for $(((TTL + 5) * 10)) cl_lacks a default/api@b || e2e_fail "b's endpoints outlived b's lease on a"
e2e_log "ok: a dropped b's endpoints $((SECONDS - t0))s after kill -9 (TTL ${TTL}s)"
expect_fail "api (b) -> db (a) fails closed once b's lease is gone" b tcp_ok api "$DB" 5432
expect_fail "b still enforces after its lease is gone: other (b) -> cache (b)" b tcp_ok other "$CACHE" 6379
expect_fail "web (a) -> cache (b): on a, b's addresses fail closed both ways now" tcp_ok web "$CACHE" 6379
e2e_log "PASS"
