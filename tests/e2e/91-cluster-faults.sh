#!/bin/bash
# moatd beside other moatd through etcd, under faults (daemon/cluster/): a real etcd 3.4 in
# a namespace of its own, reached by every moatd through a TCP proxy the test can cut.
#
#   netns $E2E_NS (node a)          netns ...-etcd                   netns ...-b (node b)
#   +------------------------+      +---------------------------+    +---------------------+
#   | dockerd; moatd a       |      | etcd 127.0.0.1:2379       |    | moatd b             |
#   |  (policies from etcd)  |      | socat :2479 -> :2379      |    |  --runtime none,    |
#   |  br 10.234.1.0/24:     |      |                           |    |  endpoints file:    |
#   |   db (app=db) :5432    |      |                           |    |  web@b 10.234.2.10  |
#   |   client, late (api)   |      |                           |    |  api@b 10.234.2.11  |
#   |  10.233.1.1 ----veth---+------+- 10.233.1.2  10.233.2.2 --+----+- 10.233.2.1        |
#   +------------------------+      +---------------------------+    +---------------------+
#
#  1. b's endpoints reach a (names api@b, web@b; their addresses in a's kernel); the policy
#     set pushed with `moat policy push` is in force on both, at the same revision; a push of
#     a broken set is refused with file:line:col and stores nothing.
#  2. Hostile values under a made-up node (bad JSON, wrong types, huge labels, an address
#     outside its subnets, a name that is not the key's) are refused one by one, counted and
#     logged; a good endpoint of the same node beside them is taken; moatd a goes on.
#  3. A second moatd with b's name and another host id refuses to start, saying why; b
#     itself, restarted on its host, takes its name back at once.
#  4. etcd unreachable (the proxy cut): a keeps b's endpoints in its kernel and still
#     enforces a container started meanwhile; what changed in etcd meanwhile arrives when
#     it is back, by resuming the watch (no new list), and a's new container is published.
#  5. The revision a would resume from is compacted while it is cut off: it lists again
#     (a compaction counted), converges, and does not crash.
#  6. a's lease revoked behind its back: a new lease is granted and a's keys put again.
#  7. kill -9 of moatd b: a keeps b's endpoints while the lease lives, then removes them
#     within the TTL; b's subnet stays managed on a (its addresses fail closed).
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

TTL=10

cl_setup
e2e_dockerd_start
e2e_images
e2e_network front 10.234.1.0/24

mkdir -p "$D/pol" "$D/bad" "$D/b"
cat >"$D/pol/10-db.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: api}}}]
      ports: [{port: 5432}]
EOF
printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 70000}]}]\n' >"$D/bad/x.yaml"
cat >"$D/b/endpoints.yaml" <<'EOF'
subnets: [10.234.2.0/24]
endpoints:
  - {name: web, labels: {app: web}, ips: [10.234.2.10]}
  - {name: api, labels: {app: api}, ips: [10.234.2.11]}
EOF

e2e_run db --network front --label app=db
e2e_run client --network front --label app=client
tcp_echo_server db 5432
DB=$(ctr_ip db front)

start_a() {
	cl_moatd_start a "$E2E_NS" --runtime "$DOCKER_HOST" --etcd http://10.233.1.2:2479 \
		--node-name a --etcd-lease-ttl "$TTL" --socket "$D/a.sock" --state-dir "$D/a" "$@"
}
start_b() {
	cl_moatd_start b "$NSB" --runtime none --endpoints "$D/b/endpoints.yaml" \
		--etcd http://10.233.2.2:2479 --node-name b --etcd-lease-ttl "$TTL" \
		--socket "$D/b.sock" --state-dir "$D/b/state" "$@"
}

phase "1. b's endpoints reach a; one policy set on both"
e2e_nsexec "$E2E_NS" "$E2E_BUILD/moat" policy push --etcd http://10.233.1.2:2479 "$D/bad" 2>"$D/push.err" &&
	e2e_fail "a broken policy set was pushed"
grep -q "x.yaml:6:.*out of range" "$D/push.err" || { cat "$D/push.err" >&2; e2e_fail "no file:line:col for the broken set"; }
[ -z "$(cl_etcdctl get /moat/v1/policies --print-value-only)" ] || e2e_fail "the broken set was stored"
e2e_log "ok: a broken set is refused with file:line:col, nothing stored"
e2e_nsexec "$E2E_NS" "$E2E_BUILD/moat" policy push --etcd http://10.233.1.2:2479 "$D/pol" >"$D/push.out"
REV=$(sed -n 's/.* as revision \([0-9]*\);.*/\1/p' "$D/push.out")
[ -n "$REV" ] || e2e_fail "push printed no revision: $(cat "$D/push.out")"
start_a
start_b
wait_for 100 cl_has a default/api@b || e2e_fail "a does not list api@b"
wait_for 50 cl_element "$E2E_NS" 10.234.2.11 || e2e_fail "api@b's address is not in a's kernel"
wait_for 50 cl_has b "default/db@a" || e2e_fail "b does not list db@a"
for n in a b; do
	wait_for 50 cl_status_is $n 's["cluster"]["policy_revision"]' "$REV" ||
		e2e_fail "node $n does not run policy revision $REV"
