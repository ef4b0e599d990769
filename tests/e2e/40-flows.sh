#!/bin/bash
# Flows, learning and alerts against a real dockerd and moatd's own ruleset: learn a
# three-tier app while it talks (through a clean restart and a kill -9 of moatd in the
# middle), suggest policies from what was learned, check and load them; the learned flows
# still work, an outsider's attempt on the database is denied, shows in `moat flows` with
# the deciding policy and in `moat alerts` within a second (latency printed); in monitor
# mode the same attempt passes and alerts again, as a violation, and connections to an
# allowed and a violating port, interleaved in one batch of records, keep their own
# verdicts. A connection whose SYN conntrack calls established (its ports are those of a
# connection it still tracks) is a flow all the same. The metrics count it all.
#
#   netns moat-XXXXXX: dockerd, moatd (NFLOG group 1 -> flows, baseline, alerts)
#   +--------------------------------------------------------------------+
#   |  br-tiers 10.214.1.0/24                                            |
#   |     |            |             |              |                    |
#   +-----|------------|-------------|--------------|--------------------+
#      +-----+      +-----+       +-----+       +----------+
#      | web | ---> | api | --->  | db  | <-X-- | outsider |
#      +-----+  80  +-----+ 5432  +-----+       +----------+
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network tiers 10.214.1.0/24

e2e_moat_dirs
STATE=$D/state

e2e_run web --network tiers --label app=web --label tier=front
e2e_run api --network tiers --label app=api --label tier=back
e2e_run db --network tiers --label app=db --label tier=data
e2e_run outsider --network tiers --label app=outsider
tcp_echo_server api 80
tcp_echo_server db 5432
API=$(ctr_ip api tiers) DB=$(ctr_ip db tiers)

start_moatd() {
	e2e_moatd_enforce --metrics 127.0.0.1:9640 "$@"
	wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q default/outsider" ||
		e2e_fail "endpoints not listed"
}

