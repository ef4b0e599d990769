#!/bin/bash
# moatd against a real rootful Podman service (Debian's podman 4.x, netavark bridges), through
# its Docker-compatible API: moat status names it; containers, a pod (one endpoint: the pod's
# labels and its containers', named ports included) and a slirp4netns container (listed, not
# enforced, with the reason); a policy enforced on real packets, a spoofed source dropped, an
# established connection cut when the policy no longer allows it; a container joining and
# leaving the pod; kill -9 of moatd: a container started meanwhile reaches nothing and is
# known once moatd is back; the Podman service killed and restarted: moatd resyncs and
# follows its events again. README's "With Podman" commands are run as they are (a pod shop
# of one busybox httpd on Podman's default network), moatd started by them.
#
#   netns moat-XXXXXX: podman system service (netavark, aardvark-dns), moatd
#   +---------------------------------------------------------------------------------+
#   |  podman1: network front 10.216.1.0/24                                           |
#   |     |          |            |                |                                  |
#   +-----|----------|------------|----------------|----------------------------------+
#      +-----+    +-----+    +----------+    +----------------------------+   +-------+
#      | web |    | api |    | outsider |    | pod db (infra: the netns)  |   | slirp |
#      +-----+    +-----+    +----------+    |  db-main  tier=data, pg    |   | (tap, |
#                                            |  db-side  tier=cache       |   | user- |
#                                            +----------------------------+   | mode) |
#   policy: api <- web on 8080/tcp; db (app=db, tier=data) <- api on port pg  +-------+
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat
command -v podman >/dev/null || e2e_fail "podman is not installed (tests/deps.sh)"

e2e_setup
e2e_podman_start
e2e_images
e2e_network front 10.216.1.0/24

e2e_moat_dirs

cat >"$POL/10-api.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-web}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080}]
YAML
cat >"$POL/20-db.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api}
spec:
  podSelector: {matchLabels: {app: db, tier: data}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: api}}}]
      ports: [{port: pg}]
YAML

e2e_run_host web --network front --label app=web
e2e_run_host api --network front --label app=api
e2e_run_host outsider --network front --label app=outsider --cap-add NET_ADMIN
# The pod: its label app=db; its containers say tier twice (db-main sorts first and wins) and
# app once more (the pod's wins); db-main names its port.
podman pod create --name db --network front --label app=db >/dev/null
e2e_run_host db-main --pod db --label tier=data --label moat.io/port.pg=5432/tcp
e2e_run db-side --pod db --label tier=cache --label app=evil --label role=sidecar
e2e_run slirp --network slirp4netns --label app=slirp

mapfile -t README < <(readme_block "### With Podman")
want=(
	"sudo podman system service --time=0 unix:///run/podman/podman.sock &"
	"sudo build/moatd --runtime unix:///run/podman/podman.sock --policy-dir /etc/moat/policies --mode monitor"
	"sudo podman pod create --name shop --label app=shop"
	"sudo podman run -d --pod shop --label tier=web --label moat.io/port.http=80/tcp busybox httpd -f"
	"build/moat status"
	"build/moat endpoints"
)
[ "${README[*]}" = "${want[*]}" ] ||
	e2e_fail "README's With Podman commands changed (update this test): $(printf '\n  %s' "${README[@]}")"
readme_cmd "${README[0]}"	# checked: e2e_podman_start is that service, with private storage
readme_cmd "${README[2]}" >/dev/null
readme_cmd "${README[3]}" >/dev/null
# README's moatd (monitor mode, as it advises on a real host), then enforce
start_moatd() {
	readme_cmd "${README[1]}"
	moat mode enforce >/dev/null
}
start_moatd
tcp6_echo_server api 8080
tcp6_echo_server db-main 5432
API4=$(ctr_ip api front) DB4=$(ctr_ip db-main front) WEB4=$(ctr_ip web front)
listed() { moat endpoints | grep -q "default/$1"; }
wait_for 100 listed db || e2e_fail "the pod is not listed"

e2e_log "== moat status names the runtime (README)"
readme_cmd "${README[4]}" | tee "$D/status" >&2
grep -Eq '^runtime +unix://.*podman.sock \(up\): Podman Engine [0-9]+\.[0-9]+' "$D/status" ||
	e2e_fail "moat status does not say Podman and its version"
podman version --format '{{.Server.Version}}' >"$D/version"
moat status -o json | python3 -c 'import json, sys
s = json.load(sys.stdin)
assert s["runtime_name"] == "Podman Engine", s
assert s["runtime_version"] == open(sys.argv[1]).read().strip(), s' "$D/version" ||
	e2e_fail "status JSON: runtime_name/runtime_version"

e2e_log "== endpoints: containers, the pods as one each, slirp4netns not enforced (README)"
readme_cmd "${README[5]}" | tee "$D/eps.txt" >&2
grep -Eq '^default/shop[[:space:]]+app=shop,moat.io/port.http=80/tcp,tier=web[[:space:]]+10\.88\.' \
	"$D/eps.txt" || e2e_fail "README's pod shop is not listed as README says"
