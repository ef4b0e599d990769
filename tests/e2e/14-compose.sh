#!/bin/bash
# A real Compose project (Debian's docker-compose 1.29) against the test's dockerd: the
# example policy/examples/compose/ brought up as README's "With Compose" says, api scaled to
# three. First with every container in "default": the Compose shorthand (composeService +
# composeProject) selects the services, the three replicas are three endpoints of one group.
# Then README's commands as they are: moatd --namespace-from compose with the example's
# policy, untouched: each project is a namespace (shop/..., ops/...), a namespaceSelector
# lets the ops project's probe in, flows read shop/...; `docker-compose down` takes the
# endpoints and their addresses out of the ruleset.
#
#   netns moat-XXXXXX: dockerd, moatd
#   +--------------------------------------------------------------------------------+
#   |  br-xxxx: network shop_default (the project's default network)                 |
#   |     |            |         |         |           |              |              |
#   +-----|------------|---------|---------|-----------|--------------|--------------+
#      +-------+  +-------+ +-------+ +-------+  +--------+  +--------------+  +----------+
#      | web_1 |  | api_1 | | api_2 | | api_3 |  |  db_1  |  | ops probe_1  |  | outsider |
#      +-------+  +-------+ +-------+ +-------+  +--------+  | (project ops)|  | (no      |
#       project shop                                         +--------------+  | project) |
#   web -> api 9000; api -> db 5432; ops -> api 9000; nothing else reaches api or db
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat
command -v docker-compose >/dev/null || e2e_fail "docker-compose is not installed (tests/deps.sh)"

e2e_setup
e2e_dockerd_start
e2e_images
export MOAT_IMAGE=moat-busybox COMPOSE_HTTP_TIMEOUT=120

e2e_moat_dirs
mapfile -t README < <(readme_block "### With Compose")
want=(
	"docker-compose -p shop -f policy/examples/compose/docker-compose.yml up -d --scale api=3"
	"sudo build/moatd --runtime unix:///var/run/docker.sock --namespace-from compose --policy-dir policy/examples/compose/policies --mode monitor"
	"build/moat endpoints"
	"build/moat policy explain --from shop/shop_web_1 --to shop/shop_api_3 --port 9000/tcp"
	"build/moat policy matrix --port 9000/tcp --port 5432/tcp"
	"docker-compose -p shop -f policy/examples/compose/docker-compose.yml down"
)
[ "${README[*]}" = "${want[*]}" ] ||
	e2e_fail "README's With Compose commands changed (update this test): $(printf '\n  %s' "${README[@]}")"

e2e_log "== docker-compose up, api scaled to 3 (README)"
t0=$SECONDS
readme_cmd "${README[0]}"
e2e_log "up in $((SECONDS - t0)) s"
docker run -d --name outsider --network shop_default moat-busybox "${E2E_SLEEP[@]}" >/dev/null
cat >"$D/ops.yml" <<'YAML'
version: "3.7"
services:
  probe:
    image: ${MOAT_IMAGE:-busybox}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000000 & wait"]
networks:
  default:
    external: true
    name: shop_default
YAML
docker-compose -p ops -f "$D/ops.yml" up -d
e2e_on_exit "docker-compose -p ops -f '$D/ops.yml' down >/dev/null 2>&1"
ip_of() { ctr_ip "$1" shop_default; }
API1=$(ip_of shop_api_1) API2=$(ip_of shop_api_2) API3=$(ip_of shop_api_3) DB=$(ip_of shop_db_1)
[ -n "$API3" ] && [ -n "$DB" ] || e2e_fail "the project did not come up as expected"

