#!/bin/bash
# Hostile labels and names: containers whose labels carry quotes, newlines, control
# characters, 64 KiB values, invalid UTF-8, NUL (through the API), nft syntax, look-alikes of
# a privileged label, and keys imitating Kubernetes', Compose's and Moat's own, gain no
# rights; moatd keeps running, `moat endpoints -o json` parses and shows their labels exactly,
# `nft list ruleset` works and nothing else changes. A container joining another's network
# namespace is decided by the owner's labels only. Positive controls: the same policies do
# let in web, a container sharing web's namespace, a container carrying both Compose labels,
# and (once moatd trusts the label with --kubernetes) the kube-system one.
#
#   netns moat-XXXXXX: dockerd, moatd (a plain Docker node: no --kubernetes until the end)
#   +-------------------------------------------------------------------------------+
#   |  br-front 10.252.1.0/24 fd00:252:1::/64                                       |
#   +---|------|-------|--------|---------|--------|----------|--------|------------+
#     api    web    nobody    jail     h-ns   h-compose  h-weird..  h-nul   compose-twin
#     :8080  :8080    |                                             (API)
#                +----------+       +----------+
#                | h-join   |       | join-web |   --network container:nobody / :web
#                +----------+       +----------+
#   policies: api <- web on 8080; api <- namespace kube-system; api <- Compose service
#   backend of project shop on 8080; jail may send nothing (egress).
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network front 10.252.1.0/24 fd00:252:1::/64

e2e_moat_dirs

cat >"$POL/10-api.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080}]
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
    - from: [{podSelector: {composeService: backend, composeProject: shop}}]
      ports: [{port: 8080}]
EOF
cat >"$POL/20-jail.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: jail}
spec:
  podSelector: {matchLabels: {app: jail}}
  policyTypes: [Egress]
EOF

phase "docker's own refusals"
for n in 'a"b' $'a\nb' 'a b' '-x' $'a\x01b'; do
	if docker create --name "$n" moat-busybox true >/dev/null 2>&1; then
		e2e_fail "docker accepted the container name $(printf %q "$n") (extend this test)"
	fi
done
e2e_log "ok: docker refuses names with quotes, newlines, spaces, control characters or a leading '-'"

run() { local c=$1; shift; e2e_run_host "$c" --network front "$@"; }
run api --label app=api & run web --label app=web & run nobody --label app=nobody &
run jail --label app=jail --label moat.io/mode=monitor --label moat.io/port.http=8080 &
wait
start_moatd() {
	moatd_start "$MOATD" --config /dev/null --runtime "$DOCKER_HOST" --policy-dir "$POL" \
		--socket "$SOCK" --state-dir "$D/state" --mode enforce --resync-interval 2 "$@"
	wait_for 100 moat status >/dev/null 2>&1 || { cat "$D/moatd.log" >&2; e2e_fail "moatd did not answer"; }
}
start_moatd
tcp6_echo_server api 8080
tcp6_echo_server web 8080
API4=$(ctr_ip api front) API6=$(ctr_ip api front 6) WEB4=$(ctr_ip web front)
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q 'default/jail.*out'" ||
	e2e_fail "jail not isolated"

# probe <<EOF lines "CTR DST PORT ok|fail" - every connection at once, then each verdict.
probe() {
	local lines=() pids=() l i=0 ctr dst port want got bad=0
	mapfile -t lines
	for l in "${lines[@]}"; do
		read -r ctr dst port want <<<"$l"
		{ if tcp6_ok "$ctr" "$dst" "$port"; then echo ok; else echo fail; fi >"$D/probe.$i"; } &
		pids+=($!) i=$((i + 1))
	done
	wait "${pids[@]}"	# not a bare wait: moatd is a child too
	i=0
	for l in "${lines[@]}"; do
		read -r ctr dst port want <<<"$l"
		got=$(cat "$D/probe.$i")
		i=$((i + 1))
		if [ "$got" = "$want" ]; then
			e2e_log "ok: $ctr -> $dst:$port $want"
		else
			e2e_log "WRONG: $ctr -> $dst:$port: wanted $want, got $got"; bad=1
		fi
	done
	[ "$bad" = 0 ] || { tail -n 20 "$D/moatd.log" >&2; e2e_fail "reachability differs from the policy"; }
}

phase "before: the rights of the plain containers, the ruleset"
probe <<EOF
web $API4 8080 ok
web $API6 8080 ok
nobody $API4 8080 fail
jail $WEB4 8080 fail
nobody $WEB4 8080 ok
EOF
ns nft -s list table ip filter >"$D/filter.before"
for c in forward input ingress egress; do ns nft -s list chain inet moat "$c"; done >"$D/chains.before"
moat endpoints -o json >"$D/eps.before"