moat endpoints -o json >"$D/eps.json"
python3 - "$D/eps.json" <<'PY' || e2e_fail "moat endpoints -o json is wrong"
import json, sys
eps = {e["name"]: e for e in json.load(open(sys.argv[1]))}
assert set(eps) == {"default/web", "default/api", "default/outsider", "default/db",
                    "default/slirp", "default/shop"}, sorted(eps)
db = eps["default/db"]
lab = db["labels"]
assert lab["app"] == "db", lab                  # the pod's, over db-side's app=evil
assert lab["tier"] == "data", lab               # db-main's: it sorts before db-side
assert lab["role"] == "sidecar", lab            # db-side's: nobody else says role
assert lab["moat.io/port.pg"] == "5432/tcp", lab
assert len(db["ifaces"]) == 1 and len(db["ips"]) == 1, db
assert db["isolated"] == {"ingress": True, "egress": False}, db
assert db["mode"] == "enforce", db
for n in ("web", "api", "outsider"):
    e = eps["default/" + n]
    assert len(e["ifaces"]) == 1 and e["ifaces"][0].startswith("veth"), e
    assert e["mode"] in ("open", "enforce"), e
s = eps["default/slirp"]
assert s["mode"] == "not-enforced" and "slirp4netns" in s["unenforced"], s
PY
e2e_log "ok: db is one endpoint with the pod's and its containers' labels; slirp not enforced"

matrix() {
	expect_ok "web -> api 8080/tcp" tcp6_ok web "$API4" 8080
	expect_fail "outsider -> api 8080/tcp" tcp6_ok outsider "$API4" 8080
	expect_ok "api -> db 5432/tcp (the pod's named port)" tcp6_ok api "$DB4" 5432
	expect_fail "web -> db 5432/tcp" tcp6_ok web "$DB4" 5432
	expect_fail "outsider -> db 5432/tcp" tcp6_ok outsider "$DB4" 5432
}
e2e_log "== the policy, enforced"
matrix

e2e_log "== spoofed source"
e2e_spoof_check api outsider web "$API4" "$WEB4"

e2e_log "== revoking access stops an established connection"
e2e_revoke_check web "$API4" 8080 "$POL/10-api.yaml"

e2e_log "== a container joins the pod and leaves it: the pod's labels follow"
pod_label() { moat endpoints -o json | python3 -c 'import json, sys
e = [e for e in json.load(sys.stdin) if e["name"] == "default/db"]
print(e[0]["labels"].get(sys.argv[1], "-") if e else "gone")' "$1"; }
has_extra() { [ "$(pod_label extra)" = yes ]; }
no_extra() { [ "$(pod_label extra)" = - ]; }
e2e_run db-extra --pod db --label extra=yes
wait_for 50 has_extra || e2e_fail "the pod did not take db-extra's label (extra=$(pod_label extra))"
docker rm -f -t 0 db-extra >/dev/null
wait_for 50 no_extra || e2e_fail "the pod kept db-extra's label after it left"
e2e_log "ok: extra=yes came with db-extra and went with it"
expect_ok "api -> db 5432/tcp after" tcp6_ok api "$DB4" 5432

e2e_log "== kill -9 moatd: a container started meanwhile reaches nothing, then is known"
kill -KILL "$MOATD_PID"; wait "$MOATD_PID" 2>/dev/null || true; MOATD_PID=
expect_fail "outsider -> api with moatd dead" tcp6_ok outsider "$API4" 8080
e2e_run_host newbie --network front --label app=web
expect_fail "new container (labelled web) -> api while moatd is down" tcp6_ok newbie "$API4" 8080
start_moatd
expect_ok "new container, once known, -> api" wait_for 50 tcp6_ok newbie "$API4" 8080
expect_fail "outsider -> api after the restart" tcp6_ok outsider "$API4" 8080

e2e_log "== the Podman service killed and started again: moatd resyncs and follows it"
# podman exec needs the service: reach into the containers' namespaces directly meanwhile
WEB_PID=$(podman inspect -f '{{.State.Pid}}' web) OUT_PID=$(podman inspect -f '{{.State.Pid}}' outsider)
ns_tcp_ok() { nsenter --net=/proc/"$1"/ns/net python3 -c "$_py_client" tcp "$2" "$3" "moat-$RANDOM"; }
e2e_podman_kill KILL
down() { moat status -o json | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["runtime_up"])'; }
wait_for 100 down || e2e_fail "moatd did not notice the service was gone"
expect_ok "web -> api with the service down" ns_tcp_ok "$WEB_PID" "$API4" 8080
expect_fail "outsider -> api with the service down" ns_tcp_ok "$OUT_PID" "$API4" 8080
e2e_podman_start
up() { moat status -o json | python3 -c 'import json,sys; sys.exit(not json.load(sys.stdin)["runtime_up"])'; }
wait_for 100 up || e2e_fail "moatd did not reconnect to the service"
e2e_run_host late --network front --label app=web
expect_ok "a container started after the restart -> api" wait_for 50 tcp6_ok late "$API4" 8080
docker rm -f -t 0 newbie >/dev/null
gone() { ! listed newbie; }
wait_for 50 gone || e2e_fail "a container removed after the restart is still listed"
matrix
echo PASS
