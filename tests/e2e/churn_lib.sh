# The topology and helpers shared by the fault, churn and soak tests (60-restarts.sh,
# 61-churn.sh, tests/soak.sh). Source after lib.sh; call churn_setup.
#
#   netns moat-XXXXXX: dockerd, moatd
#   +--------------------------------------------------------------------------+
#   |  br-churn 10.216.0.0/16 fd00:216::/64                                    |
#   |    |            |             |             |                            |
#   +----|------------|-------------|-------------|----------------------------+
#     +--------+  +---------+  +---------+  +------------------------------+
#     | prober |  | srv     |  | vault   |  | churn containers (app=churn) |
#     +--------+  +---------+  +---------+  +------------------------------+
#   srv serves 8080 8081 8082 9000; vault serves 8080 (tests/e2e/prober.py serve).
#   policy: srv <- prober on 8080 and 8082, srv <- churn on 8080, vault <- nobody;
#   the toggled file 30-extra.yaml adds srv <- prober on 9000.
#   prober (tests/e2e/prober.py probe, every 50 ms): allowed prober -> srv:8080;
#   denied prober -> srv:8081 (port) and prober -> vault:8080 (peer); a stream to srv:8082.
#
# SCALE: short by default (make test), long with MOAT_SOAK=1 (make soak).

CH_SOAK=${MOAT_SOAK:-0}
# ch_scale SHORT LONG - the number for this run.
ch_scale() { if [ "$CH_SOAK" = 1 ]; then echo "$2"; else echo "$1"; fi; }

CH_MOATD=$E2E_BUILD/moatd
CH_MOAT=$E2E_BUILD/moat
CH_PY=$E2E_ROOT/tests/e2e

moat() { "$CH_MOAT" --socket "$E2E_DIR/moatd.sock" "$@"; }

ch_policies() {
	local pol=$E2E_DIR/policies
	mkdir -p "$pol"
	cat >"$pol/10-srv.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: srv}
spec:
  podSelector: {matchLabels: {app: srv}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: prober}}}]
      ports: [{port: 8080}, {port: 8082}]
    - from: [{podSelector: {matchLabels: {app: churn}}}]
      ports: [{port: 8080}]
EOF
	cat >"$pol/20-vault.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: vault}
spec:
  podSelector: {matchLabels: {app: vault}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: nobody}}}]
EOF
}

# ch_extra on|off - the policy version: 30-extra.yaml (srv <- prober on 9000) present or not.
ch_extra() {
	if [ "$1" = on ]; then
		cat >"$E2E_DIR/policies/30-extra.yaml.tmp" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: extra}
spec:
  podSelector: {matchLabels: {app: srv}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: prober}}}]
      ports: [{port: 9000}]
EOF
		mv "$E2E_DIR/policies/30-extra.yaml.tmp" "$E2E_DIR/policies/30-extra.yaml"
	else
		rm -f "$E2E_DIR/policies/30-extra.yaml"
	fi
}

# ch_stable_start - srv, vault, prober (again after a dockerd restart); their addresses.
ch_stable_start() {
	local c
	for c in srv vault prober; do
		docker start "$c" >/dev/null 2>&1 || true
	done
	SRV4=$(ctr_ip srv churn) VAULT4=$(ctr_ip vault churn)
}

ch_stable_run() {
	e2e_run_host srv --network churn --label app=srv -v "$CH_PY:/t:ro" -- \
		python3 /t/prober.py serve 8080 8081 8082 9000
	e2e_run_host vault --network churn --label app=vault -v "$CH_PY:/t:ro" -- \
		python3 /t/prober.py serve 8080
	e2e_run_host prober --network churn --label app=prober -v "$CH_PY:/t:ro" \
		-v "$E2E_DIR/probe:/probe"
	SRV4=$(ctr_ip srv churn) VAULT4=$(ctr_ip vault churn)
}

# churn_setup [MOATD ARGS] - namespace, dockerd, images, network, policies, stable
# containers, moatd.
churn_setup() {
	[ -x "$CH_MOATD" ] && [ -x "$CH_MOAT" ] || e2e_fail "build first (MOAT_BUILD=DIR for make B=DIR)"
	e2e_setup
	e2e_dockerd_start
	e2e_images
	mkdir -p "$E2E_DIR/probe" "$E2E_DIR/churn" "$E2E_DIR/state"
	e2e_network churn 10.216.0.0/16 fd00:216::/64
	ch_policies
	ch_stable_run
	ch_moatd_start "$@"
}

# ch_moatd_start [ARGS] - start moatd; wait until it answers and knows the stable containers.
ch_moatd_start() {
	moatd_start "$CH_MOATD" --config /dev/null --runtime "$DOCKER_HOST" \
		--policy-dir "$E2E_DIR/policies" --socket "$E2E_DIR/moatd.sock" \
		--state-dir "$E2E_DIR/state" --mode enforce --resync-interval 5 "$@"
	ch_moatd_wait
}

ch_knows_stable() {
	local out
	out=$(moat endpoints 2>/dev/null) || return 1
	case "$out" in *default/srv*) ;; *) return 1 ;; esac
	case "$out" in *default/vault*) ;; *) return 1 ;; esac
	case "$out" in *default/prober*) return 0 ;; esac
	return 1
}

ch_moatd_wait() {
	wait_for 300 ch_knows_stable ||
		{ tail -n 30 "$E2E_DIR/moatd.log" >&2; e2e_fail "moatd did not come up"; }
}