done
cl_moat a status | grep -q "from etcd, revision $REV" || e2e_fail "moat status does not show the revision"
cl_moat a nodes >"$D/nodes.txt"
grep -q "^a\*.*held" "$D/nodes.txt" && grep -q "^b	2	held" "$D/nodes.txt" ||
	{ cat "$D/nodes.txt" >&2; e2e_fail "moat nodes is wrong"; }
cl_moat a policy explain --from default/api@b --to default/db --port 5432/tcp | grep -q ": allow" ||
	e2e_fail "explain does not allow api@b -> db"
cl_moat a policy explain --from default/web@b --to default/db --port 5432/tcp | grep -q ": deny" ||
	e2e_fail "explain does not deny web@b -> db"
e2e_log "ok: remote endpoints, their addresses, policy revision $REV on both, nodes, explain"

phase "2. hostile values are refused one by one"
R0=$(cl_status a 's["cluster"]["refused"]["count"]')
cl_etcdctl put /moat/v1/nodes/evil '{"node":"evil","host":"h-evil","subnets":["10.234.9.0/24"]}' >/dev/null
huge=$(python3 -c 'print("{\"name\":\"huge\",\"namespace\":\"default\",\"labels\":{\"a\":\"" + "x" * 70000 + "\"}}")')
cl_etcdctl put /moat/v1/endpoints/evil/default/json 'not json {' >/dev/null
cl_etcdctl put /moat/v1/endpoints/evil/default/types '{"name":"types","namespace":"default","labels":{"app":7},"ips":"10.234.9.1"}' >/dev/null
cl_etcdctl put /moat/v1/endpoints/evil/default/huge "$huge" >/dev/null
cl_etcdctl put /moat/v1/endpoints/evil/default/outside '{"name":"outside","namespace":"default","labels":{"app":"api"},"ips":["10.234.1.77"]}' >/dev/null
cl_etcdctl put /moat/v1/endpoints/evil/default/liar '{"name":"db","namespace":"default","labels":{"app":"api"},"ips":["10.234.9.2"]}' >/dev/null
cl_etcdctl put /moat/v1/endpoints/evil/default/good '{"name":"good","namespace":"default","labels":{"app":"api"},"ips":["10.234.9.3"]}' >/dev/null
wait_for 50 cl_has a default/good@evil || e2e_fail "a does not take the good endpoint beside the bad ones"
R1=$(cl_status a 's["cluster"]["refused"]["count"]')
[ $((R1 - R0)) = 5 ] || e2e_fail "refused $((R1 - R0)) keys, not 5"
for k in json types huge outside liar; do
	grep -q "refused /moat/v1/endpoints/evil/default/$k:" "$D/moatd.log" || e2e_fail "no log line for $k"
	cl_has a "default/$k@evil" && e2e_fail "$k@evil was taken"
done
cl_no_element "$E2E_NS" 10.234.1.77 || e2e_fail "an address outside evil's subnets reached the kernel"
kill -0 "$CL_PID_a" || e2e_fail "moatd a died"
e2e_log "ok: 5 hostile keys refused, logged and counted; the good one taken"

phase "3. the same node name on another host is refused"
mkdir -p "$D/c"
set +e
timeout 20 nsenter --net=/var/run/netns/"$NSB" "$E2E_BUILD/moatd" --runtime none --etcd http://10.233.2.2:2479 \
	--node-name b --socket "$D/c.sock" --state-dir "$D/c" >"$D/c.log" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || e2e_fail "the second moatd named b exited with $rc"
grep -q "node name b is in use by another host" "$D/c.log" || { cat "$D/c.log" >&2; e2e_fail "no clear refusal"; }
e2e_log "ok: $(grep -o 'the node name b is in use[^:]*' "$D/c.log")"
LB=$(cl_status b 's["cluster"]["publish"]["lease"]')
cl_stop "$CL_PID_b"
start_b
wait_for 100 cl_status_not b 's["cluster"]["publish"]["lease"]' "$LB" || e2e_fail "b did not take its name back"
wait_for 50 cl_status_is b 's["cluster"]["publish"]["up"]' True || e2e_fail "b does not publish after its restart"
sleep 2
cl_has a default/api@b || e2e_fail "a lost api@b across b's restart"
e2e_log "ok: b restarted on its host takes its name back (lease $LB -> a new one); a kept b's endpoints"

