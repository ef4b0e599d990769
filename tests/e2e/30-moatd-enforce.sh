#!/bin/bash
# moatd against a real dockerd: policies enforced on real packets, TCP and UDP, IPv4 and IPv6,
# across two Docker networks; then container restart, reload, a broken policy, monitor mode,
# a spoofed source, a revoked established connection, kill -9 of moatd (still enforced, and a
# container started meanwhile reaches nothing), a restart with no gap, and a dockerd restart.
#
#   netns moat-XXXXXX: dockerd, moatd (table inet moat + bridge moat)
#   +-------------------------------------------------------------------------+
#   |  br-front 10.213.1.0/24 fd00:213:1::/64   br-back 10.213.2.0/24 fd00:213:2::/64
#   |     |        |         |        |            |         |         |
#   +-----|--------|---------|--------|------------|---------|---------|------+
#      +-----+  +-----+   +----------------+   +----------------+   +-----+
#      | web |  | new |   | api (front+back)|  | outsider (f+b) |   | db  |
#      +-----+  +-----+   +----------------+   +----------------+   +-----+
#   policy: api <- web on 8080/tcp and 9090/udp; db <- api on 5432/tcp; nothing else
#   reaches api or db. web and outsider are not isolated.
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network front 10.213.1.0/24 fd00:213:1::/64
e2e_network back 10.213.2.0/24 fd00:213:2::/64

e2e_moat_dirs

cat >"$POL/10-api.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-web}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080}, {port: 9090, protocol: UDP}]
EOF
cat >"$POL/20-db.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: api}}}]
      ports: [{port: 5432}]
EOF

e2e_run_host web --network front --label app=web
e2e_run_host api --network front --label app=api
docker network connect back api
e2e_run_host outsider --network front --label app=outsider --cap-add NET_ADMIN
docker network connect back outsider
e2e_run_host db --network back --label app=db

e2e_moatd_enforce

servers() {
	tcp6_echo_server api 8080
	udp_echo_server api 9090
	tcp6_echo_server db 5432
}
servers
sleep 0.5

API4=$(ctr_ip api front) API6=$(ctr_ip api front 6)
DB4=$(ctr_ip db back) DB6=$(ctr_ip db back 6)
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q default/db" || e2e_fail "db not listed"
moat endpoints
moat endpoints -o json >"$D/endpoints.json"
python3 - "$D/endpoints.json" <<'EOF' || e2e_fail "moat endpoints -o json is wrong"
import json, sys
eps = {e["name"]: e for e in json.load(open(sys.argv[1]))}
assert set(eps) >= {"default/web", "default/api", "default/db", "default/outsider"}, eps.keys()
assert eps["default/api"]["isolated"] == {"ingress": True, "egress": False}
assert eps["default/web"]["isolated"] == {"ingress": False, "egress": False}
assert len(eps["default/api"]["ifaces"]) == 2, eps["default/api"]
assert len(eps["default/api"]["ips"]) == 4, eps["default/api"]
assert eps["default/api"]["labels"]["app"] == "api"
EOF

matrix() {
	expect_ok "web -> api 8080/tcp v4" tcp6_ok web "$API4" 8080
	expect_ok "web -> api 8080/tcp v6" tcp6_ok web "$API6" 8080
	expect_ok "web -> api 9090/udp v4" udp_ok web "$API4" 9090
	expect_ok "web -> api 9090/udp v6" udp6_ok web "$API6" 9090
	expect_fail "outsider -> api 8080/tcp v4" tcp6_ok outsider "$API4" 8080
	expect_fail "outsider -> api 8080/tcp v6" tcp6_ok outsider "$API6" 8080
	expect_fail "outsider -> api 9090/udp v4" udp_ok outsider "$API4" 9090
	expect_fail "outsider -> api 9090/udp v6" udp6_ok outsider "$API6" 9090
	expect_ok "api -> db 5432/tcp v4 (back network)" tcp6_ok api "$DB4" 5432
	expect_ok "api -> db 5432/tcp v6 (back network)" tcp6_ok api "$DB6" 5432
	expect_fail "outsider -> db 5432/tcp v4" tcp6_ok outsider "$DB4" 5432
	expect_fail "outsider -> db 5432/tcp v6" tcp6_ok outsider "$DB6" 5432
	expect_fail "api -> db on a port not allowed" tcp6_ok api "$DB4" 8080
}
e2e_log "== the policy, enforced"
matrix

