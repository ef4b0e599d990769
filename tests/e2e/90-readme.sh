#!/bin/bash
# The README, tried as a newcomer would: a clean clone of the committed tree, the commands of
# "## Two commands" in order, then those of "### Poke at it", then `make demo-stop`; what they
# print is checked. `make test` is the command running this very test, so it is the one
# README command not run here (CI runs it).
#
#   clean clone (git clone of HEAD) -- make demo --> netns moat-readme-N: private dockerd,
#                                                    web, api, db, outsider, moatd
set -eu
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root" >&2; exit 77; }

T=$(mktemp -d /tmp/moat-readme.XXXXXX)
export MOAT_DEMO_DIR=$T/demo.readme MOAT_DEMO_NS=moat-readme-${T##*.}
# the web UI's forward: a port of the host's loopback nobody uses now (a demo may run beside)
MOAT_DEMO_WEB_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MOAT_DEMO_WEB_PORT
cleanup() {
	local rc=$?
	# set -e holds in a trap too: a step that finds nothing to undo must not change rc
	[ ! -d "$T/moat" ] || (cd "$T/moat" && make demo-stop >/dev/null 2>&1) || true
	ip netns del "$MOAT_DEMO_NS" 2>/dev/null || true
	rm -rf --one-file-system "$T"
	exit "$rc"
}
trap cleanup EXIT

git clone -q "$E2E_ROOT" "$T/moat"
cd "$T/moat"
README=README.md

# The lines of the first ```sh block after a heading.
block() {
	awk -v h="$1" '$0 == h { on = 1; next } on && /^```sh/ { inb = 1; next }
		inb && /^```/ { exit } inb { print }' "$README"
}

mapfile -t two < <(block "## Two commands" | sed 's/ *#.*//')
[ "${two[*]}" = "make demo make test" ] || e2e_fail "README's two commands changed: ${two[*]}"

e2e_log "== make demo (in a clean clone)"
t0=$SECONDS
make demo >"$T/demo.out" 2>&1 || { tail -40 "$T/demo.out" >&2; e2e_fail "make demo failed"; }
e2e_log "make demo took $((SECONDS - t0)) s"
out() { grep -qE "$1" "$T/demo.out" || { cat "$T/demo.out" >&2; e2e_fail "make demo did not print: $2"; }; }
out 'shop/outsider.*shop/db.*5432/tcp +denied +shop/db' "the denied flow with its policy"
out 'shop/api.*shop/db.*5432/tcp +allowed' "an allowed flow"
out 'shop/outsider \(.*\) -> shop/db .*denied' "the alert"
out 'ingress of shop/db: isolated \(enforce\) by shop/db' "the explanation"
out 'graph\.svg|digraph moat' "the service graph"
out 'apiVersion: networking.k8s.io/v1' "the learned policy"
out "web UI: http://127.0.0.1:$MOAT_DEMO_WEB_PORT/" "the web UI's address"
# the matrix, exactly: 9000/tcp then 5432/tcp, rows api, db, outsider, web
python3 - "$T/demo.out" <<'EOF' || e2e_fail "the demo's matrix is not the example policy's"
import re, sys
text = open(sys.argv[1]).read()
want = {
    "9000/tcp": {"shop/web": "allow deny deny allow", "shop/outsider": "deny deny allow deny",
                 "shop/api": "allow deny deny deny", "shop/db": "deny allow deny deny"},
    "5432/tcp": {"shop/api": "allow allow deny deny", "shop/outsider": "deny deny allow deny",
                 "shop/web": "deny deny deny allow", "shop/db": "deny allow deny deny"},
}
lines = text.splitlines()
for port, rows in want.items():
    i = next(i for i, l in enumerate(lines) if l.split()[:2] == [port, "shop/api"])
    got = {}
    for l in lines[i + 1:]:
        if not l.strip():
            break
        got[l.split()[0]] = " ".join(l.split()[1:])
    assert got == rows, (port, got)
EOF

e2e_log "== the README's commands to poke at it"
mapfile -t poke < <(block "### Poke at it")
[ "${#poke[@]}" -ge 5 ] || e2e_fail "the poke block is missing"
for line in "${poke[@]}"; do
	line=${line//\/tmp\/moat.demo/$MOAT_DEMO_DIR}
	line=${line//netns\/moat-demo/netns\/$MOAT_DEMO_NS}
	line=${line//127.0.0.1:9641/127.0.0.1:$MOAT_DEMO_WEB_PORT}
	e2e_log "\$ $line"
	eval "$line" >"$T/poke.out" 2>&1 || { cat "$T/poke.out" >&2; e2e_fail "README command failed: $line"; }
	case $line in
	*"moat status"*) grep -q '^mode  *enforce' "$T/poke.out" || e2e_fail "status: not enforcing" ;;
	*"moat endpoints"*) grep -q '^shop/db' "$T/poke.out" || e2e_fail "endpoints: no db" ;;
	*"policy explain"*) grep -q 'deny' "$T/poke.out" || e2e_fail "explain: not deny" ;;
	*"flows --verdict denied"*) grep -q 'shop/outsider' "$T/poke.out" || e2e_fail "flows: no denied flow" ;;
	*"moat alerts"*) grep -q 'shop/db' "$T/poke.out" || e2e_fail "alerts: none" ;;
	*"graph"*) dot -Tsvg "$T/poke.out" >/dev/null || e2e_fail "graph: not valid DOT" ;;
	*"nft list ruleset"*) grep -q 'table inet moat' "$T/poke.out" || e2e_fail "no table inet moat" ;;
	*"api/status"*) grep -q '"mode":"enforce"' "$T/poke.out" || e2e_fail "web UI: no status" ;;
	esac
done

e2e_log "== make demo-stop"
make demo-stop >"$T/stop.out" 2>&1 || { cat "$T/stop.out" >&2; e2e_fail "make demo-stop failed"; }
if ip netns list | grep -qw "$MOAT_DEMO_NS"; then e2e_fail "demo-stop left the namespace"; fi
[ ! -e "$MOAT_DEMO_DIR" ] || e2e_fail "demo-stop left $MOAT_DEMO_DIR"
pgrep -f "$MOAT_DEMO_DIR/" >/dev/null && e2e_fail "demo-stop left processes"
echo "PASS"
