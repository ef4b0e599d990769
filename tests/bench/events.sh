#!/bin/bash
# Work per event (issue 13): event to enforced and moatd's CPU per change at 1,000 and 10,000
# endpoints, 1,000 NetworkPolicies, measured side by side in one run (the sizes alternate,
# ROUNDS times). The endpoints come from a directory (moatd --endpoints DIR) of files of
# PER_FILE endpoints each; a change rewrites one small file of it (a replica comes, then goes),
# which is what a container start or stop is to moatd, without 10,000 containers. Timed from
# the rename to the kernel's notification of the new ep4 element (outside), and by moatd
# itself (inside: status event_to_enforced). Targets are printed beside the figures, never
# asserted: timing on a shared machine is noise for a pass/fail test.
#
#   root namespace (never touched)
#   ..........................................................
#   netns $NS: moatd --runtime none --endpoints $D/ep-N (no veth needed: what is timed is
#   moatd and the kernel's sets)
#
# Usage (root): B=build tests/bench/events.sh   (make bench runs it)
#   EVENTS_SIZES="1000 10000" EVENTS_CHANGES=200 EVENTS_ROUNDS=2 EVENTS_PER_FILE=100
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${B:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
SIZES=${EVENTS_SIZES:-"1000 10000"}
CHANGES=${EVENTS_CHANGES:-200}
ROUNDS=${EVENTS_ROUNDS:-2}
PER_FILE=${EVENTS_PER_FILE:-100}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
GEN=("$PY" "$ROOT/tests/bench/enforce_gen.py")
PROBE=("$PY" "$ROOT/tests/bench/enforce_probe.py")

[ "$(id -u)" = 0 ] || { echo "events: skipped (needs root)"; exit 0; }
for t in nft "$PY" "$B/moatd"; do
	command -v "$t" >/dev/null || { echo "events: skipped ($t missing; make deps, make all)"; exit 0; }
done

D=$(mktemp -d /tmp/moat-events.XXXXXX)
NS=mevents-${D##*.}
SOCK=$D/moatd.sock
RES=$D/results.jsonl
MOATD_PID=

log() { printf '# %s\n' "$*" >&2; }

moatd_stop() {
	[ -n "$MOATD_PID" ] || return 0
	kill -TERM "$MOATD_PID" 2>/dev/null || true
	wait "$MOATD_PID" 2>/dev/null || true
	MOATD_PID=
}

cleanup() {
	local rc=$?
	trap - EXIT
	set +e
	moatd_stop
	ip netns del "$NS" 2>/dev/null
	if [ "$rc" != 0 ] && [ -f "$D/moatd.log" ]; then
		echo "--- moatd.log (tail)" >&2
		tail -n 20 "$D/moatd.log" >&2
	fi
	rm -rf --one-file-system "$D"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run SIZE - moatd on a directory of SIZE endpoints; CHANGES changes; one JSON line.
run() {
	local n=$1 dir=$D/ep-$1 st
	[ -d "$dir" ] || "${GEN[@]}" endpoints-dir "$dir" "$n" "$PER_FILE"
	rm -f "$dir/zz-churn.json"
	rm -rf "$D/state"
	nsenter --net=/var/run/netns/"$NS" "$B/moatd" --config /dev/null --runtime none \
		--endpoints "$dir" --policy-dir "$D/policies" --socket "$SOCK" --state-dir "$D/state" \
		--log-level warn </dev/null >>"$D/moatd.log" 2>&1 &
	MOATD_PID=$!
	st=$("${PROBE[@]}" status "$SOCK" 1200)
	log "moatd up with $("$PY" -c 'import json,sys; print(json.load(sys.stdin)["endpoints"])' <<<"$st") endpoints; $CHANGES changes"
	printf '{"size":%d,%s\n' "$n" "$(nsenter --net=/var/run/netns/"$NS" "${PROBE[@]}" \
		events-dir "$SOCK" "$MOATD_PID" "$dir" "$CHANGES" | sed 's/^{//')" >>"$RES"
	moatd_stop
}

report() {
	"$PY" - "$RES" <<-'EOF'
	import json, sys
	rows = [json.loads(l) for l in open(sys.argv[1])]
	sizes = sorted({r["size"] for r in rows})
	med = lambda v: sorted(v)[len(v) // 2]
	print("\nMoat work per event: 1,000 policies, endpoints from a directory, one small file "
	      "changed per event; median over %d round(s)" % (len(rows) // len(sizes)))
	print("%-9s %-21s %-21s %-12s %s" % ("endpoints", "outside p50/p99 ms", "inside p50/p99 ms",
	                                     "CPU ms/chg", "deltas/whole"))
	agg = {}
	for n in sizes:
	    rs = [r for r in rows if r["size"] == n]
	    o50, o99 = med([r["outside"]["p50_us"] for r in rs]) / 1e3, med([r["outside"]["p99_us"] for r in rs]) / 1e3
	    i50, i99 = med([r["daemon"]["p50_us"] for r in rs]) / 1e3, med([r["daemon"]["p99_us"] for r in rs]) / 1e3
	    cpu = med([r["cpu_ms"] for r in rs])
	    agg[n] = (o50, cpu)
	    ch = rs[-1]["changes"]
	    print("%-9d %-21s %-21s %-12.3f %d/%d" % (n, "%.2f / %.2f" % (o50, o99), "%.2f / %.2f" % (i50, i99),
	                                               cpu, ch["delta"], ch["whole"]))
	print("targets at 10,000 endpoints: p50 < 2 ms, p99 < 10 ms")
	if len(sizes) > 1:
	    lo, hi = sizes[0], sizes[-1]
	    print("growth %d -> %d endpoints: p50 x%.2f, CPU per change x%.2f (target: at most x1.5)"
	          % (lo, hi, agg[hi][0] / agg[lo][0], agg[hi][1] / max(agg[lo][1], 1e-9)))
	EOF
}

main() {
	ip netns add "$NS"
	nsenter --net=/var/run/netns/"$NS" ip link set lo up
	"${GEN[@]}" policies "$D/policies"
	for ((r = 0; r < ROUNDS; r++)); do
		for n in $SIZES; do
			run "$n"
		done
	done
	report
}

main
