#!/bin/bash
# Flows, learning and alerts with Podman: the three tiers of 40-flows, the database a pod,
# against a real rootful Podman service. Learn while the app talks, suggest policies from the
# baseline, check and load them: the learned flows pass, others are denied; an outsider's
# attempt on the pod shows in `moat flows` with the deciding policy and raises one alert.
#
#   netns moat-XXXXXX: podman system service, moatd (NFLOG group 1 -> flows, baseline, alerts)
#   +-----------------------------------------------------------------------+
#   |  podman1: network tiers 10.217.1.0/24                                 |
#   |     |            |             |                     |                |
#   +-----|------------|-------------|---------------------|----------------+
#      +-----+      +-----+       +--------------------+   +----------+
#      | web | ---> | api | --->  | pod db: db-main    | <-X-- outsider |
#      +-----+  80  +-----+ 5432  +--------------------+   +----------+
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_podman_start
e2e_images
e2e_network tiers 10.217.1.0/24

e2e_moat_dirs
STATE=$D/state

e2e_run web --network tiers --label app=web --label tier=front
e2e_run api --network tiers --label app=api --label tier=back
podman pod create --name db --network tiers --label app=db >/dev/null
e2e_run db-main --pod db --label tier=data
e2e_run outsider --network tiers --label app=outsider
tcp_echo_server api 80
tcp_echo_server db-main 5432
API=$(ctr_ip api tiers) DB=$(ctr_ip db-main tiers)

e2e_moatd_enforce
listed() { moat endpoints | grep -q default/db; }
wait_for 100 listed || e2e_fail "the pod is not listed"
learned() { moat learn status -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
talk() { local i; for i in 1 2 3; do tcp_ok "$@" || return 1; done; }

e2e_log "== learning"
moat learn start --selector 'app in (web,api,db)'
expect_ok "web -> api while learning" talk web "$API" 80
expect_ok "api -> db (the pod) while learning" talk api "$DB" 5432
two() { [ "$(learned flows)" = 2 ]; }
wait_for 50 two || e2e_fail "expected 2 learned flows, got $(learned flows)"
moat learn stop
moat learn status --flows -o json | python3 -c 'import json, sys
fl = json.load(sys.stdin)["baseline_flows"]
pairs = {(f["from"]["labels"].get("app"), f["to"]["labels"].get("app"), f["port"]) for f in fl}
assert pairs == {("web", "api", 80), ("api", "db", 5432)}, pairs
db = [f["to"] for f in fl if f["port"] == 5432][0]
assert db["labels"]["tier"] == "data", db' ||
	e2e_fail "the baseline is not web -> api:80, api -> the pod db:5432"

e2e_log "== suggest -> check -> reload"
moat learn suggest >"$POL/50-learned.yaml"
cat "$POL/50-learned.yaml" >&2
"$MOAT" policy check "$POL" || e2e_fail "moat policy check refused the suggestion"
moat policy reload
expect_ok "web -> api (learned)" tcp_ok web "$API" 80
expect_ok "api -> db (learned)" tcp_ok api "$DB" 5432
expect_fail "web -> db (never seen)" tcp_ok web "$DB" 5432

e2e_log "== an outsider on the pod: denied, a flow with its policy, one alert"
expect_fail "outsider -> db" tcp_ok outsider "$DB" 5432
alerted() { grep -q default/outsider "$STATE/alerts.jsonl" 2>/dev/null; }
wait_for 30 alerted || e2e_fail "no alert for outsider -> db"
python3 - "$STATE/alerts.jsonl" <<'PY' || e2e_fail "the alert is wrong"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if "outsider" in l]
assert len(a) == 1, a
a = a[0]
assert a["kind"] == "unexpected-flow" and a["verdict"] == "denied", a
assert a["from"]["name"] == "default/outsider" and a["to"]["name"] == "default/db", a
assert a["port"] == 5432 and "moat-learned" in a["policy"], a
PY
moat flows --from app=outsider
moat flows --verdict denied --from app=outsider -o json | python3 -c 'import json, sys
fl = [json.loads(l) for l in sys.stdin]
assert len(fl) == 1 and fl[0]["to"]["name"] == "default/db", fl
assert fl[0]["policy"].startswith("default/moat-learned-"), fl' ||
	e2e_fail "moat flows does not show the denied flow with its policy"
moat alerts | grep -q default/outsider || e2e_fail "moat alerts does not list it"
echo PASS
