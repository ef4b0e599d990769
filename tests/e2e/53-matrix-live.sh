#!/bin/bash
# The live matrix at a thousand endpoints: `moat policy matrix` from moatd is complete and
# the same as the offline one over the same files (text, and JSON entry for entry), however
# large (8 ports here: 8 million verdicts, some 90 MB of text, where one reply of 4 MiB was
# the most the socket carried); moatd's memory stays small while it streams; a matrix cut
# short (moatd stopped mid-way) is an error, never a shorter matrix.
#
#   netns moat-XXXXXX: moatd --runtime none --endpoints eps.yaml (1,000 endpoints of 100
#   services in 5 namespaces, one ingress policy per service); moat on the host side of its
#   socket
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_moat_dirs
python3 - "$D" <<'EOF'
import sys
d, n, s = sys.argv[1], 1000, 100
with open(d + "/eps.yaml", "w") as f:
    f.write("endpoints:\n")
    for i in range(n):
        f.write("  - {name: e%d, namespace: ns%d, labels: {app: svc%d}, ips: [10.1.%d.%d]}\n"
                % (i, i % s % 5, i % s, i // 250, i % 250 + 1))
with open(d + "/policies/p.yaml", "w") as f:
    for k in range(s):
        f.write("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                "metadata: {name: p%d, namespace: ns%d}\nspec:\n"
                "  podSelector: {matchLabels: {app: svc%d}}\n  ingress:\n"
                "    - from: [{podSelector: {matchLabels: {app: svc%d}}, namespaceSelector: {}},"
                " {podSelector: {matchLabels: {app: svc%d}}, namespaceSelector: {}}]\n"
                "      ports: [{port: 80}, {port: 8080, endPort: 8090}]\n"
                % (k, k % 5, k, (k + 1) % s, (k + 7) % s))
EOF
moatd_start "$MOATD" --config /dev/null --runtime none --endpoints "$D/eps.yaml" \
	--policy-dir "$D/policies" --socket "$SOCK" --state-dir "$D/state" --resync-interval 0
e2e_on_exit moatd_stop
wait_for 100 sh -c "'$MOAT' --socket '$SOCK' status 2>/dev/null | grep -q '^endpoints  *1000\b'" ||
	{ cat "$D/moatd.log" >&2; e2e_fail "moatd did not take the 1,000 endpoints"; }
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$MOATD_PID/status"; }
before=$(hwm)

PORTS=()
for p in 80 81 8080 8085 8091 443 53/udp 9100; do PORTS+=(--port "$p"); done
moat policy matrix "${PORTS[@]}" >"$D/live.txt" 2>"$D/live.err" ||
	{ cat "$D/live.err" >&2; e2e_fail "the live matrix failed"; }
"$MOAT" policy matrix -p "$D/policies" -e "$D/eps.yaml" "${PORTS[@]}" >"$D/offline.txt"
cmp -s "$D/live.txt" "$D/offline.txt" || e2e_fail "the live matrix differs from the offline one"
rows=$(grep -c '^ns[0-9]/e' "$D/live.txt")
[ "$rows" = 8000 ] || e2e_fail "$rows rows in the live matrix, want 8 ports x 1,000"
e2e_log "ok: live text matrix, 8 x 1,000 x 1,000, $(stat -c %s "$D/live.txt") bytes, as offline"

moat policy matrix --port 8080 -o json >"$D/live.json"
"$MOAT" policy matrix -p "$D/policies" -e "$D/eps.yaml" --port 8080 -o json >"$D/offline.json"
cmp -s "$D/live.json" "$D/offline.json" || e2e_fail "the live JSON matrix differs from the offline one"
python3 - "$D/live.json" <<'EOF' || e2e_fail "the JSON matrix is not the documented shape"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["ports"] == ["8080/tcp"], m["ports"]
v = m["verdicts"]
assert len(v) == 1000 * 1000, len(v)
assert set(v[0]) == {"from", "to", "port", "verdict"}, v[0]
assert {x["verdict"] for x in v} == {"allow", "deny"}
# svc1 (ns1/e1) may reach svc0 (ns0/e0) on 8080: p0 allows from svc1 and svc7
assert {(x["from"], x["to"]): x["verdict"] for x in v[:3000] + v[-3000:]
        if x["from"] == "ns0/e0"}.get(("ns0/e0", "ns0/e0")) == "allow"
allowed = {(x["from"], x["to"]) for x in v if x["verdict"] == "allow"}
assert ("ns1/e1", "ns0/e0") in allowed and ("ns2/e2", "ns0/e0") not in allowed
EOF
after=$(hwm)
e2e_log "ok: JSON matrix; moatd's peak RSS ${before} kB before the matrices, ${after} kB after"

# Cut short: moatd stops while a 64-port matrix (64 million verdicts) is on its way.
PORTS=()
for p in $(seq 1001 1064); do PORTS+=(--port "$p"); done
( { rc=0; moat policy matrix "${PORTS[@]}" 2>"$D/cut.err" || rc=$?; echo $rc >"$D/cut.rc"; } |
	{ head -c 1000000 >/dev/null; sleep 3; cat >/dev/null; } ) &
reader=$!
sleep 1
moatd_stop
wait "$reader" || true
[ "$(cat "$D/cut.rc")" = 1 ] || e2e_fail "a matrix cut short exited $(cat "$D/cut.rc"), want 1"
grep -q "the matrix ended after [0-9]* of its 64000 rows" "$D/cut.err" ||
	{ cat "$D/cut.err" >&2; e2e_fail "a matrix cut short did not say so"; }
e2e_log "ok: a matrix cut short: $(cat "$D/cut.err")"
e2e_log "PASS"