talk_all() {
	expect_ok "web -> api_1 9000" tcp_ok shop_web_1 "$API1" 9000
	expect_ok "web -> api_2 9000" tcp_ok shop_web_1 "$API2" 9000
	expect_ok "web -> api_3 9000" tcp_ok shop_web_1 "$API3" 9000
	expect_fail "outsider -> api_2 9000" tcp_ok outsider "$API2" 9000
	expect_ok "api_2 -> db 5432" tcp_ok shop_api_2 "$DB" 5432
	expect_fail "web -> db 5432" tcp_ok shop_web_1 "$DB" 5432
}

e2e_log "== every container in default: the Compose shorthand selects the services"
mkdir -p "$D/pol-default"
cat >"$D/pol-default/shop.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: shop-api}
spec:
  podSelector: {composeService: api, composeProject: shop}
  ingress:
    - from: [{podSelector: {composeService: web, composeProject: shop}}]
      ports: [{port: 9000}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: shop-db}
spec:
  podSelector: {composeService: db, composeProject: shop}
  ingress:
    - from: [{podSelector: {composeService: api, composeProject: shop}}]
      ports: [{port: 5432}]
YAML
moatd_start "$MOATD" --config /dev/null --runtime "$DOCKER_HOST" --policy-dir "$D/pol-default" \
	--socket "$SOCK" --state-dir "$D/state" --mode enforce --resync-interval 2
wait_for 50 moat status >/dev/null 2>&1 || e2e_fail "moatd did not answer"
docker version -f '{{.Server.Version}}' >"$D/version"
moat status -o json | python3 -c 'import json, sys
s = json.load(sys.stdin)
assert s["runtime_name"] == "Docker Engine", s
assert s["runtime_version"] == open(sys.argv[1]).read().strip(), s' "$D/version" ||
	e2e_fail "moat status does not say Docker Engine and its version"