# learned FIELD - a figure of `moat learn status -o json`.
learned() { moat learn status -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# key_count FROM TO PORT - the count of one baseline flow (0 when absent).
key_count() {
	moat learn status --flows -o json | python3 -c '
import json, sys
frm, to, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
for f in json.load(sys.stdin)["baseline_flows"]:
    if f["from"]["labels"].get("app") == frm and f["to"]["labels"].get("app") == to and f["port"] == port:
        print(f["count"]); break
else:
    print(0)' "$@"
}
talk() { local i; for i in 1 2 3; do tcp_ok "$@" || return 1; done; }

start_moatd
expect_ok "web -> api before any policy" tcp_ok web "$API" 80

e2e_log "== learning, through a restart and a kill -9"
moat learn start --selector 'app in (web,api,db)'
[ "$(learned state)" = learning ] || e2e_fail "not learning after learn start"
expect_ok "web -> api while learning" talk web "$API" 80
saved_80() { grep -Eq '"port": ?80[,} ]' "$STATE/baseline.json" 2>/dev/null; }
wait_for 30 saved_80 ||
	e2e_fail "web -> api:80 not saved within 3 s"

moatd_stop
start_moatd
[ "$(learned state)" = learning ] || e2e_fail "learning did not continue after a restart"
[ "$(key_count web api 80)" -ge 3 ] || e2e_fail "the baseline lost web -> api:80 over a restart"
expect_ok "api -> db while learning" talk api "$DB" 5432
# saves are debounced to one a second: kill once the three are on disk (a slow, sanitized
# moatd may take longer than a fixed sleep)
saved_db() { python3 -c 'import json, sys
sys.exit(not any(f["port"] == 5432 and f["count"] >= 3 for f in json.load(open(sys.argv[1]))["flows"]))' \
	"$STATE/baseline.json" 2>/dev/null; }
wait_for 100 saved_db || e2e_fail "api -> db:5432 (3 connections) not saved within 10 s"
kill -KILL "$MOATD_PID"; wait "$MOATD_PID" 2>/dev/null || true; MOATD_PID=
start_moatd
[ "$(learned state)" = learning ] || e2e_fail "learning did not continue after kill -9"
n_db=$(key_count api db 5432)
[ "$n_db" -ge 3 ] || e2e_fail "the baseline lost api -> db:5432 over kill -9 (count $n_db)"
n_api=$(key_count web api 80)
expect_ok "web -> api after kill -9" tcp_ok web "$API" 80
api_grew() { [ "$(key_count web api 80)" -gt "$n_api" ]; }
wait_for 20 api_grew || e2e_fail "learning did not go on after kill -9 (web -> api stays at $n_api)"
moat learn stop
moat learn status
[ "$(learned state)" = stopped ] || e2e_fail "learn stop did not stop"
[ "$(learned flows)" = 2 ] || e2e_fail "expected 2 learned flows, got $(learned flows)"

e2e_log "== suggest -> check -> reload"
moat learn suggest >"$POL/50-learned.yaml"
cat "$POL/50-learned.yaml" >&2
"$MOAT" policy check "$POL" || e2e_fail "moat policy check refused the suggestion"
moat policy reload
expect_ok "web -> api (learned) under the learned policy" tcp_ok web "$API" 80
expect_ok "api -> db (learned) under the learned policy" tcp_ok api "$DB" 5432
expect_fail "web -> db (never seen) under the learned policy" tcp_ok web "$DB" 5432

e2e_log "== an outsider on the database: denied, a flow with its policy, an alert within 1 s"
moat alerts --follow -o json >"$D/alerts.follow" 2>"$D/alerts.err" &
FOLLOW=$!
e2e_on_exit "kill $FOLLOW 2>/dev/null"
sleep 0.3
# The attempt starts with the SYN the ruleset logs: its kernel timestamp is the flow's
# first_ms. The latency is from there to the line appearing in `moat alerts --follow`
# (docker exec's own start-up, ~1 s here, comes before the SYN and is not Moat's).
( tcp_ok outsider "$DB" 5432 && echo passed >"$D/outsider.result" || echo denied >"$D/outsider.result" ) &
PROBE=$!
for i in $(seq 500); do grep -q default/outsider "$D/alerts.follow" && break; sleep 0.01; done
t1=$(date +%s%3N)
grep -q default/outsider "$D/alerts.follow" || { cat "$D/alerts.err" >&2; e2e_fail "no alert for outsider -> db"; }
read -r first emitted < <(grep default/outsider "$D/alerts.follow" | head -1 | python3 -c '
import json, sys, datetime
a = json.loads(sys.stdin.readline())
t = datetime.datetime.strptime(a["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
print(a["first_ms"], int(t.timestamp() * 1000))')
ms=$((t1 - first))
e2e_log "alert latency: SYN logged -> alert raised $((emitted - first)) ms; -> line seen by 'moat alerts --follow' $ms ms"
wait "$PROBE" || true
[ "$(cat "$D/outsider.result")" = denied ] || e2e_fail "outsider -> db was not denied"
[ "$ms" -lt 1000 ] || e2e_fail "the alert took $ms ms (more than 1 s)"
python3 - "$D/alerts.follow" <<'EOF' || e2e_fail "the alert is wrong"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if "outsider" in l][0]
assert a["kind"] == "unexpected-flow" and a["verdict"] == "denied", a
assert a["from"]["name"] == "default/outsider" and a["to"]["name"] == "default/db", a
assert a["port"] == 5432 and a["proto"] == "tcp", a
assert a["policy"] and "moat-learned" in a["policy"] and "ingress" in a["policy"], a
EOF
moat flows --verdict denied --from app=outsider -o json >"$D/flows.json"
moat flows --from app=outsider
python3 - "$D/flows.json" <<'EOF' || e2e_fail "moat flows does not show the denied flow with its policy"
import json, sys
fl = [json.loads(l) for l in open(sys.argv[1])]
assert len(fl) == 1, fl
f = fl[0]
assert f["verdict"] == "denied" and f["reason"] == "drop:in", f
assert f["to"]["name"] == "default/db" and f["to"]["labels"]["app"] == "db", f
assert f["policy"].startswith("default/moat-learned-") and "db" in f["policy"], f
EOF
[ -s "$STATE/alerts.jsonl" ] && grep -q default/outsider "$STATE/alerts.jsonl" || e2e_fail "alerts.jsonl has no alert"
moat alerts | grep -q "default/outsider" || e2e_fail "moat alerts does not list it"
n_alerts=$(grep -c default/outsider "$STATE/alerts.jsonl")
expect_fail "outsider -> db again" tcp_ok outsider "$DB" 5432
sleep 0.3
[ "$(grep -c default/outsider "$STATE/alerts.jsonl")" = "$n_alerts" ] || e2e_fail "a repeated attempt alerted again"

e2e_log "== monitor mode: the same attempt passes, and alerts again as a violation"
moat mode monitor
expect_ok "outsider -> db in monitor mode" tcp_ok outsider "$DB" 5432
wait_for 10 grep -q '"verdict":"violation"' "$D/alerts.follow" || e2e_fail "no violation alert in monitor mode"
moat flows --from app=outsider --port 5432 -o json | grep -q '"verdict":"violation"' ||
	e2e_fail "moat flows does not show the violation"

# moatd reads the kernel's records in batches and reuses the decision of a record for the
# next one with the same addresses, protocol, port and kind: connections from api to db on
# an allowed port and on one its policy does not allow, interleaved within milliseconds, come
# in one batch, and each port must keep its own verdict.
ctr_pids api
in_ctr api python3 - "$DB" <<'EOF'
import socket, sys
for i in range(10):
    for port in (5432, 5433):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect((sys.argv[1], port))
        except OSError:
            pass
        s.close()
EOF
# api_db PORT - the verdicts and the connection count of api -> db:PORT's flows.
api_db() { moat flows --from app=api --port "$1" -o json | python3 -c 'import json, sys
fl = [json.loads(l) for l in sys.stdin if l.strip()]
print(",".join(sorted({f["verdict"] for f in fl})), sum(f["count"] for f in fl))'; }
counted() { [ "$(api_db 5433 | cut -d' ' -f2)" -ge 10 ]; }
wait_for 30 counted || e2e_fail "api -> db:5433: $(api_db 5433), expected 10 connections"
[ "$(api_db 5433 | cut -d' ' -f1)" = violation ] ||
	e2e_fail "api -> db:5433 is $(api_db 5433) (expected violation: records read together mixed up)"
[ "$(api_db 5432 | cut -d' ' -f1)" = allowed ] ||
	e2e_fail "api -> db:5432 is $(api_db 5432) (expected allowed)"
e2e_log "ok: interleaved api -> db:5432 and :5433 in monitor mode: $(api_db 5432) and $(api_db 5433)"
moat mode enforce
expect_fail "outsider -> db in enforce mode again" tcp_ok outsider "$DB" 5432

e2e_log "== a connection on the ports of one conntrack still tracks is recorded too"
# web forgets a connection to api:80 whose close (RST, FIN) its own namespace holds back, so
# the bridge's conntrack keeps it established; web's next connection from the same port is a
# SYN that conntrack calls established, never NEW. It must still be a connection in the flows.
web_api() { moat flows --from app=web --port 80 -o json |
	python3 -c 'import json,sys; print(sum(json.loads(l)["count"] for l in sys.stdin if l.strip()))'; }
ctr_pids web
in_ctr web nft -f - <<EOF
table inet e2e_hold {
	chain out { type filter hook output priority 0; ip daddr $API tcp dport 80 tcp flags & (rst | fin) != 0 drop; }
}
EOF
e2e_on_exit "nsenter -t ${PID[web]} -n nft delete table inet e2e_hold 2>/dev/null"
n_web=$(web_api)
in_ctr web python3 - "$API" <<'EOF' || e2e_fail "the first connection from port 47001 failed"
import socket, struct, sys
def connect():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", 47001))
    s.settimeout(1.5)
    s.connect((sys.argv[1], 80))
    return s
s = connect()
s.send(b"x")
assert s.recv(1) == b"x"
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()           # its RST is held back
try:
    connect()       # api answers the SYN on its old connection: no handshake, which is fine
except OSError:
    pass
EOF
in_ctr web nft delete table inet e2e_hold
reopened() { [ "$(web_api)" -ge $((n_web + 2)) ]; }
wait_for 30 reopened || e2e_fail "web -> api:80 went from $n_web to $(web_api): the connection on the same ports was not recorded"
e2e_log "ok: web -> api:80 from $n_web to $(web_api) connections (the second one's SYN was established to conntrack)"

e2e_log "== graph and status"
moat graph >"$D/graph.dot"
cat "$D/graph.dot" >&2
grep -q 'app=web' "$D/graph.dot" && grep -q '5432/tcp' "$D/graph.dot" || e2e_fail "graph lacks the tiers"
if command -v dot >/dev/null; then dot -Tsvg "$D/graph.dot" >/dev/null || e2e_fail "graph is not valid DOT"; fi
moat status | grep -E '^(capture|flows|learning|alerts) ' >&2
moat status -o json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["capture"]["records"] > 0 and s["capture"]["drops"] == 0, s["capture"]
assert s["flows"]["count"] >= 3 and s["flows"]["evicted"] == 0, s["flows"]
assert s["alerts"]["raised"] >= 2, s["alerts"]' || e2e_fail "status figures are wrong"

e2e_log "== metrics"
ns python3 - <<'EOF' || e2e_fail "metrics are wrong"
import re, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:9640/metrics", timeout=5).read().decode()
print(re.sub(r"(?m)^#.*\n", "", text))
samples = []
for line in text.splitlines():
    m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
    if m:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
def total(name, verdict=None, policy=""):
    return sum(v for n, l, v in samples if n == name and (verdict is None or l["verdict"] == verdict)
               and policy in l.get("policy", ""))
one = lambda name: [v for n, l, v in samples if n == name][0]
assert one("moat_endpoints") == 4
assert total("moat_packets_total", "denied", "moat-learned") >= 2
assert total("moat_flows_total", "denied", "moat-learned") >= 1
assert total("moat_packets_total", "allowed", "moat-learned") >= 2
assert total("moat_packets_total", "violation") >= 1
assert total("moat_flows_total") <= total("moat_packets_total")
# every record read is counted once, by verdict and policy
assert total("moat_packets_total") == one("moat_capture_records_total") > 0
assert one("moat_capture_drops_total") == 0 and one("moat_capture_up") == 1
assert one("moat_alerts_total") >= 2 and one("moat_flows") >= 3
EOF
echo "PASS"
