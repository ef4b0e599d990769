#!/bin/bash
# Faults and restarts of moatd (topology and prober: churn_lib.sh):
#  1. N restarts of moatd (TERM and KILL alternately) while the prober tries allowed and
#     denied pairs every 50 ms and a long-lived allowed TCP stream runs: zero verdict flips,
#     the stream survives.
#  2. kill -9 of moatd at random moments while policies are reloaded and containers churn:
#     the kernel holds a whole ruleset (it lists, and normalised it equals what a freshly
#     started moatd applies for the same policy version, crowd of churn containers aside);
#     a container started while moatd is down reaches nothing; after the restart moatd's
#     endpoints are exactly Docker's containers.
#  3. A policy change that revokes the stream: it stops; the other allowed pair still works.
# Short by default; MOAT_SOAK=1 for the long run (100 restarts, 20 kills).
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/churn_lib.sh"

RESTARTS=$(ch_scale 10 100)
KILLS=$(ch_scale 3 20)
T0=$SECONDS

churn_setup
D=$E2E_DIR

ch_mark "== 1. $RESTARTS restarts under the prober and a stream"
probe_start all stream
wait_for 100 sh -c "[ \$(python3 -c 'import json; print(json.load(open(\"$D/probe/all/sum.json\"))[\"stream\"][\"echoes\"])') -gt 3 ]" ||
	e2e_fail "the stream did not start"
for i in $(seq "$RESTARTS"); do
	sig=TERM
	[ $((i % 2)) = 1 ] && sig=KILL
	echo "$(date +%s.%N) restart $i: $sig" >>"$D/events.log"
	ch_moatd_kill "$sig"
	[ $((RANDOM % 2)) = 0 ] && sleep 0.$((RANDOM % 5))
	ch_moatd_start
	echo "$(date +%s.%N) restart $i: up" >>"$D/events.log"
done
e2e_log "ok: $RESTARTS restarts survived"
sleep 1
probe_sum all '"# stream: %d echoes, max gap %d ms, error %r" % (s["stream"]["echoes"], s["stream"]["max_gap_ms"], s["stream"]["error"])' >&2
[ -z "$(probe_sum all 's["stream"]["error"]')" ] || e2e_fail "the stream broke during restarts"
[ "$(probe_sum all 's["stream"]["since_last_echo_ms"]')" -lt 2000 ] || e2e_fail "the stream stalled"

ch_mark "== 2. $KILLS kills (-9) during policy applies and container churn"
for a in 1 2; do e2e_run "anchor$a" --network churn --label app=churn; done
wait_for 300 ch_endpoints_match || e2e_fail "moatd does not list the anchors"
ch_state ref srv vault prober	# the stable containers' interfaces, for when moatd is dead
# churn_loop TAG - start a container, remove the previous one, until churn/stop exists.
churn_loop() {
	local i=0 prev=
	while [ ! -f "$D/churn/stop" ]; do
		i=$((i + 1))
		docker run -d --name "$1-$i" --network churn --label app=churn moat-busybox \
			"${E2E_SLEEP[@]}" >/dev/null 2>&1 && echo "$(date +%s.%N) started $1-$i" >>"$D/events.log"
		[ -n "$prev" ] && docker rm -f "$prev" >/dev/null 2>&1 &&
			echo "$(date +%s.%N) removed $prev" >>"$D/events.log"
		prev=$1-$i
	done
}
reload_loop() {
	while [ ! -f "$D/churn/stop" ]; do
		if [ -f "$D/policies/30-extra.yaml" ]; then ch_extra off; else ch_extra on; fi
		moat policy reload >/dev/null 2>&1 && echo "$(date +%s.%N) reload" >>"$D/events.log"
		sleep 0.$((RANDOM % 3))
	done
}
for k in $(seq "$KILLS"); do
	rm -f "$D/churn/stop"
	churn_loop "k$k-a" & p1=$!
	churn_loop "k$k-b" & p2=$!
	reload_loop & p3=$!
	sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
	ch_moatd_kill KILL
	ch_mark "kill $k: moatd killed"
	touch "$D/churn/stop"
	wait "$p1" "$p2" "$p3"
	ns nft list table inet moat >"$D/k.inet" || e2e_fail "kill $k: table inet moat does not list"
	ns nft list table bridge moat >"$D/k.bridge" || e2e_fail "kill $k: table bridge moat does not list"
	ch_state "K$k" srv vault prober
	if [ $((k % 5)) = 1 ]; then
		# labelled like the prober, so it would be allowed to srv:8080 once known
		e2e_run newbie --network churn --label app=prober
		expect_fail "kill $k: container started while moatd is down -> srv:8080" tcp_ok newbie "$SRV4" 8080
		expect_fail "kill $k: container started while moatd is down -> vault:8080" tcp_ok newbie "$VAULT4" 8080
		docker rm -f newbie >/dev/null
	fi
	if grep -q '9000' "$D/state.K$k.norm"; then v=on; else v=off; fi
	ch_extra "$v"
	ch_moatd_start
	ch_mark "kill $k: moatd restarted"
	wait_for 300 ch_endpoints_match || { cat "$D/match.out" >&2; e2e_fail "kill $k: moatd's endpoints are not Docker's containers"; }
	ch_state "F$k" srv vault prober
	diff -u "$D/state.K$k.norm" "$D/state.F$k.norm" >&2 ||
		e2e_fail "kill $k: the ruleset left by the killed moatd is not what a fresh moatd applies (policy 30-extra $v)"
	e2e_log "ok: kill $k: whole ruleset (30-extra $v), $(grep -c ' elem ' "$D/state.F$k.norm") distinct elements; state matches Docker: $(tail -n 1 "$D/match.out")"
	docker ps -aq --filter name='^k[0-9]' | xargs -r docker rm -f >/dev/null
done

ch_mark "== 3. revoking the stream's port stops it; the other allowed pair keeps working"
sed -i 's/ports: \[{port: 8080}, {port: 8082}\]/ports: [{port: 8080}]/' "$D/policies/10-srv.yaml"
moat policy reload >/dev/null
sleep 1.5
a=$(probe_sum all 's["stream"]["echoes"]'); sleep 1.5; b=$(probe_sum all 's["stream"]["echoes"]')
[ "$a" = "$b" ] || e2e_fail "revoked stream still flowing ($a -> $b echoes)"
e2e_log "ok: revoked stream stopped at $b echoes"
sleep 1
probe_stop all
probe_check all
hits=$(probe_sum all 'sum(v["attempts"] for k, v in s["pairs"].items() if k.startswith("deny"))')
allowed=$(probe_sum all 'sum(v["attempts"] for k, v in s["pairs"].items() if k.startswith("allow"))')
e2e_log "FIGURES 60-restarts: $RESTARTS restarts and $KILLS kill -9 survived; $hits denied attempts, 0 succeeded; $allowed allowed attempts, 0 verdict flips; stream $b echoes; $((SECONDS - T0)) s"
grep -E 'error|warn' "$D/moatd.log" | sort | uniq -c | sort -rn | head -n 10 >&2 || true
echo "PASS"