phase "4. etcd unreachable: the last known state stays; local changes go on"
S0=$(cl_status a 's["cluster"]["watch"]["snapshots"]')
cl_proxy_stop
wait_for 100 cl_status_is a 's["cluster"]["watch"]["up"]' False || e2e_fail "a did not notice etcd is away"
e2e_run late --network front --label app=api
LATE=$(ctr_ip late front)
wait_for 50 cl_element "$E2E_NS" "$LATE" || e2e_fail "a container started while etcd is away is not enforced"
expect_ok "late (app=api) reaches db while etcd is away" tcp_ok late "$DB" 5432
expect_fail "client does not reach db while etcd is away" tcp_ok client "$DB" 5432
cl_element "$E2E_NS" 10.234.2.11 || e2e_fail "a flushed b's endpoints while etcd is away"
cl_has a default/api@b || e2e_fail "a forgot api@b while etcd is away"
cl_etcdctl put /moat/v1/endpoints/evil/default/during '{"name":"during","namespace":"default","labels":{"app":"api"},"ips":["10.234.9.4"]}' >/dev/null
cl_etcdctl del /moat/v1/endpoints/evil/default/good >/dev/null
cl_proxy_start
wait_for 150 cl_has a default/during@evil || e2e_fail "a did not catch up after etcd came back"
wait_for 50 cl_lacks a default/good@evil || e2e_fail "a kept an endpoint deleted while it was away"
[ "$(cl_status a 's["cluster"]["watch"]["snapshots"]')" = "$S0" ] || e2e_fail "a listed again instead of resuming"
grep -q "watching again from revision" "$D/moatd.log" || e2e_fail "no resume in the log"
wait_for 100 cl_etcd_has /moat/v1/endpoints/a/default/late ||
	e2e_fail "late was not published once etcd came back"
wait_for 50 cl_has b default/late@a || e2e_fail "b does not see late@a"
e2e_log "ok: enforcement went on while away; the watch resumed; converged both ways"

phase "5. a compacted revision: a lists again"
C0=$(cl_status a 's["cluster"]["watch"]["compacted"]')
cl_proxy_stop
wait_for 100 cl_status_is a 's["cluster"]["watch"]["up"]' False || e2e_fail "a did not notice"
cl_etcdctl put /moat/v1/endpoints/evil/default/compacted '{"name":"compacted","namespace":"default","ips":["10.234.9.5"]}' >/dev/null
cl_etcdctl del /moat/v1/endpoints/evil/default/during >/dev/null
rev=$(cl_etcdctl get /moat/v1/endpoints/evil/default/compacted -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
cl_etcdctl compact "$rev" >/dev/null
cl_proxy_start
wait_for 150 cl_has a default/compacted@evil || e2e_fail "a did not converge after the compaction"
wait_for 50 cl_lacks a default/during@evil || e2e_fail "a kept what was deleted before the compaction"
[ "$(cl_status a 's["cluster"]["watch"]["compacted"]')" -gt "$C0" ] || e2e_fail "no compaction counted"
[ "$(cl_status a 's["cluster"]["watch"]["snapshots"]')" -gt "$S0" ] || e2e_fail "no new list"
kill -0 "$CL_PID_a" || e2e_fail "moatd a died"
e2e_log "ok: compacted at $rev: listed again, converged"

phase "6. a lost lease is granted again and the keys put again"
L0=$(cl_status a 's["cluster"]["publish"]["lease"]')
cl_etcdctl lease revoke "$(printf '%x' "$L0")" >/dev/null
wait_for 100 cl_status_not a 's["cluster"]["publish"]["lease"]' "$L0" ||
	e2e_fail "a did not take a new lease"
wait_for 100 cl_etcd_has /moat/v1/endpoints/a/default/db ||
	e2e_fail "a's keys were not put again"
wait_for 50 cl_has b default/db@a || e2e_fail "b lost db@a for good"
e2e_log "ok: lease $L0 revoked; a runs on a new lease and published again"

phase "7. kill -9 of moatd b: a keeps b's endpoints till its lease expires"
kill -KILL "$CL_PID_b"
t0=$SECONDS
sleep 3
cl_has a default/api@b || e2e_fail "a dropped b's endpoints before the lease expired"
wait_for $(((TTL + 5) * 10)) cl_lacks a default/api@b || e2e_fail "b's endpoints outlived its lease"
e2e_log "ok: b's endpoints went $((SECONDS - t0))s after kill -9 (TTL ${TTL}s)"
wait_for 50 cl_no_element "$E2E_NS" 10.234.2.11 || e2e_fail "api@b's address stays in a's kernel"
e2e_nsexec "$E2E_NS" nft get element inet moat managed4 '{ 10.234.2.11 }' >/dev/null 2>&1 ||
	e2e_fail "b's subnet is no longer managed on a (its addresses must fail closed)"
cl_moat a nodes | grep -q "^b	0	expired" || e2e_fail "moat nodes does not show b expired"
e2e_log "ok: b's subnet stays managed on a: its addresses fail closed"
e2e_log "PASS"