moat status | grep -E '^runtime .*\(up\): Docker Engine ' >&2 || e2e_fail "moat status: runtime line"
n_listed() { [ "$(moat endpoints -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = "$1" ]; }
wait_for 100 n_listed 7 || { moat endpoints >&2; e2e_fail "expected 7 endpoints"; }
moat endpoints -o json | python3 -c 'import json, sys
eps = {e["name"]: e for e in json.load(sys.stdin)}
api = [eps["default/shop_api_%d" % i] for i in (1, 2, 3)]
for a in api:
    assert a["isolated"] == {"ingress": True, "egress": False}, a
    assert a["labels"]["com.docker.compose.service"] == "api", a
keys = {tuple(sorted((k, v) for k, v in a["labels"].items() if "number" not in k and "oneoff" not in k
                     and "config-hash" not in k)) for a in api}
assert len(keys) == 1, keys      # one group: the same labels but the replica number
assert eps["default/outsider"]["isolated"] == {"ingress": False, "egress": False}
assert eps["default/ops_probe_1"]["namespace"] == "default"' ||
	e2e_fail "the three replicas are not three isolated endpoints of one group"
talk_all
expect_fail "ops probe -> api (not in these policies)" tcp_ok ops_probe_1 "$API1" 9000

e2e_log "== a runtime socket not owned by root is a rootless runtime: nothing of it is enforced"
# moatd looks at the socket's owner at every listing (here every 2 s); rootless Podman's or
# Docker's containers live in that user's namespaces, past Moat's hooks
modes() { moat endpoints -o json | python3 -c 'import json, sys
eps = json.load(sys.stdin)
print(" ".join(sorted({e["mode"] + ("/" + e["unenforced"][:32] if e.get("unenforced") else "") for e in eps})))'; }
all_unenforced() { [ "$(modes)" = "not-enforced/rootless runtime (its socket bel" ]; }
chown 65534 "$D/docker.sock"
e2e_on_exit "chown 0 '$D/docker.sock'"
wait_for 100 all_unenforced || e2e_fail "with the socket owned by uid 65534, modes: $(modes)"
moat endpoints -o json | grep -q 'its socket belongs to uid 65534' || e2e_fail "the reason lacks the uid"
chown 0 "$D/docker.sock"
enforced_again() { modes | grep -q enforce && ! modes | grep -q not-enforced; }
wait_for 100 enforced_again || e2e_fail "with the socket root's again, modes: $(modes)"
e2e_log "ok: every endpoint not-enforced while the socket was uid 65534's, enforced again after"
moatd_stop

e2e_log "== README: moatd --namespace-from compose with the example's policy, as it is"
readme_cmd "${README[1]}"
moat mode enforce
wait_for 100 n_listed 7 || { moat endpoints >&2; e2e_fail "expected 7 endpoints"; }
readme_cmd "${README[2]}" | tee "$D/eps.txt" >&2
for n in shop/shop_web_1 shop/shop_api_1 shop/shop_api_2 shop/shop_api_3 shop/shop_db_1 \
	ops/ops_probe_1 default/outsider; do
	grep -q "^$n[[:space:]]" "$D/eps.txt" || e2e_fail "moat endpoints does not list $n"
done
readme_cmd "${README[3]}" | tee "$D/explain.txt" >&2
grep -q 'allow' "$D/explain.txt" && grep -q 'shop/api' "$D/explain.txt" ||
	e2e_fail "explain does not allow web -> api_3 by shop/api"
readme_cmd "${README[4]}" | tee "$D/matrix.txt" >&2
grep -q 'ops/ops_probe_1' "$D/matrix.txt" || e2e_fail "the matrix lacks ops/ops_probe_1"
talk_all
expect_ok "ops probe -> api_1 9000 (namespaceSelector: ops)" tcp_ok ops_probe_1 "$API1" 9000
expect_fail "ops probe -> db 5432" tcp_ok ops_probe_1 "$DB" 5432
moat flows --verdict denied -o json >"$D/flows.json"
moat flows >&2
python3 - "$D/flows.json" <<'PY' || e2e_fail "flows do not read shop/... and ops/..."
import json, sys
fl = [json.loads(l) for l in open(sys.argv[1])]
pairs = {(f["from"].get("name"), f["to"].get("name"), f["port"]) for f in fl}
assert ("default/outsider", "shop/shop_api_2", 9000) in pairs, pairs
assert ("ops/ops_probe_1", "shop/shop_db_1", 5432) in pairs, pairs
assert any(f["policy"] == "shop/db" for f in fl), fl
PY
e2e_log "ok: flows read shop/..., ops/..., and shop/db denied the probe"

e2e_log "== the project's default network is a user network like any other: its subnet is managed"
docker_subnets() { docker network inspect $(docker network ls -q) -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' | wc -w; }
managed() { moat status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["managed_subnets"])'; }
[ "$(managed)" = "$(docker_subnets)" ] && [ "$(managed)" -ge 2 ] ||
	e2e_fail "managed subnets $(managed), docker's $(docker_subnets)"
e2e_log "ok: $(managed) managed subnets, shop_default's among them"

e2e_log "== docker-compose down (README): the endpoints and their addresses go"
docker-compose -p ops -f "$D/ops.yml" down
docker rm -f outsider >/dev/null
readme_cmd "${README[5]}"
none_left() { n_listed 0; }
wait_for 100 none_left || { moat endpoints >&2; e2e_fail "endpoints left after docker-compose down"; }
ns nft list ruleset >"$D/ruleset"
for a in "$API1" "$API2" "$API3" "$DB"; do
	grep -qw "$a" "$D/ruleset" && e2e_fail "$a is still in the ruleset after docker-compose down"
done
moat status -o json | python3 -c 'import json, sys
s = json.load(sys.stdin)
assert s["endpoints"] == 0 and s["elements"]["addresses"] == 0, s' ||
	e2e_fail "moat status still counts endpoints or addresses"
less() { [ "$(managed)" = "$(docker_subnets)" ]; }
wait_for 100 less || e2e_fail "shop_default's subnet is still managed after down ($(managed) managed)"
e2e_log "ok: nothing of the project left in the ruleset"
echo PASS
