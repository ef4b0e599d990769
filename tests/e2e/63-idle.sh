#!/bin/bash
# An idle moatd wakes for nothing (issue 13). With three containers, no traffic, the
# metrics and the web UI served and the periodic resync off, none of its threads wakes in
# 10 s: the control socket's sweep, the observe tick, MHD's timer, the web events' tick and
# the event stream's thread all sleep until they have work (before: about 100 wakeups). A
# timed learning session with nothing to learn still ends on time, and then it is idle
# again. With the resync every second, a node that changed nothing is listed, not
# inspected: dockerd's debug log counts the inspects (one full resync in ten inspects all;
# before: every resync did).
#
#   netns moat-XXXXXX
#   +----------------------------------------------------------------+
#   |  dockerd --log-level debug (counts API calls)                  |
#   |  moatd --metrics 127.0.0.1:9652 --web 127.0.0.1:9653           |
#   |   br-idle 10.215.1.0/24                                        |
#   |     |            |            |                                |
#   +-----|------------|------------|--------------------------------+
#      +-----+      +-----+      +-----+
#      | ca  |      | cb  |      | cc  |   (sleep; no traffic)
#      +-----+      +-----+      +-----+
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat

e2e_setup
e2e_dockerd_start --log-level debug
e2e_images
e2e_network idle 10.215.1.0/24
for c in ca cb cc; do e2e_run "$c" --network idle --label app="$c"; done

e2e_moat_dirs
# wakeups - context switches of every thread of moatd so far: each is a wakeup (or a
# preemption, which needs it running).
wakeups() { cat /proc/"$MOATD_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
# woke SECONDS - how often moatd woke over SECONDS of idleness.
woke() { local w0; w0=$(wakeups); sleep "$1"; echo $(( $(wakeups) - w0 )); }

start_moatd() {
	moatd_start "$MOATD" --config /dev/null --runtime "$DOCKER_HOST" --policy-dir "$D/policies" \
		--socket "$SOCK" --state-dir "$D/state" --mode enforce --metrics 127.0.0.1:9652 \
		--web 127.0.0.1:9653 --web-root "$E2E_ROOT/web" "$@"
	wait_for 100 sh -c "'$MOAT' --socket '$SOCK' endpoints 2>/dev/null | grep -q default/cc" ||
		e2e_fail "moatd did not list the containers"
}

e2e_log "== idle, resync off"
start_moatd --resync-interval 0
ns curl -sf http://127.0.0.1:9652/metrics | grep -q '^moat_endpoints 3' ||
	e2e_fail "the metrics do not count three endpoints"
ns curl -sf http://127.0.0.1:9653/ >/dev/null || e2e_fail "the web UI does not answer"
sleep 6		# past MHD's connection timeouts (5 s, 10 s idle: the connections are closed)
sleep 5
n=$(woke 10)
e2e_log "moatd woke $n times in 10 s"
[ "$n" -le 3 ] || e2e_fail "an idle moatd woke $n times in 10 s (expected none)"

e2e_log "== a timed learning session with nothing to learn ends on time"
moat learn start --duration 2s >/dev/null
sleep 3.5
[ "$(moat learn status -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])")" = stopped ] ||
	e2e_fail "the 2 s session had not stopped after 3.5 s: $(moat learn status -o json)"
sleep 1.5	# the saver's outcome looked at
n=$(woke 5)
e2e_log "then moatd woke $n times in 5 s"
[ "$n" -le 2 ] || e2e_fail "after the session moatd woke $n times in 5 s (expected none)"
moatd_stop

e2e_log "== resync every second: a node that changed nothing is listed, not inspected"
start_moatd --resync-interval 1
sleep 2
l0=$(grep -c 'Calling GET /v[0-9.]*/containers/json' "$D/dockerd.log" || true)
i0=$(grep -cE 'Calling GET /v[0-9.]*/containers/[0-9a-f]{12,}/json' "$D/dockerd.log" || true)
sleep 12
l1=$(grep -c 'Calling GET /v[0-9.]*/containers/json' "$D/dockerd.log" || true)
i1=$(grep -cE 'Calling GET /v[0-9.]*/containers/[0-9a-f]{12,}/json' "$D/dockerd.log" || true)
e2e_log "in 12 s: $((l1 - l0)) listings, $((i1 - i0)) inspects"
[ $((l1 - l0)) -ge 6 ] || e2e_fail "expected a listing a second, got $((l1 - l0)) in 12 s"
[ $((i1 - i0)) -le 6 ] || e2e_fail "$((i1 - i0)) inspects in 12 s of an unchanged node (a full resync in ten inspects 3)"
e2e_log "== a container started now is enforced (events and resync still work)"
e2e_run cd --network idle --label app=cd
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints 2>/dev/null | grep -q default/cd" ||
	e2e_fail "the new container cd is not listed"
echo "PASS"
