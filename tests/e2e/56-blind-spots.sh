#!/bin/bash
# Blind spots are said, not hidden: bridged traffic is made to cross the policies (moatd sets
# the br_netfilter sysctls a node had at 0, or refuses to run when it cannot); containers on
# networks whose traffic never crosses the node's hooks are listed as not enforced, with the
# reason; a second moatd on the same state directory refuses to start and names the first.
#
#   netns moat-XXXXXX: dockerd, moatd; net.bridge.bridge-nf-call-ip{,6}tables set to 0
#   +------------------------------------------------------------------------------+
#   |  br-front 10.216.1.0/24          mvparent (veth)         ivparent (veth)      |
#   |     |        |        |             |  macnet 10.216.2/24   |  ipvnet 10.216.3/24
#   +-----|--------|--------|-------------|-----------------------|----------------+
#      +-----+  +-----+  +--------+    +----+                  +----+     +----+
#      | web |  | db  |  |outsider|    | mv |                  | iv |     | nn | --network none
#      +-----+  +-----+  +--------+    +----+                  +----+     +----+
#   policy: db <- web on 5432/tcp; mv, iv and nn isolated for ingress (nothing allowed).
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network front 10.216.1.0/24
# Parents for macvlan and ipvlan: veths (this kernel may lack the dummy driver).
ns ip link add mvparent type veth peer name mvpeer
ns ip link add ivparent type veth peer name ivpeer
for l in mvparent mvpeer ivparent ivpeer; do ns ip link set "$l" up; done
docker network create -d macvlan -o parent=mvparent --subnet 10.216.2.0/24 macnet >/dev/null
# ipvlan is a module some kernels lack: then only macvlan and none are tried.
IPVLAN=
if ns ip link add ivprobe link ivparent type ipvlan 2>/dev/null; then
	ns ip link del ivprobe
	docker network create -d ipvlan -o parent=ivparent --subnet 10.216.3.0/24 ipvnet >/dev/null
	IPVLAN=1
else
	e2e_log "(this kernel has no ipvlan: that case is skipped)"
fi

e2e_moat_dirs
cat >"$POL/db.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 5432}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: blind-isolated}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [mv, iv, nn]}]}
  ingress: []
EOF

e2e_run web --network front --label app=web
e2e_run db --network front --label app=db
e2e_run outsider --network front --label app=outsider
e2e_run mv --network macnet --label app=mv
[ -z "$IPVLAN" ] || e2e_run iv --network ipvnet --label app=iv
e2e_run nn --network none --label app=nn
tcp_echo_server db 5432
DB4=$(ctr_ip db front)

e2e_log "== br_netfilter's sysctls at 0: moatd sets them, and the policy holds on one bridge"
ns sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0
start_moatd() {
	e2e_moatd_enforce "$@"
}
start_moatd
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q default/nn" || e2e_fail "nn not listed"
for s in iptables ip6tables; do
	[ "$(ns sysctl -n net.bridge.bridge-nf-call-$s)" = 1 ] ||
		e2e_fail "net.bridge.bridge-nf-call-$s still 0 under moatd"
	grep -q "set net.bridge.bridge-nf-call-$s to 1 (was 0)" "$D/moatd.log" ||
		e2e_fail "moatd did not say it set net.bridge.bridge-nf-call-$s"
done
e2e_log "ok: both sysctls set to 1, and said so"
expect_ok "web -> db 5432/tcp (same bridge, allowed)" wait_for 30 tcp_ok web "$DB4" 5432
expect_fail "outsider -> db 5432/tcp (same bridge, denied)" tcp_ok outsider "$DB4" 5432

e2e_log "== networks whose traffic never crosses the node's hooks: not enforced, with the reason"
moat endpoints
moat endpoints -o json >"$D/endpoints.json"
moat status -o json >"$D/status.json"
moat status | tee "$D/status.txt" >&2
python3 - "$D/endpoints.json" "$D/status.json" "$IPVLAN" <<'EOF' || e2e_fail "not-enforced endpoints are not said as such"
import json, sys
eps = {e["name"]: e for e in json.load(open(sys.argv[1]))}
want = {"default/mv": "macvlan", "default/nn": "none"}
if sys.argv[3]:
    want["default/iv"] = "network ipvnet"
for name, word in want.items():
    e = eps[name]
    assert e["mode"] == "not-enforced", (name, e["mode"])
    assert word in e.get("unenforced", ""), (name, e.get("unenforced"))
for name in ("default/web", "default/db", "default/outsider"):
    assert eps[name]["mode"] != "not-enforced", (name, eps[name])
assert eps["default/db"]["mode"] == "enforce", eps["default/db"]
st = json.load(open(sys.argv[2]))
listed = {e["name"]: e["reason"] for e in st["not_enforced"]}
assert set(listed) == set(want), listed
EOF
grep -q "^not enforced .*default/mv (network macnet (macvlan)" "$D/status.txt" ||
	e2e_fail "moat status does not list mv as not enforced"
e2e_log "ok: mv (macvlan), ${IPVLAN:+iv (ipvlan), }nn (none) listed as not enforced, with the reason"

e2e_log "== a second moatd on the same state directory refuses to start"
# (counters and the drop log meters' elements, which expire, are traffic, not the ruleset)
ns nft list ruleset | grep -v -E 'counter packets|^#| expires ' >"$D/ruleset.before"
set +e
timeout 10 nsenter --net=/var/run/netns/"$E2E_NS" "$MOATD" --config /dev/null \
	--runtime "$DOCKER_HOST" --policy-dir "$POL" --socket "$SOCK" --state-dir "$D/state" \
	--mode monitor >"$D/second.log" 2>&1
rc=$?
set -e
cat "$D/second.log" >&2
[ "$rc" != 0 ] && [ "$rc" != 124 ] || e2e_fail "a second moatd did not refuse to start (exit $rc)"
grep -q "another moatd is running (pid $MOATD_PID socket $SOCK" "$D/second.log" ||
	e2e_fail "the second moatd's message does not name the running one"
e2e_alive "$MOATD_PID" || e2e_fail "the first moatd died"
[ "$(moat status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["mode"])')" = enforce ] ||
	e2e_fail "the first moatd no longer answers on its socket (or its mode changed)"
ns nft list ruleset | grep -v -E 'counter packets|^#| expires ' >"$D/ruleset.after"
diff -u "$D/ruleset.before" "$D/ruleset.after" >&2 || e2e_fail "the second moatd changed the ruleset"
expect_fail "outsider -> db still denied" tcp_ok outsider "$DB4" 5432
e2e_log "ok: refused with exit $rc, naming pid $MOATD_PID and $SOCK; the first runs on"

e2e_log "== sysctls at 0 that cannot be set: moatd exits, saying why"
moatd_stop
ns sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0
set +e
timeout 10 nsenter --net=/var/run/netns/"$E2E_NS" unshare -m --propagation private sh -c '
	mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"' sh \
	"$MOATD" --config /dev/null --runtime "$DOCKER_HOST" --policy-dir "$POL" \
	--socket "$SOCK" --state-dir "$D/state" >"$D/ro.log" 2>&1
rc=$?
set -e
cat "$D/ro.log" >&2
[ "$rc" != 0 ] && [ "$rc" != 124 ] || e2e_fail "moatd ran with bridged traffic past its hooks (exit $rc)"
grep -q "net.bridge.bridge-nf-call-iptables is not 1 and cannot be set" "$D/ro.log" ||
	e2e_fail "moatd did not say why it stopped"
e2e_log "ok: exit $rc with the reason"
ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
echo "PASS"
