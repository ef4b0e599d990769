#!/bin/bash
# Enforcement benchmark (issue 3): moatd with N endpoints (real namespaces and veths, from an
# endpoints file) and 1,000 NetworkPolicies. Measures, side by side in one run, and prints:
#   event to enforced   endpoints-file changes (add or remove a replica), inside moatd
#                       (status event_to_enforced) and outside (rename -> the kernel's
#                       notification of the ep4 element); the file in YAML, then the same
#                       in JSON; also with conntrack entries to judge
#   full resync         cold start to first apply; a full apply (a mode change recreates the
#                       tables)
#   throughput          iperf3 TCP and a connect/1-byte/close rate between two endpoints,
#                       each round beside the same on a reference bridge with no ruleset:
#                       no ruleset; the floor of any stateful ruleset (one rule: ct state
#                       established accept); Moat's ruleset at 10 .. 100,000 addresses; a
#                       naive one-rule-per-pair iptables ruleset (nft and legacy) for the same
#                       policy
#   tiers               the same throughput with BENCH_TIERS Admin and as many Baseline
#                       ClusterNetworkPolicies (every endpoint their subject) beside the
#                       NetworkPolicies, at N endpoints, and the apply that loads them
#   moatd RSS           VmRSS / VmHWM
#   many endpoints      the same at BENCH_MANY endpoints of one address each
# Targets are printed beside the figures, never asserted: timing on a shared machine is noise
# for a pass/fail test.
#
#   root namespace (never touched)
#   ...............................................................................
#   netns $NS (bench): br_netfilter on, moatd --runtime none --endpoints FILE, iptables
#   +-----------------------------------------------------------------------------+
#   |                                  br0                                        |
#   |        v0 |            v1 |      ...        v99 |      ...      v999 |      |
#   +-----------|---------------|-------------------|--------------------|------+
#          eth0 |          eth0 |              eth0 |               eth0 |
#     +-----------+   +-----------+         +-----------+        +-----------+
#     | $NS-e0    |   | $NS-e1    |   ...   | $NS-e99   |  ...   | $NS-e999  |
#     | app0-r0   |   | app1-r0   |         | app99-r0  |        | app99-r9  |
#     | 10.64.0.1 |   | 10.64.0.2 |         |10.64.0.100|        | 10.64.3.250
#     | iperf3 -s |   +-----------+         | clients   |        +-----------+
#     | crr :8000 |                         +-----------+
#     +-----------+
#   netns $NS-ref (reference): br0, the same two endpoints ($NS-ref-e0, $NS-ref-e99, same
#   addresses and servers), never a ruleset.
#   app99 -> app0 on 5201/tcp and 8000/tcp is allowed (policies app99-p0 and app0-p0), 8001 is
#   not; the naive iptables rules for that pair come last, as their source app does.
#   Sets grow past N with addresses on extra endpoints (no namespace), BENCH_PER to one.
#
# Usage (root): B=build tests/bench/enforce.sh     (make bench runs it)
#   BENCH_ENDPOINTS=1000 BENCH_CHANGES=200 BENCH_CHANGES_BIG=20 BENCH_SECONDS=2 BENCH_RUNS=5
#   BENCH_SIZES="1000 10000 100000 10" BENCH_PER=100 BENCH_MANY=10000
#   BENCH_IPTABLES="nft legacy" BENCH_TIERS=100
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${B:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
N=${BENCH_ENDPOINTS:-1000}
CHANGES=${BENCH_CHANGES:-200}
CHANGES_BIG=${BENCH_CHANGES_BIG:-20}
SECS=${BENCH_SECONDS:-2}
RUNS=${BENCH_RUNS:-5}		# two paths alike differ by up to 7% in one round here
SIZES=${BENCH_SIZES:-"1000 10000 100000 10"}
PER=${BENCH_PER:-100}
MANY=${BENCH_MANY:-10000}
STEP=${BENCH_STEP:-30000}
IPTABLES=${BENCH_IPTABLES:-"nft legacy"}
TIERS=${BENCH_TIERS:-100}
# Debian's python3 (tests/deps.sh): a pyenv shim first in PATH costs seconds per start.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
GEN=("$PY" "$ROOT/tests/bench/enforce_gen.py")
PROBE=("$PY" "$ROOT/tests/bench/enforce_probe.py")
SRV=0 SRV_IP=10.64.0.1		# app0-r0
CLI=99				# app99-r0
SMALL=99,0,1,2,3,4,5,6,7,8	# the endpoints of size 10

[ "$(id -u)" = 0 ] || { echo "enforce: skipped (needs root)"; exit 0; }
for t in iperf3 nft iptables-nft-restore iptables-legacy-restore conntrack "$PY" "$B/moatd"; do
	command -v "$t" >/dev/null || { echo "enforce: skipped ($t missing; make deps, make all)"; exit 0; }
done
[ "$N" -ge 100 ] || { echo "enforce: BENCH_ENDPOINTS must be at least 100" >&2; exit 2; }

D=$(mktemp -d /tmp/moat-bench.XXXXXX)
NS=mbench-${D##*.}
REF=$NS-ref
EP=$D/ep/endpoints.yaml
SOCK=$D/moatd.sock
RES=$D/results.jsonl
MOATD_PID=
SERVER_PIDS=()

log() { printf '# %s\n' "$*" >&2; }
inb() { nsenter --net=/var/run/netns/"$NS" "$@"; }
# at WHERE CMD... - run in endpoint WHERE: I (of the bench) or ref-I (of the reference).
at() {
	local w=$1; shift
	case $w in ref-*) w=ref-e${w#ref-} ;; *) w=e$w ;; esac
	nsenter --net=/var/run/netns/"$NS-$w" "$@"
}
us() { echo "${EPOCHREALTIME/./}"; }
since_ms() { echo $(( ($(us) - $1) / 1000 )); }
result() { printf '%s\n' "$1" >>"$RES"; }
# jget EXPR - EXPR (python, over d: the JSON on stdin, and json) printed.
jget() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# sizes - what status says about the endpoints and sets, as JSON members.
sizes() { jget '"\"endpoints\":%d,\"elements\":%s,\"repairs\":%d" % (d["endpoints"], json.dumps(d["elements"]), d["repairs"])'; }

moatd_stop() {
	[ -n "$MOATD_PID" ] || return 0
	kill -TERM "$MOATD_PID" 2>/dev/null || true
	wait "$MOATD_PID" 2>/dev/null || true
	MOATD_PID=
}

cleanup() {
	local rc=$? pid
	trap - EXIT
	set +e
	moatd_stop
	# iperf3 writes its pid file without a newline: one cat per file
	for pid in "${SERVER_PIDS[@]}" $(for f in "$D"/iperf3-*.pid; do cat "$f" 2>/dev/null; echo; done); do
		kill "$pid" 2>/dev/null
	done
	ip netns list | awk -v p="$NS" '$1 == p || index($1, p "-") == 1 { print "netns del " $1 }' \
		>"$D/del.batch"
	ip -force -batch "$D/del.batch" 2>/dev/null
	if [ "$rc" != 0 ]; then
		[ -f "$D/moatd.log" ] && { echo "--- moatd.log (tail)" >&2; tail -n 20 "$D/moatd.log" >&2; }
		[ -s "$RES" ] && { echo "--- what was measured before the failure" >&2; "${PROBE[@]}" report "$RES" >&2; }
	fi
	rm -rf --one-file-system "$D"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bridge_ns NAME INDEXES... - namespace NAME with br0 (br_netfilter on), and one namespace
# NAME-eI per index with a veth vI into br0; ip batches, one python for the addresses (a
# process per namespace would cost more than everything else together). Timings in $SETUP.
bridge_ns() {
	local name=$1 t0 t1 t2 i mac; shift
	t0=$(us)
	ip netns add "$name"
	nsenter --net=/var/run/netns/"$name" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 net.bridge.bridge-nf-call-iptables=1
	for i in "$@"; do echo "netns add $name-e$i"; done >"$D/ns.batch"
	ip -batch "$D/ns.batch"
	t1=$(us)
	{
		echo "link set lo up"
		echo "link add br0 type bridge"
		echo "link set br0 up"
		for i in "$@"; do
			# the MAC enforce_gen.py's real_mac gives endpoint i in the endpoints file
			printf -v mac '02:6d:00:00:%02x:%02x' $(( i >> 8 )) $(( i & 255 ))
			echo "link add v$i type veth peer name eth0 address $mac netns $name-e$i"
			echo "link set v$i master br0 up"
		done
	} >"$D/links.batch"
	ip -n "$name" -batch "$D/links.batch"
	t2=$(us)
	"${PROBE[@]}" addrs "$name" "$(IFS=,; echo "$*")"
	SETUP="\"netns_ms\":$(( (t1 - t0) / 1000 )),\"veths_ms\":$(( (t2 - t1) / 1000 )),\"addrs_ms\":$(since_ms "$t2"),\"total_ms\":$(since_ms "$t0")"
}

# servers WHERE - iperf3 and the connection-rate server in endpoint WHERE (see at).
servers() {
	at "$1" iperf3 -s -D -I "$D/iperf3-$1.pid" --logfile "$D/iperf3-$1.log"
	# Not through at: & would fork a shell around nsenter, and the python's pid is wanted.
	case $1 in ref-*) local ns=$REF-e${1#ref-} ;; *) local ns=$NS-e$1 ;; esac
	nsenter --net=/var/run/netns/"$ns" "${PROBE[@]}" crr-server 8000 </dev/null >>"$D/crr.log" 2>&1 &
	SERVER_PIDS+=($!)
}

# reach_expect FROM PORT WORD - FROM's view of SRV_IP:PORT is WORD (open, refused, timeout).
reach_expect() {
	local got i
	for i in $(seq 30); do
		got=$(at "$1" "${PROBE[@]}" reach "$SRV_IP" "$2")
		[ "$got" = "$3" ] && return 0
		sleep 0.2
	done
	echo "enforce: $SRV_IP:$2 from $1 is $got, expected $3" >&2
	return 1
}

iperf_run() {
	at "$1" iperf3 -c "$SRV_IP" -t "$SECS" -O 1 -J |
		"$PY" -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

crr_run() {
	local rate fails
	read -r rate fails _ < <(at "$1" "${PROBE[@]}" crr-client "$SRV_IP" 8000 "$SECS")
	[ "$fails" = 0 ] || log "$1: $fails failed connections"
	echo "$rate"
}

# measure LABEL EXTRA_JSON - RUNS rounds of iperf3 and of the connection rate, each beside the
# same on the reference bridge, alternating which goes first, so that a ratio compares two
# measurements taken seconds apart on a machine whose load drifts.
measure() {
	local r g=() gr=() c=() cr=() a b ga gb ca cb
	for ((r = 0; r < RUNS; r++)); do
		inb conntrack -F >/dev/null 2>&1 || true
		if ((r % 2)); then a=$CLI b=ref-$CLI; else a=ref-$CLI b=$CLI; fi
		ga=$(iperf_run "$a"); gb=$(iperf_run "$b")
		cb=$(crr_run "$b"); ca=$(crr_run "$a")
		if ((r % 2)); then g+=("$ga") gr+=("$gb") c+=("$ca") cr+=("$cb")
		else g+=("$gb") gr+=("$ga") c+=("$cb") cr+=("$ca"); fi
	done
	log "$1: Gbit/s ${g[*]} (reference ${gr[*]}), conn/s ${c[*]} (reference ${cr[*]})"
	result "{\"kind\":\"tput\",\"label\":\"$1\",\"gbit\":[$(IFS=,; echo "${g[*]}")],\"gbit_ref\":[$(IFS=,; echo "${gr[*]}")],\"conn\":[$(IFS=,; echo "${c[*]}")],\"conn_ref\":[$(IFS=,; echo "${cr[*]}")],$2}"
}

status_json() { "${PROBE[@]}" status "$SOCK" "${1:-100}"; }
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$MOATD_PID/stat"; }
rss() { awk '/^Vm(RSS|HWM):/ { sub(":", "", $1); printf "%s\"%s\":%d", sep, $1, $2; sep="," }' "/proc/$MOATD_PID/status"; }

# moatd_start [WATCH] - start moatd; with WATCH, also count its repairs (full re-applies
# after lost or foreign notifications) over the WATCH seconds after its first apply.
moatd_start() {
	local t0 st wall watch=
	t0=$(us)
	nsenter --net=/var/run/netns/"$NS" "$B/moatd" --config /dev/null --runtime none \
		--endpoints "$EP" --policy-dir "$D/policies" --socket "$SOCK" --state-dir "$D/state" \
		--log-level warn </dev/null >>"$D/moatd.log" 2>&1 &
	MOATD_PID=$!
	st=$(status_json 1200)
	wall=$(since_ms "$t0")
	if [ -n "${1:-}" ]; then
		sleep "$1"
		watch=",\"watch_s\":$1,\"repairs_after\":$(status_json 600 | jget 'd["repairs"]')"
	fi
	result "{\"kind\":\"cold\",\"wall_ms\":$wall$watch,\"cpu_ms\":$(cpu_ms),\"apply_ms\":$(jget 'd["last_apply"]["ms"]' <<<"$st"),$(sizes <<<"$st"),$(rss)}"
	log "moatd up with $(jget 'd["endpoints"]' <<<"$st") endpoints in $wall ms"
}

# shape SIZE - the endpoints file for SIZE, as arguments REAL EXTRA PER [ONLY] of
# enforce_gen.py: 10 (ten real endpoints), up to N (the real ones), more (N real and the
# rest in extra addresses, PER to an endpoint), or many:M (M endpoints, one address each).
shape() {
	case $1 in
	10) echo "0 0 1 $SMALL" ;;
	many:*) echo "$N $(( ${1#many:} - N )) 1" ;;
	*) echo "$N $(( $1 > N ? $1 - N : 0 )) $PER" ;;
	esac
}

# endpoints_write SIZE - replace the endpoints file (see shape); wait for the apply.
endpoints_write() {
	local before st t0
	"${GEN[@]}" endpoints "$D/tmp/endpoints.yaml" $(shape "$1")
	before=$(status_json | jget 'd["applies"]')
	t0=$(us)
	mv "$D/tmp/endpoints.yaml" "$EP"
	st=$("${PROBE[@]}" wait "$SOCK" "$before" 600)
	result "{\"kind\":\"grow\",\"wall_ms\":$(since_ms "$t0"),\"last_apply\":$(jget 'json.dumps(d["last_apply"])' <<<"$st"),$(sizes <<<"$st"),$(rss)}"
}

# endpoints_grow SIZE - endpoints_write in steps of at most STEP addresses (one apply of
# 100,000 addresses at once overflows moatd's notification socket, see the report).
endpoints_grow() {
	local cur=$1 size=$2
	while [ "$size" -gt $(( cur + STEP )) ] && [ "$cur" -ge "$N" ]; do
		cur=$(( cur + STEP ))
		endpoints_write "$cur"
	done
	endpoints_write "$size"
}

# events SIZE COUNT [fill|json] - COUNT endpoints-file changes; with fill, after filling
# conntrack with TIME_WAIT entries; with json, the file written as JSON instead of YAML.
events() {
	local ct=0
	inb conntrack -F >/dev/null 2>&1 || true
	if [ "${3:-}" = fill ]; then
		# The orderly closes leave conntrack entries in TIME_WAIT, which is the point, and as
		# many client sockets in TIME_WAIT for 60 s, which would slow every later connect()
		# of this client (a port search past them) and halve the connection rates measured
		# next: the client keeps no TIME_WAIT sockets.
		at "$CLI" sysctl -qw net.ipv4.tcp_max_tw_buckets=0
		at "$CLI" "${PROBE[@]}" crr-client "$SRV_IP" 8000 "$SECS" fin >/dev/null
		ct=$(inb conntrack -C)
	fi
	log "event to enforced: $2 endpoints-file changes at size $1, $ct conntrack entries"
	result "{\"kind\":\"events\",\"conntrack\":$ct,$(inb "${PROBE[@]}" events "$SOCK" "$MOATD_PID" "$EP" $(shape "$1") "$2" "$([ "${3:-}" = json ] && echo json || echo yaml)" | sed 's/^{//')"
}

# tiers - BENCH_TIERS Admin and Baseline policies added to the policy directory: the apply
# (compile and batch), the elements, then throughput; then they go again.
tiers() {
	local st before
	"${GEN[@]}" tiers "$D/policies/zz-tiers.yaml" "$TIERS"
	before=$(status_json | jget 'd["applies"]')
	"$B/moat" --socket "$SOCK" policy reload >/dev/null
	st=$("${PROBE[@]}" wait "$SOCK" "$before" 600)
	log "tiers: $TIERS Admin and $TIERS Baseline policies applied in $(jget 'd["last_apply"]["ms"]' <<<"$st") ms"
	result "{\"kind\":\"tiers\",\"policies\":$((2 * TIERS)),\"last_apply\":$(jget 'json.dumps(d["last_apply"])' <<<"$st"),$(sizes <<<"$st"),$(rss)}"
	reach_expect "$CLI" 8001 timeout
	reach_expect "$CLI" 8000 open
	measure moat-tiers "$(sizes <<<"$st"),\"tiers\":$((2 * TIERS))"
	rm "$D/policies/zz-tiers.yaml"
	before=$(status_json | jget 'd["applies"]')
	"$B/moat" --socket "$SOCK" policy reload >/dev/null
	"${PROBE[@]}" wait "$SOCK" "$before" 600 >/dev/null
}

full() {
	result "{\"kind\":\"full\",$("${PROBE[@]}" full "$SOCK" "$MOATD_PID" | sed 's/^{//; s/}$//'),$(rss)}"
}

# What any stateful ruleset costs before it checks anything: conntrack on the bridged path
# (br_netfilter) and one rule that accepts established connections.
stateful_floor() {
	inb nft -f - <<-EOF
	table inet bench_floor {
		chain forward {
			type filter hook forward priority -10; policy accept;
			ct state established accept
		}
	}
	EOF
	measure stateful "\"endpoints\":$N,\"floor\":1"
	inb nft delete table inet bench_floor
}

naive() {
	local backend=$1 size=$2 rules t0 load_ms
	if [ "$size" = 10 ]; then
		rules=$("${GEN[@]}" naive "$D/naive.rules" "$N" "$SMALL")
	else
		rules=$("${GEN[@]}" naive "$D/naive.rules" "$N")
	fi
	t0=$(us)
	inb "iptables-$backend-restore" <"$D/naive.rules"
	load_ms=$(since_ms "$t0")
	log "iptables-$backend: $rules rules loaded in $load_ms ms"
	reach_expect "$CLI" 8001 timeout
	measure "iptables-$backend" "\"endpoints\":$size,\"rules\":$rules,\"load_ms\":$load_ms"
	inb "iptables-$backend" -P FORWARD ACCEPT
	inb "iptables-$backend" -F FORWARD
	[ "$backend" = nft ] && inb nft delete table ip filter
	reach_expect "$CLI" 8001 refused
}

main() {
	local size big=$N i all=()
	result "{\"kind\":\"env\",\"cpus\":$(nproc),\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"kernel\":\"$(uname -r)\",\"seconds\":$SECS,\"runs\":$RUNS,\"per\":$PER}"
	mkdir -p "$D/ep" "$D/tmp" "$D/state"
	"${GEN[@]}" policies "$D/policies"
	"${GEN[@]}" endpoints "$EP" $(shape "$N")
	log "setting up $N endpoint namespaces, and the reference bridge"
	for ((i = 0; i < N; i++)); do all+=("$i"); done
	bridge_ns "$NS" "${all[@]}"
	result "{\"kind\":\"setup\",\"n\":$N,$SETUP}"
	bridge_ns "$REF" "$SRV" "$CLI"
	servers "$SRV"
	servers "ref-$SRV"
	reach_expect "$CLI" 8000 open
	reach_expect "ref-$CLI" 8000 open
	reach_expect "$CLI" 8001 refused
	measure none "\"endpoints\":$N"
	stateful_floor
	for b in $IPTABLES; do
		naive "$b" "$N"
		naive "$b" 10
	done

	moatd_start
	reach_expect "$CLI" 8001 timeout
	reach_expect "$CLI" 8000 open
	events "$N" "$CHANGES"
	events "$N" "$CHANGES" json
	full
	events "$N" "$CHANGES_BIG" fill
	tiers
	local cur=$N
	for size in $SIZES; do
		endpoints_grow "$cur" "$size"
		cur=$size
		reach_expect "$CLI" 8001 timeout
		measure moat "$(status_json | sizes)"
		if [ "$size" -gt "$big" ]; then
			big=$size
			events "$size" "$CHANGES_BIG"
		fi
	done
	moatd_stop
	if [ "$big" -gt "$N" ]; then
		log "cold start at $big addresses"
		"${GEN[@]}" endpoints "$EP" $(shape "$big")
		moatd_start 10
		moatd_stop
	fi
	if [ "$MANY" -gt "$N" ]; then
		log "$MANY endpoints of one address each"
		"${GEN[@]}" endpoints "$EP" $(shape "many:$MANY")
		moatd_start
		events "many:$MANY" "$(( CHANGES_BIG / 2 ))"
	fi
	moatd_stop
	"${PROBE[@]}" report "$RES"
}

main
