#!/bin/bash
# Conformance: Kubernetes NetworkPolicy semantics, case by case. Each cases/NAME/ holds
# policies.yaml, expected.txt (and endpoints.yaml when the default topology, ../endpoints.yaml,
# does not fit). expected.txt is a truth table per port: "port 80/tcp", then one row per
# source endpoint (namespace/name order), one column per destination in the same order;
# "." allow, "X" deny; lines starting with # are comments. The runner asks
# `moat policy matrix -o json` for the ports named there and compares.
# MOAT is the binary (default build/moat); ONLY=pattern runs matching cases.
set -u
cd "$(dirname "$0")"
MOAT=${MOAT:-../../build/moat}
case "$MOAT" in /*) ;; *) [ -x "$MOAT" ] || MOAT=$(cd ../.. && pwd)/${MOAT#../../} ;; esac
pass=0 fail=0
if ! [ -x "$MOAT" ]; then
	echo "conformance: no moat binary at $MOAT (build it, or set MOAT)" >&2
	exit 1
fi

render() {	# matrix JSON on stdin -> the truth table format
	python3 -c '
import json, sys
m = json.load(sys.stdin)
names = []
for v in m["verdicts"]:
    if v["from"] not in names: names.append(v["from"])
cell = {(v["port"], v["from"], v["to"]): v["verdict"] for v in m["verdicts"]}
for p in m["ports"]:
    print("port", p)
    for f in names:
        print(f, " ".join("." if cell[(p, f, t)] == "allow" else "X" for t in names))
'
}

normalize() {	# drops comments and blank lines, squeezes spaces
	grep -v '^[[:space:]]*#' | grep -v '^[[:space:]]*$' | tr -s ' \t' '  ' | sed 's/ *$//'
}

for dir in cases/*/ tiers/*/; do
	name=$(basename "$dir")
	case "$name" in *"${ONLY:-}"*) ;; *) continue ;; esac
	eps=$dir/endpoints.yaml
	[ -f "$eps" ] || eps=endpoints.yaml
	ports=()
	for p in $(awk '$1 == "port" { print $2 }' "$dir/expected.txt"); do ports+=(--port "$p"); done
	want=$(normalize <"$dir/expected.txt")
	got=$("$MOAT" policy matrix -p "$dir/policies.yaml" -e "$eps" "${ports[@]}" -o json 2>&1 | render 2>&1 | normalize)
	if [ "$want" = "$got" ]; then
		pass=$((pass + 1)); echo "PASS $name"
	else
		fail=$((fail + 1)); echo "FAIL $name"
		diff <(echo "$want") <(echo "$got") | sed 's/^/    /'
		"$MOAT" policy matrix -p "$dir/policies.yaml" -e "$eps" "${ports[@]}" -o json 2>&1 | head -5 | sed 's/^/    | /'
	fi
done
echo "conformance: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