e2e_log "== nft can read Moat's ruleset back (no expression it cannot list)"
ns nft list ruleset >"$D/ruleset" 2>&1 || { cat "$D/ruleset" >&2; e2e_fail "nft list ruleset failed"; }
grep -q 'ct mark . meta l4proto . th dport @in_' "$D/ruleset" || e2e_fail "no identity chain listed"

e2e_log "== foreign tables survive"
ns nft list table ip filter >"$D/filter.before"

e2e_log "== container restart"
docker restart -t 1 db >/dev/null
tcp6_echo_server db 5432
DB4=$(ctr_ip db back) DB6=$(ctr_ip db back 6)
wait_for 50 tcp6_ok api "$DB4" 5432 || e2e_fail "api -> db after db restart"
expect_fail "outsider -> db after restart" tcp6_ok outsider "$DB4" 5432

e2e_log "== reload: allow outsider -> db"
cat >"$POL/30-outsider.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-outsider}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: outsider}}}]
EOF
moat policy reload
expect_ok "outsider -> db after reload" tcp6_ok outsider "$DB4" 5432

e2e_log "== a broken policy is refused and the running one stays"
printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad}\nspec:\n  podSelector: {}\n  ingress:\n    - ports: [{port: 99999}]\n' >"$POL/40-bad.yaml"
if moat policy reload 2>"$D/reload.err"; then e2e_fail "a broken policy was accepted"; fi
cat "$D/reload.err" >&2
grep -q "40-bad.yaml:7:" "$D/reload.err" || e2e_fail "reload error has no file:line:col"
expect_ok "outsider -> db still allowed" tcp6_ok outsider "$DB4" 5432
expect_fail "outsider -> api still denied" tcp6_ok outsider "$API4" 8080
rm "$POL/40-bad.yaml" "$POL/30-outsider.yaml"
moat policy reload
expect_fail "outsider -> db denied again" tcp6_ok outsider "$DB4" 5432

e2e_log "== monitor mode lets it pass, enforce drops again"
moat mode monitor
expect_ok "outsider -> api in monitor mode" tcp6_ok outsider "$API4" 8080
moat mode enforce
expect_fail "outsider -> api in enforce mode" tcp6_ok outsider "$API4" 8080

e2e_log "== spoofed source"
# outsider claims web's address, which api allows on 9091/udp
e2e_spoof_check api outsider web "$API4" "$(ctr_ip web front)"

e2e_log "== revoking access stops an established connection"
e2e_revoke_check web "$API4" 8080 "$POL/10-api.yaml"
expect_ok "web -> api allowed again" tcp6_ok web "$API4" 8080

e2e_log "== a joining container costs no conntrack dump; a departing one's connections go with it"
# sweeps: changes by what they could take from live connections (daemon/datapath/revocation.h)
sweeps() { moat status -o json | python3 -c 'import json,sys; s=json.load(sys.stdin)["sweeps"]; print(s["none"], s["later"], s["now"])'; }
read -r none0 later0 now0 < <(sweeps)
e2e_run_host leaver --network front --label app=web
LEAVER4=$(ctr_ip leaver front)
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q default/leaver" || e2e_fail "leaver not listed"
read -r none1 later1 now1 < <(sweeps)
[ "$none1" -gt "$none0" ] && [ "$now1" = "$now0" ] ||
	e2e_fail "a container joining with a fresh address looked at conntrack (sweeps none/later/now $none0/$later0/$now0 -> $none1/$later1/$now1)"