phase "hostile containers"
BIG=$(head -c 65536 /dev/zero | tr '\0' A)
pids=()
WEIRD=h-weird-$(printf 'w%.0s' $(seq 120))
run h-ns --label app=evil --label io.kubernetes.pod.namespace=kube-system \
	--label io.kubernetes.pod.name=coredns --label io.kubernetes.container.name=coredns & pids+=($!)
run h-compose --label com.docker.compose.service=backend --label com.docker.compose.project=other & pids+=($!)
run compose-twin --label com.docker.compose.service=backend --label com.docker.compose.project=shop & pids+=($!)
run "$WEIRD" --label $'quote=a"b\'c`d$(id)\\e' --label $'newline=line1\nline2\r\n' \
	--label $'ctl=\x01\x02\x1b[31mred\x1b[0m\x7f\tend' --label $'bidi=\xe2\x80\xaegnp.exe' \
	--label 'nft=}; flush ruleset; table inet moat { chain forward { type filter hook forward priority -500; policy drop; } }' \
	--label "big=$BIG" \
	--label $'utf8=\xff\xfe\xc3(\xed\xa0\x80' --label 'empty=' --label $'app=web\n' \
	--label $'\xe2\x80\x8bapp=web' --label 'App=web' --label 'moat.io/mode=monitor' \
	--label "big2=$BIG" --label "big3=$BIG" & pids+=($!)
e2e_run_host h-join --network container:nobody --label app=web \
	--label io.kubernetes.pod.namespace=kube-system \
	--label com.docker.compose.service=backend --label com.docker.compose.project=shop & pids+=($!)
e2e_run_host join-web --network container:web --label app=nobody & pids+=($!)
wait "${pids[@]}"
# NUL in keys and values, white space in keys: the CLI cannot say them, the API takes them.
# "web\u0000evil" read as "web" (truncated) would be web.
curl -sf --unix-socket "$D/docker.sock" -H 'Content-Type: application/json' \
	-o "$D/nul.created" "http://docker/containers/create?name=h-nul" -d @- <<'EOF' ||
{"Image": "moat-host", "Cmd": ["sh", "-c", "trap 'exit 0' TERM; sleep 1000000 & wait"],
 "Labels": {"app": "web\u0000evil", "app\u0000x": "web", "k\u0000": "\u0000",
            "x\"}; flush ruleset; add table inet pwn #": "1", "app web": "web"},
 "HostConfig": {"NetworkMode": "front", "Binds": ["/usr:/usr:ro"]}}
EOF
	e2e_fail "the API refused a label with a NUL (extend this test)"
docker start h-nul >/dev/null
docker inspect -f '{{json .Config.Labels}}' h-nul | grep -qF 'web\u0000evil' ||
	e2e_fail "docker did not keep the NUL (the test would prove nothing)"
e2e_log "docker kept: $(docker inspect -f '{{json .Config.Labels}}' h-nul)"

HOSTILE="h-ns h-compose compose-twin $WEIRD h-nul"
listed() {
	moat endpoints -o json >"$D/eps.json" 2>/dev/null || return 1
	local c
	for c in $HOSTILE; do grep -q "\"default/$c\"" "$D/eps.json" || return 1; done
}
wait_for 100 listed || { tail "$D/moatd.log" >&2; e2e_fail "moatd does not list every hostile container"; }

phase "moat endpoints -o json parses and shows every label as docker has it"
for c in api web nobody jail $HOSTILE h-join join-web; do
	docker inspect "$c"
done | python3 -c 'import json, sys
dec, text, objs = json.JSONDecoder(), sys.stdin.read(), []
while text.strip():
    o, n = dec.raw_decode(text.lstrip()); objs += o; text = text.lstrip()[n:]
json.dump(objs, open(sys.argv[1], "w"))' "$D/inspect.json"
python3 - "$D/eps.json" "$D/inspect.json" <<'EOF' || e2e_fail "moat endpoints -o json is wrong"
import json, sys
eps = {e["name"]: e for e in json.load(open(sys.argv[1]))}
for ct in json.load(open(sys.argv[2])):
    name = ct["Name"].lstrip("/")
    mode = ct["HostConfig"]["NetworkMode"]
    if mode.startswith("container:"):
        assert not any(n.endswith("/" + name) for n in eps), name + " has an endpoint of its own"
        continue
    e = eps["default/" + name]      # every container is in "default" (no --kubernetes)
    want = {k.replace("\0", "\ufffd"): v.replace("\0", "\ufffd")
            for k, v in (ct["Config"]["Labels"] or {}).items()}
    assert e["labels"] == want, (name, set(e["labels"].items()) ^ set(want.items()))
    assert e["namespace"] == "default", e
