#!/bin/bash
# Bounded under a hostile container: the kernel logs a source's drops at --log-rate (a token
# bucket per source address or bridge port, nft meters), so a flood of denied packets from one
# container costs a bounded number of records and cannot evict the others' flows from the
# flow table; no source takes more than a quarter of the alert budget, so it cannot use up
# the others' alerts either; what was not logged is counted (moat status,
# moat_drops_unlogged_total).
#
#   netns moat-XXXXXX: dockerd, moatd --flow-cap 1000 --alert-rate 10 --log-rate 20
#   +---------------------------------------------------------------+
#   |  br-front 10.218.1.0/24     lo: 127.0.0.1:9650 (metrics)       |
#   |     |          |          |          |                        |
#   +-----|----------|----------|----------|------------------------+
#      +-----+  +----------+  +-------+  +--------+
#      | db  |  | attacker |  | early |  | late   |
#      +-----+  +----------+  +-------+  +--------+
#   policy: db <- nobody. early is denied before the flood, the attacker sends 3,000
#   datagrams to 3,000 ports of db over 12 s (longer than the alert budget's burst lasts at
#   the log rate), late is denied near its end.
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network front 10.218.1.0/24

e2e_moat_dirs
cat >"$POL/db.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-closed}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: []
EOF
for c in db attacker early late; do e2e_run_host "$c" --network front --label "app=$c" & done
wait
moatd_start "$MOATD" --config /dev/null --runtime "$DOCKER_HOST" --policy-dir "$POL" \
	--socket "$SOCK" --state-dir "$D/state" --mode enforce --flow-cap 1000 --alert-rate 10 \
	--log-rate 50 --metrics 127.0.0.1:9650
wait_for 50 moat status >/dev/null 2>&1 || e2e_fail "moatd did not answer"
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q 'default/db.*enforce'" ||
	e2e_fail "db not isolated"
DB4=$(ctr_ip db front) EARLY4=$(ctr_ip early front) LATE4=$(ctr_ip late front)
ATT4=$(ctr_ip attacker front)
moat learn start >/dev/null
moat learn stop >/dev/null	# an empty baseline: every flow from now on alerts

# udp_to CTR GAP PORT... - one datagram to each PORT of db, GAP seconds apart.
udp_to() {
	local c=$1 gap=$2; shift 2
	docker exec "$c" python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in sys.argv[3:]:
    s.sendto(b"x", (sys.argv[1], int(p)))
    time.sleep(float(sys.argv[2]))' "$DB4" "$gap" "$@"
}
# flows_from ADDR - how many flows moatd holds from ADDR.
flows_from() { moat flows --from "$1" --limit 5000 -o json 2>/dev/null | grep -c . || true; }
status() { moat status -o json | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

e2e_log "== early is denied once, before the flood"
udp_to early 0 5432
wait_for 50 sh -c "[ \$('$MOAT' --socket '$SOCK' flows --from $EARLY4 -o json | grep -c 5432) -gt 0 ]" ||
	e2e_fail "early's denied flow was not recorded (test is broken)"
records0=$(status 's["capture"]["records"]')

e2e_log "== the attacker floods 3,000 ports of db for 12 s; late is denied near its end"
udp_to attacker 0.004 $(seq 20000 22999) &
flood=$!
sleep 10	# the flood's records have drained a shared budget by now (50/s in, 10/s back)
udp_to late 0 5432
wait "$flood"
wait_for 50 sh -c "[ \$('$MOAT' --socket '$SOCK' flows --from $LATE4 -o json | grep -c 5432) -gt 0 ]" ||
	e2e_fail "late's denied flow was not recorded after the flood"
records1=$(status 's["capture"]["records"]')
logged=$((records1 - records0))
att=$(flows_from "$ATT4")
e2e_log "records during the flood: $logged; the attacker's flows: $att"
[ "$logged" -le 1200 ] || e2e_fail "the flood cost $logged log records (50/s and bursts of 100 expected: some 900 over it)"
[ "$att" -ge 20 ] || e2e_fail "the attacker's first drops were not logged ($att flows)"
[ "$(flows_from "$EARLY4")" -ge 1 ] || e2e_fail "the flood evicted early's flow"
e2e_log "ok: early's flow kept, late's recorded"
moat alerts --limit 1000 -o json >"$D/alerts.txt"
grep -q "$EARLY4" "$D/alerts.txt" || e2e_fail "early's alert is missing"
grep -q "$LATE4" "$D/alerts.txt" ||
	{ tail -n 3 "$D/alerts.txt" >&2; e2e_fail "late's alert was held back: the flood used up the alert budget"; }
e2e_log "ok: early's and late's alerts raised ($(grep -c "$ATT4" "$D/alerts.txt") for the attacker)"

e2e_log "== what was not logged is counted and shown"
unlogged=$(status 's["drop_log"]["unlogged"]')
[ "$unlogged" -ge 2000 ] || e2e_fail "only $unlogged drops counted as unlogged"
moat status | grep "^drop log" >&2
moat status | grep -q "^drop log .*50 a second per source; $unlogged drops over it" ||
	e2e_fail "moat status does not show the unlogged drops"
ns curl -s http://127.0.0.1:9650/metrics >"$D/metrics"
grep -q "^moat_drops_unlogged_total $unlogged$" "$D/metrics" ||
	{ grep unlogged "$D/metrics" >&2; e2e_fail "moat_drops_unlogged_total is not $unlogged"; }
e2e_log "ok: $unlogged drops counted, not logged"
ns nft list ruleset >"$D/ruleset" || e2e_fail "nft list ruleset failed"
grep -q 'update @limit4 { ip saddr limit rate 50/second burst 100 packets }' "$D/ruleset" ||
	{ grep -n limit "$D/ruleset" >&2; e2e_fail "the meter is not listed"; }
echo "PASS"
