#!/bin/bash
# Docker-node benchmark (issue 13): what Moat costs two containers on a real Docker node,
# beside Docker alone and beside hand-written DOCKER-USER rules for the same policy, and
# what moatd costs idle. Rounds are interleaved (the order of the states rotates every round)
# so that a ratio compares measurements taken seconds apart on a machine whose load drifts:
#   a  Docker alone: dockerd --iptables, its bridge network, no policy
#   b  Docker + moatd --mode enforce, the policy below, NFLOG capture on: every connection
#      must be a flow (checked: the flow's count against the connections the client made;
#      records the kernel could not queue are shown)
#   c  Docker + DOCKER-USER rules for the same policy (iptables-nft in dockerd's namespace):
#      established passes, client -> server on 8000 and 5201 passes, the rest to the server
#      is dropped
#   f  the floor: Docker + Moat's three base chains (bridge prerouting and forward, inet
#      forward) with no rule but the connection-start log, moatd stopped with its log socket
#      bound. What (f) costs is there before any rule
#   h  (b)'s ruleset with moatd stopped (SIGSTOP) the same way: the kernel builds every record
#      as in (b) and (f), nobody reads them. (h) beyond (f) is what the rules cost, (b) beyond
#      (h) what reading the records costs
# Per round and state: iperf3 TCP (bulk) and the connection rate (connect, 1 byte each way,
# close) of tests/bench/enforce_probe.py; medians and the median per-round ratio to (a). The
# connection-rate client and server are pinned to CPUs 0 and 1: where the scheduler puts two
# processes that take turns decides their rate more than any ruleset (seen here: unpinned
# rounds of one state differed by 30%).
# Beside the rate, the node's CPU per connection (every CPU's user, system and interrupt
# time from /proc/stat, not idle or stolen, over the connection-rate part): the rate of two
# processes that take turns is their latency, which a virtual machine's wakeups stretch by
# more than the work added, so the CPU each connection costs says more sharply what a ruleset
# adds, and the difference to (a) says it in microseconds.
# Then moatd idle with three containers and no traffic: its CPU from /proc/PID (schedstat
# of its threads, and stat's ticks) over BENCH_IDLE seconds. Targets are printed beside the
# figures, never asserted.
#
#   root namespace (never touched)
#   ..........................................................................
#   netns moat-XXXXXX (tests/e2e/lib.sh): dockerd --iptables, moatd in (b)
#   +------------------------------------------------------------------------+
#   |  br-bench 10.97.0.0/24 (DOCKER-USER rules in (c), table inet moat in (b))|
#   |      |  vethA                     |  vethB            |  vethC          |
#   +------|----------------------------|-------------------|-----------------+
#     +-----------------+        +-----------------+   +---------+
#     | cli (moat-host) | -----> | srv (moat-host) |   | idle    |  (idle part only)
#     | app=client      |  8000  | app=server      |   +---------+
#     | crr-client,     |  5201  | crr-server 8000 |
#     | iperf3 -c       |        | iperf3 -s 5201  |
#     +-----------------+        +-----------------+
#
# Usage (root): B=build tests/bench/docker_node.sh     (make bench runs it)
#   BENCH_SECONDS=3 BENCH_RUNS=9 BENCH_IDLE=300 (0: no idle part)
#   BENCH_STATES="a b c f h" (a subset to look at one, e.g. under perf: BENCH_STATES=b)
set -euo pipefail
. "$(dirname "$0")/../e2e/lib.sh"
B=${B:-build}
case $B in /*) ;; *) B=$E2E_ROOT/$B ;; esac
SECS=${BENCH_SECONDS:-3}
RUNS=${BENCH_RUNS:-9}
IDLE=${BENCH_IDLE:-300}
STATES=${BENCH_STATES:-"a b c f h"}
PY=/usr/bin/python3	# a pyenv shim first in PATH costs seconds per start (also in containers)
PROBE=/bench/enforce_probe.py	# tests/bench, mounted into the containers

[ "$(id -u)" = 0 ] || { echo "docker_node: skipped (needs root)"; exit 0; }
for t in "$E2E_DOCKERD" "$E2E_DOCKER" iperf3 iptables-nft conntrack "$PY" "$B/moatd" "$B/moat"; do
	command -v "$t" >/dev/null || { echo "docker_node: skipped ($t missing; make deps, make all)"; exit 0; }
done

e2e_setup
D=$E2E_DIR
SOCK=$D/moatd.sock
RES=$D/results.jsonl
moat() { "$B/moat" --socket "$SOCK" "$@"; }
result() { printf '%s\n' "$1" >>"$RES"; }
jget() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# cpu_ns PID - the CPU time PID's threads ran, in ns (schedstat: exact, where stat counts
# whole ticks; threads that ended are not counted: moatd's are the loop's, the event
# stream's and the baseline saver's, and the short ones of a full resync, see idle).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'; }
# switches PID - context switches of PID's threads: how often it woke.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
# node_ticks - the CPU time every CPU spent working (user, nice, system, irq, softirq; not
# idle, iowait or steal), in clock ticks.
node_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# ticks PID - utime + stime of every thread, ended ones too, in clock ticks.
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

e2e_dockerd_start --iptables=true
e2e_images
e2e_network bench 10.97.0.0/24
run_ctr() { e2e_run_host "$@" --network bench -v "$E2E_ROOT/tests/bench:/bench:ro"; }
run_ctr srv --label app=server
run_ctr cli --label app=client
SRV=$(ctr_ip srv bench) CLI=$(ctr_ip cli bench)
docker exec -d srv taskset -c 1 "$PY" "$PROBE" crr-server 8000
docker exec -d srv iperf3 -s -p 5201

mkdir -p "$D/policies" "$D/state"
cat >"$D/policies/server.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-from-client}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{port: 8000}, {port: 5201}]
EOF
# Before Docker's own "-j RETURN", in this order (inserted at 1, 2, 3).
USER_RULES=(
	"-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
	"-s $CLI -d $SRV -p tcp -m multiport --dports 8000,5201 -j RETURN"
	"-d $SRV -j DROP"
)

# reach_expect PORT WORD - the client's view of the server's PORT is WORD (open, refused,
# timeout): the positive control that a state is what it says.
reach_expect() {
	local got i
	for i in $(seq 30); do
		got=$(docker exec cli "$PY" "$PROBE" reach "$SRV" "$1")
		[ "$got" = "$2" ] && return 0
		sleep 0.2
	done
	e2e_fail "srv:$1 from cli is $got, expected $2"
}

moat_up() {
	moatd_start "$B/moatd" --config /dev/null --runtime "$DOCKER_HOST" --policy-dir "$D/policies" \
		--socket "$SOCK" --state-dir "$D/state" --mode enforce --log-level warn "$@"
	wait_for 100 sh -c "'$B/moat' --socket '$SOCK' endpoints 2>/dev/null | grep -q default/cli" ||
		e2e_fail "moatd did not list the containers"
}
moat_down() {
	moatd_stop
	ns "$B/moatd" --config /dev/null --flush >>"$D/moatd.log" 2>&1
}
# floor_up - moatd's tables replaced by its base chains (schema.c's hooks and priorities)
# with only the connection-start log, while moatd is stopped (SIGSTOP: it would restore its
# ruleset) and its NFLOG socket stays bound, so that the kernel builds each record.
floor_up() {
	moat_up
	reach_expect 8001 timeout	# its ruleset is in: there are tables to replace
	kill -STOP "$MOATD_PID"
	ns nft -f - <<'EOF'
delete table inet moat
delete table bridge moat
table inet moat {
	chain forward {
		type filter hook forward priority -10; policy accept;
		ct state new log prefix "moat:pass" group 1 snaplen 128
	}
}
table bridge moat {
	chain prerouting { type filter hook prerouting priority -300; policy accept; }
	chain forward { type filter hook forward priority -300; policy accept; }
}
EOF
}
floor_down() {
	ns nft delete table inet moat
	ns nft delete table bridge moat
	kill -CONT "$MOATD_PID"
	moat_down
}

enter() {
	case $1 in
	a) ;;
	b) moat_up; reach_expect 8001 timeout ;;
	f) floor_up ;;
	h) moat_up; reach_expect 8001 timeout; kill -STOP "$MOATD_PID" ;;
	c) local i; for i in "${!USER_RULES[@]}"; do ns iptables-nft -I DOCKER-USER $((i + 1)) ${USER_RULES[$i]}; done
	   reach_expect 8001 timeout ;;
	esac
	reach_expect 8000 open
}
leave() {
	case $1 in
	b) moat_down ;;
	f) floor_down ;;
	h) kill -CONT "$MOATD_PID"; moat_down ;;
	c) local r; for r in "${USER_RULES[@]}"; do ns iptables-nft -D DOCKER-USER $r; done ;;
	esac
	reach_expect 8001 refused
}

# flows_to_server - the connections moatd recorded from cli to srv:8000, and the records the
# kernel could not queue to it, once what moatd reads has settled.
flows_to_server() {
	local prev= cur i
	for i in $(seq 50); do
		cur=$(moat flows --from app=client --port 8000 -o json 2>/dev/null |
			"$PY" -c 'import json,sys; print(sum(json.loads(l)["count"] for l in sys.stdin if l.strip()))')
		[ "$cur" = "$prev" ] && break
		prev=$cur
		sleep 0.1
	done
	echo "$cur $(moat status -o json | jget 'd["capture"]["drops"]')"
}

# measure STATE ROUND - iperf3 then the connection rate, one JSON line.
measure() {
	local gbit rate fails n extra= c0 c1 r0 r1 lost k0 k1
	ns conntrack -F >/dev/null 2>&1 || true
	[ "$1" = b ] && read -r r0 lost < <(flows_to_server)
	gbit=$(docker exec cli iperf3 -c "$SRV" -p 5201 -t "$SECS" -O 1 -J |
		"$PY" -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))')
	[ "$1" = b ] && c0=$(cpu_ns "$MOATD_PID")
	k0=$(node_ticks)
	read -r rate fails n < <(docker exec cli taskset -c 0 "$PY" "$PROBE" crr-client "$SRV" 8000 "$SECS")
	k1=$(node_ticks)
	if [ "$1" = b ]; then
		c1=$(cpu_ns "$MOATD_PID")
		read -r r1 lost < <(flows_to_server)
		extra=",\"made\":$((n + fails)),\"recorded\":$((r1 - r0)),\"lost\":$lost,\"cpu_s\":$(( (c1 - c0) / 1000 ))e-6"
	fi
	e2e_log "round $2 $1: $gbit Gbit/s, $rate conn/s ($fails failed)${extra:+; moatd$extra}"
	result "{\"kind\":\"tput\",\"state\":\"$1\",\"round\":$2,\"gbit\":$gbit,\"conn\":$rate,\"fails\":$fails,\"node_us\":$("$PY" -c "print(round(($k1 - $k0) * 1e6 / $(getconf CLK_TCK) / max($n, 1), 2))")$extra}"
}

# idle - moatd with three containers and no traffic: CPU over IDLE seconds (the default
# 300 s holds ten periodic resyncs, one of them full), and how often it woke.
idle() {
	local c0 c1 t0 t1 w0 w1 k0 k1
	run_ctr idle --label app=idle
	moat_up
	sleep 5		# past the first apply and its sweeps
	c0=$(cpu_ns "$MOATD_PID") w0=$(switches "$MOATD_PID") k0=$(ticks "$MOATD_PID") t0=$(date +%s.%N)
	sleep "$IDLE"
	c1=$(cpu_ns "$MOATD_PID") w1=$(switches "$MOATD_PID") k1=$(ticks "$MOATD_PID") t1=$(date +%s.%N)
	result "{\"kind\":\"idle\",\"seconds\":$("$PY" -c "print($t1 - $t0)"),\"cpu_ns\":$((c1 - c0)),\"ticks\":$((k1 - k0)),\"hz\":$(getconf CLK_TCK),\"switches\":$((w1 - w0)),\"containers\":3}"
	moat_down
}

main() {
	local r i s order
	result "{\"kind\":\"env\",\"cpus\":$(nproc),\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"kernel\":\"$(uname -r)\",\"seconds\":$SECS,\"runs\":$RUNS}"
	reach_expect 8000 open
	reach_expect 8001 refused
	read -ra order <<<"$STATES"
	for ((r = 0; r < RUNS; r++)); do
		for ((i = 0; i < ${#order[@]}; i++)); do
			s=${order[$(( (i + r) % ${#order[@]} ))]}
			enter "$s"
			measure "$s" "$r"
			leave "$s"
		done
	done
	[ "$IDLE" -gt 0 ] && idle
	result "{\"kind\":\"env_end\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
	"$PY" - "$RES" <<'EOF'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
env = next(r for r in rows if r["kind"] == "env")
end = next(r for r in rows if r["kind"] == "env_end")
t = [r for r in rows if r["kind"] == "tput"]
print("docker node: %d rounds of %d s per figure, %d CPUs, load %s at the start, %s at the end"
      % (env["runs"], env["seconds"], env["cpus"], env["load"], end["load"]))
names = {"a": "Docker alone", "b": "Docker + moatd (enforce, flows)", "c": "Docker + DOCKER-USER rules",
         "f": "Docker + Moat's hooks and log only", "h": "Docker + Moat's rules, moatd stopped"}
def by(state, key):
    return {r["round"]: r[key] for r in t if r["state"] == state}
def ratios(state, key):
    a, x = by("a", key), by(state, key)
    return sorted(x[k] / a[k] for k in x if k in a and a[k])
def ratio(state, key):
    v = ratios(state, key)
    return st.median(v) if v else None
targets = {("b", "conn"): 0.95}
print("  %-36s %12s %8s %10s %8s" % ("", "conn/s", "ratio", "Gbit/s", "ratio"))
for s in names:
    c, g = by(s, "conn"), by(s, "gbit")
    if not c:
        continue
    line = "  %-36s %12.0f" % (names[s], st.median(c.values()))
    rc, rg = ratio(s, "conn"), ratio(s, "gbit")
    line += " %8s" % ("%.2f" % rc if s != "a" and rc else "")
    line += " %10.2f %8s" % (st.median(g.values()), "%.2f" % rg if s != "a" and rg else "")
    if s == "b":
        line += "   target: conn/s ratio >= 0.95"
    print(line)
    print("  %-36s per round: conn/s %s; Gbit/s %s" % ("", " ".join("%.0f" % c[k] for k in sorted(c)),
                                                  " ".join("%.2f" % g[k] for k in sorted(g))))
    v = ratios(s, "conn")
    if s != "a" and len(v) >= 4:	# how far one round's ratio strays: the figure's noise
        print("  %-36s conn/s ratio per round: middle half %.2f-%.2f, all %.2f-%.2f"
              % ("", v[len(v) // 4], v[(3 * len(v) - 1) // 4], v[0], v[-1]))
b = [r for r in t if r["state"] == "b"]
if b:
    made, rec, lost = sum(r["made"] for r in b), sum(r["recorded"] for r in b), max(r["lost"] for r in b)
    cpu = sum(r["cpu_s"] for r in b)
    print("  moatd: %d of %d connections recorded as flows (%s); kernel could not queue %d records; "
          "%.1f us of CPU per connection" % (rec, made, "all" if rec >= made else "MISSING %d" % (made - rec),
                                            lost, 1e6 * cpu / max(made, 1)))
a = by("a", "node_us")
if a:
    print("  node CPU per connection (us; difference to Docker alone, median of the rounds'):")
    for s in names:
        x = by(s, "node_us")
        if x:
            d = [x[k] - a[k] for k in x if k in a]
            print("  %-36s %8.1f%s" % (names[s], st.median(x.values()),
                                      "   %+.1f" % st.median(d) if s != "a" else ""))
for r in rows:
    if r["kind"] == "idle":
        pct = 100.0 * r["cpu_ns"] / 1e9 / r["seconds"]
        tpct = 100.0 * r["ticks"] / r["hz"] / r["seconds"]
        print("  moatd idle, %d containers, no traffic: %.4f%% of a core over %.0f s (%.1f ms; "
              "%.3f%% by whole ticks, ended threads too), %.2f wakeups/s   target: < 0.05%%"
              % (r["containers"], pct, r["seconds"], r["cpu_ns"] / 1e6, tpct, r["switches"] / r["seconds"]))
EOF
}

main