print("labels of %d endpoints match docker's" % len(eps), file=sys.stderr)
assert eps["default/jail"]["isolated"] == {"ingress": False, "egress": True}
assert eps["default/jail"]["mode"] == "enforce", "a moat.io/mode label changed the mode"
assert eps["default/api"]["isolated"] == {"ingress": True, "egress": False}
for n in ("default/h-ns", "default/h-nul", "default/h-compose"):
    assert eps[n]["isolated"] == {"ingress": False, "egress": False}, n
EOF
e2e_log "ok: labels shown exactly (NUL as U+FFFD), every container in default, modes unchanged"
moat endpoints >"$D/eps.table"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$D/eps.table"; then
	e2e_fail "moat endpoints printed a raw control character"
fi
[ "$(wc -l <"$D/eps.table")" -eq "$(($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$D/eps.json") + 1))" ] ||
	e2e_fail "a label forged lines in moat endpoints"
e2e_log "ok: moat endpoints prints one line per endpoint, control characters escaped"

phase "hostile containers gain nothing; positive controls pass"
probe <<EOF
web $API4 8080 ok
join-web $API4 8080 ok
compose-twin $API4 8080 ok
nobody $API4 8080 fail
h-ns $API4 8080 fail
h-ns $API6 8080 fail
h-compose $API4 8080 fail
$WEIRD $API4 8080 fail
$WEIRD $API6 8080 fail
h-nul $API4 8080 fail
h-nul $API6 8080 fail
h-join $API4 8080 fail
h-join $API6 8080 fail
jail $WEB4 8080 fail
nobody $WEB4 8080 ok
EOF
e2e_log "(compose-twin carries both Compose labels: on a plain Docker node labels are all a"
e2e_log " container is, so whoever may start containers may claim any service)"

phase "moatd, the ruleset and everyone else unchanged"
e2e_alive "$MOATD_PID" || e2e_fail "moatd died"
ns nft list ruleset >"$D/ruleset" 2>"$D/ruleset.err" || { cat "$D/ruleset.err" >&2; e2e_fail "nft list ruleset failed"; }
grep -q '^table inet moat' "$D/ruleset" && grep -q '^table bridge moat' "$D/ruleset" ||
	e2e_fail "Moat's tables are gone"
if grep -q 'pwn\|priority -500\|flush' "$D/ruleset"; then e2e_fail "label text reached the ruleset"; fi
ns nft -s list table ip filter | diff -u "$D/filter.before" - >&2 || e2e_fail "docker's filter table changed"
for c in forward input ingress egress; do ns nft -s list chain inet moat "$c"; done |
	diff -u "$D/chains.before" - >&2 || e2e_fail "Moat's base chains changed"
python3 - "$D/eps.before" "$D/eps.json" <<'EOF' || e2e_fail "a plain container's endpoint changed"
import json, sys
a, b = ({e["name"]: e for e in json.load(open(p))} for p in sys.argv[1:])
for n in a:
    assert a[n] == b[n], (a[n], b[n])
EOF
e2e_log "ok: tables, base chains and the plain containers' endpoints as before"
grep -i "error" "$D/moatd.log" >&2 || true

phase "moatd still learns: containers started after the hostile ones"
run late-web --label app=web & p1=$!
run late-nobody --label app=nobody & p2=$!
wait "$p1" "$p2"
wait_for 100 tcp6_ok late-web "$API4" 8080 || e2e_fail "late-web (app=web) never got in"
probe <<EOF
late-nobody $API4 8080 fail
EOF

phase "restart from nothing (as after a reboot), trusting namespaces: the positive control"
moatd_stop
ns "$MOATD" --config /dev/null --flush >/dev/null 2>&1
start_moatd --kubernetes
wait_for 100 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q '^kube-system/h-ns'" ||
	{ tail "$D/moatd.log" >&2; e2e_fail "with --kubernetes, h-ns is not in kube-system"; }
probe <<EOF
h-ns $API4 8080 ok
h-join $API4 8080 fail
h-nul $API4 8080 fail
nobody $API4 8080 fail
web $API4 8080 ok
EOF
e2e_log "ok: the namespace policy lets kube-system in once the label is trusted, and only then"

phase "the annotation works where it belongs: on the policy"
sed -i 's/^metadata: {name: jail}$/metadata: {name: jail, annotations: {moat.io\/mode: monitor}}/' "$POL/20-jail.yaml"
moat policy reload >/dev/null
probe <<EOF
jail $WEB4 8080 ok
EOF
e2e_alive "$MOATD_PID" || e2e_fail "moatd died"
echo "PASS"