# A UDP flow never closes: only a sweep ends its conntrack entry before its 120 s timeout.
docker exec -d leaver python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 40404))
while True:
    s.sendto(b"x", (sys.argv[1], 9090))
    time.sleep(0.1)' "$API4"
flow() { ns conntrack -L -p udp --orig-src "$LEAVER4" --orig-port-src 40404 2>/dev/null | grep -c 9090 || true; }
flow_seen() { [ "$(flow)" -gt 0 ]; }
leaver_gone() { ! moat endpoints | grep -q default/leaver; }
wait_for 50 flow_seen || e2e_fail "leaver's UDP flow to api never showed in conntrack"
docker rm -f leaver >/dev/null
wait_for 50 leaver_gone || e2e_fail "leaver still listed"
sleep 0.5
[ "$(flow)" = 0 ] || { ns conntrack -L -p udp >&2; e2e_fail "the departed container's UDP flow is still in conntrack"; }
read -r none2 later2 now2 < <(sweeps)
[ "$later2" -gt "$later1" ] || e2e_fail "the departure was not swept after the apply (sweeps none/later/now $none1/$later1/$now1 -> $none2/$later2/$now2)"
e2e_log "ok: joined with no dump (sweeps none $none0 -> $none1), departed: its flow swept (later $later1 -> $later2)"

e2e_log "== kill -9 moatd: still enforced; a container started meanwhile reaches nothing"
kill -KILL "$MOATD_PID"; wait "$MOATD_PID" 2>/dev/null || true; MOATD_PID=
expect_fail "outsider -> api with moatd dead" tcp6_ok outsider "$API4" 8080
expect_ok "web -> api with moatd dead" tcp6_ok web "$API4" 8080
e2e_run_host newbie --network front --label app=web
NEW4=$(ctr_ip newbie front)
expect_fail "new container (labelled web) -> api while moatd is down" tcp6_ok newbie "$API4" 8080
tcp6_echo_server newbie 7000
expect_fail "web -> new container while moatd is down" tcp6_ok web "$NEW4" 7000

e2e_log "== restart: resynced with no gap"
# A prober tries a denied pair every 50 ms through the restart and counts successes.
docker exec -d outsider sh -c "while [ ! -f /tmp/stop ]; do python3 -c '$_py_client' tcp $API4 8080 x && echo hit >>/tmp/hits; sleep 0.05; done"
e2e_moatd_enforce
expect_ok "new container, once known, -> api (it is labelled web)" wait_for 50 tcp6_ok newbie "$API4" 8080
sleep 1
docker exec outsider touch /tmp/stop
hits=$(docker exec outsider sh -c 'wc -l </tmp/hits 2>/dev/null || echo 0')
[ "$hits" -eq 0 ] || e2e_fail "denied pair got through $hits times during restart"
matrix

e2e_log "== dockerd killed and restarted: moatd resyncs"
e2e_dockerd_kill KILL
e2e_dockerd_start
for c in web api outsider db newbie; do docker start "$c" >/dev/null 2>&1 || true; done
servers
API4=$(ctr_ip api front) API6=$(ctr_ip api front 6) DB4=$(ctr_ip db back) DB6=$(ctr_ip db back 6)
wait_for 100 tcp6_ok web "$API4" 8080 || { cat "$D/moatd.log" >&2; e2e_fail "web -> api after dockerd restart"; }
matrix

ns nft list table ip filter >"$D/filter.after"
diff -u "$D/filter.before" "$D/filter.after" >&2 || e2e_log "(docker rewrote its own table on restart)"
grep -q "error" "$D/moatd.log" && { grep error "$D/moatd.log" >&2; }
e2e_log "== moatd --flush removes only Moat's tables"
moatd_stop
ns "$MOATD" --config /dev/null --flush
if ns nft list tables | grep -q moat; then e2e_fail "moat tables left after --flush"; fi
ns nft list table ip filter >/dev/null || e2e_fail "docker's table went with --flush"
echo "PASS"