# ch_moatd_kill SIGNAL - kill moatd and reap it.
ch_moatd_kill() {
	kill -"$1" "$MOATD_PID" 2>/dev/null || true
	wait "$MOATD_PID" 2>/dev/null || true
	MOATD_PID=
}

# probe_start NAME [stream] - the prober, logging to $E2E_DIR/probe/NAME.
probe_start() {
	local d=$E2E_DIR/probe/$1 extra=()
	rm -rf "$d" && mkdir -p "$d"
	[ "${2:-}" = stream ] && extra=("stream:$SRV4:8082")
	docker exec -d prober python3 /t/prober.py probe "/probe/$1" 50 "allow:$SRV4:8080" \
		"deny:$SRV4:8081" "deny:$VAULT4:8080" "${extra[@]}"
	wait_for 100 test -f "$d/sum.json" || e2e_fail "prober $1 did not start"
}

# probe_stop NAME - ask the prober to stop and wait for its final summary.
probe_stop() {
	local d=$E2E_DIR/probe/$1
	touch "$d/stop"
	wait_for 100 grep -q '"final": true' "$d/sum.json" || e2e_fail "prober $1 did not stop"
}

# probe_sum NAME EXPR - a figure from the prober's summary (python expression over s).
probe_sum() {
	python3 -c "import json, sys; s = json.load(open(sys.argv[1])); print($2)" \
		"$E2E_DIR/probe/$1/sum.json"
}

# probe_check NAME - print the prober's figures; fail on any verdict flip.
probe_check() {
	local d=$E2E_DIR/probe/$1 f
	python3 - "$d/sum.json" <<'EOF' >&2
import json, sys
s = json.load(open(sys.argv[1]))
for k, v in sorted(s["pairs"].items()):
    print("# probe %s: %d attempts, %d ok, %d soft (retry ok), %d flips" %
          (k, v["attempts"], v["ok"], v["soft"], v["flips"]))
EOF
	ch_soft_context "$1"
	f=$(probe_sum "$1" 'sum(v["flips"] for v in s["pairs"].values())')
	if [ "$f" != 0 ]; then
		cat "$d/flips.log" >&2
		e2e_fail "$f verdict flips in probe $1"
	fi
	[ "$(probe_sum "$1" 'min(v["attempts"] for v in s["pairs"].values())')" -gt 0 ] ||
		e2e_fail "probe $1 made no attempts (test is broken)"
}

# ch_state TAG [STABLE NAMES...] - dump moatd's view and the kernel's, normalised, into
# $E2E_DIR/state.TAG.{endpoints.json,inspect.json,ruleset.json,names.json,norm}. With
# STABLE names, other containers are the crowd "C" and duplicates collapse.
ch_state() {
	local t=$E2E_DIR/state.$1 crowd=(); shift
	[ $# -gt 0 ] && crowd=(--crowd)
	# moatd down (killed): the interfaces of the stable containers from the last listing
	if moat endpoints -o json >"$t.endpoints.json" 2>/dev/null; then
		cp "$t.endpoints.json" "$E2E_DIR/last.endpoints.json"
	else
		cp "$E2E_DIR/last.endpoints.json" "$t.endpoints.json" 2>/dev/null ||
			echo '[]' >"$t.endpoints.json"
	fi
	docker inspect $(docker ps -aq) >"$t.inspect.json"
	ns nft -j list ruleset >"$t.ruleset.json" || e2e_fail "nft -j list ruleset failed ($1)"
	python3 "$CH_PY/state_compare.py" names "$t.inspect.json" "$t.endpoints.json" "$@" \
		>"$t.names.json"
	python3 "$CH_PY/state_compare.py" norm "$t.ruleset.json" "$t.names.json" "${crowd[@]}" \
		>"$t.norm"
}

# ch_endpoints_match - moatd's endpoints are exactly Docker's running containers.
ch_endpoints_match() {
	local t=$E2E_DIR/match
	moat endpoints -o json >"$t.endpoints.json" 2>/dev/null || return 1
	docker inspect $(docker ps -aq) >"$t.inspect.json" 2>/dev/null || return 1
	python3 "$CH_PY/state_compare.py" endpoints "$t.endpoints.json" "$t.inspect.json" \
		>"$t.out" 2>&1
}

# ch_mark TEXT - note TEXT in the timeline ($E2E_DIR/events.log) and on stderr with the
# seconds since the test started; soft failures are shown against this timeline.
ch_mark() {
	echo "$(date +%s.%N) $*" >>"$E2E_DIR/events.log"
	e2e_log "[$((SECONDS - CH_T0))s] $*"
}
CH_T0=$SECONDS

# ch_soft_context NAME - each soft failure of probe NAME with the timeline around it.
ch_soft_context() {
	local f=$E2E_DIR/probe/$1/soft.log
	[ -s "$f" ] || return 0
	python3 - "$f" "$E2E_DIR/events.log" <<'EOF' >&2
import sys
ev = [l.split(" ", 1) for l in open(sys.argv[2]) if " " in l]
for line in open(sys.argv[1]):
    t = float(line.split()[0])
    print("# soft failure: " + line.strip())
    for ts, what in ev:
        if -5 <= float(ts) - t <= 2:
            print("#    %+.2fs %s" % (float(ts) - t, what.strip()))
EOF
}

# ch_mem - "RSS_KB FDS" of moatd.
ch_mem() {
	echo "$(awk '/^VmRSS/ { print $2 }' "/proc/$MOATD_PID/status") $(ls "/proc/$MOATD_PID/fd" | wc -l)"
}
