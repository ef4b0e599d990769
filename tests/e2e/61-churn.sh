#!/bin/bash
# Churn (topology and prober: churn_lib.sh):
#  1. M containers (app=churn) started and removed, P at a time, while the prober tries its
#     denied pairs every 50 ms: no denied attempt ever connects. Each churn container is a
#     client: once up it must reach srv:8080 (allowed; it retries while moatd does not know
#     it yet) and must not reach vault:8080. moatd's RSS and fds are sampled throughout
#     (the mini-soak of make test): flat after warm-up.
#  2. moatd paused (SIGSTOP) while dockerd is killed (-9) and restarted, containers moatd
#     knew stop (half come back) or go, new ones start, and N more are created and removed
#     (far more events than dockerd's replay keeps): once resumed, moatd's endpoints are
#     Docker's, and its state (endpoints, ruleset normalised) equals that of a moatd started
#     afresh. moatd runs without the periodic resync here (--resync-interval 0): the event
#     stream's reconnect alone must bring it back.
#  3. MOAT_SOAK=1 only: 10 minutes of churn and traffic; RSS and fds flat.
set -eu
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/churn_lib.sh"

M=$(ch_scale 40 200)
P=$(ch_scale 8 16)
PRE=$(ch_scale 10 30)
NRUN=$(ch_scale 20 60)
N=$(ch_scale 120 300)
SOAK_S=$(ch_scale 0 600)
SAMPLE_S=$(ch_scale 1 10)	# the short churn can take 20 s: six samples or more

churn_setup --resync-interval 0
D=$E2E_DIR

# client_write - the churn containers' command, with srv's and vault's current addresses.
client_write() {
	cat >"$D/client.sh" <<EOF
trap 'exit 0' TERM
n=0
until echo x | nc -w 1 $SRV4 8080 2>/dev/null | grep -q x; do n=\$((n + 1)); sleep 0.1; done
if echo x | nc -w 1 $VAULT4 8080 2>/dev/null | grep -q x; then touch /out/\$NAME.hit; fi
echo \$n >/out/\$NAME.ok
sleep 1000000 & wait
EOF
}
client_write
# $D/job.sh NAME: run a client container, wait until it reached srv (at most 60 s), remove
# it; one line per job in churn/jobs.log: name, run start, up, reached (or "never"), removed.
cat >"$D/job.sh" <<EOF
#!/bin/bash
export DOCKER_HOST=$DOCKER_HOST
d=$D/churn n=\$1
t0=\$(date +%s.%N)
if ! $E2E_DOCKER run -d --name \$n --network churn --label app=churn -e NAME=\$n -v \$d:/out \\
	-v $D/client.sh:/client.sh:ro moat-busybox sh /client.sh >/dev/null 2>>\$d/run.err; then
	echo "\$n \$t0 run-failed" >>\$d/jobs.log
	exit 0
fi
t1=\$(date +%s.%N) t2=never
for i in \$(seq 600); do [ -f \$d/\$n.ok ] && { t2=\$(date +%s.%N); break; }; sleep 0.1; done
$E2E_DOCKER rm -f \$n >/dev/null 2>&1
echo "\$n \$t0 \$t1 \$t2 \$(date +%s.%N)" >>\$d/jobs.log
EOF
chmod +x "$D/job.sh"

# jobs_check PREFIX FROM TO - every job in that range came up, reached srv, never reached vault.
jobs_check() {
	python3 - "$D/churn" "$1" "$2" "$3" <<'EOF'
import os, sys
d, pre, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
jobs = {}
for line in open(os.path.join(d, "jobs.log")):
    f = line.split()
    jobs[f[0]] = f
want = ["%s%d" % (pre, i) for i in range(lo, hi + 1)]
bad, lat, first, last = [], [], None, None
for n in want:
    f = jobs.get(n)
    if not f or len(f) < 5:
        bad.append("%s: %s" % (n, "no record" if not f else "docker run failed"))
        continue
    if f[3] == "never":
        bad.append("%s: never reached srv:8080 (allowed) in 60 s" % n)
    else:
        lat.append(float(f[3]) - float(f[2]))
    if os.path.exists(os.path.join(d, n + ".hit")):
        bad.append("%s: reached vault:8080 (denied)" % n)
    first = min(first or 1e18, float(f[1]))
    last = max(last or 0, float(f[4]))
lat.sort()
print("# %d containers started and removed in %.0f s (%.1f/min); allowed pair working %.1f s "
      "after start at the median, %.1f s at most" % (len(want), last - first,
      len(want) * 60 / max(last - first, 1), lat[len(lat) // 2] if lat else -1,
      lat[-1] if lat else -1), file=sys.stderr)
for b in bad:
    print("FAIL: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# sampler FILE - "seconds rss_kb fds" of moatd every SAMPLE_S s until FILE.stop exists.
sampler() {
	local t0=$SECONDS
	while [ ! -f "$1.stop" ]; do
		echo "$((SECONDS - t0)) $(ch_mem)" >>"$1"
		sleep "$SAMPLE_S"
	done
}

# soak_check FILE WHAT - after the first quarter (warm-up), the last third's peak RSS and fds
# are within a small margin of the first third's.
soak_check() {
	python3 - "$1" "$2" <<'EOF'
import sys
s = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
print("# %s: moatd RSS %d kB and %d fds at the start, %d kB and %d fds at the end (%d samples over %d s)"
      % (sys.argv[2], s[0][1], s[0][2], s[-1][1], s[-1][2], len(s), s[-1][0]), file=sys.stderr)
w = s[len(s) // 4:]
third = max(1, len(w) // 3)
a, b = w[:third], w[-third:]
ra, rb = max(x[1] for x in a), max(x[1] for x in b)
fa, fb = max(x[2] for x in a), max(x[2] for x in b)
print("# %s: after warm-up, peak RSS %d -> %d kB, peak fds %d -> %d" % (sys.argv[2], ra, rb, fa, fb),
      file=sys.stderr)
if len(s) < 6:
    sys.exit("FAIL: too few samples")
if rb > ra + max(2048, ra // 10):
    sys.exit("FAIL: RSS grew from %d to %d kB" % (ra, rb))
if fb > fa + 3:
    sys.exit("FAIL: file descriptors grew from %d to %d" % (fa, fb))
EOF
}

ch_mark "== 1. churn: $M containers, $P at a time, under the prober"
probe_start churn
sampler "$D/mem1" & SAMPLER=$!
seq "$M" | sed 's/^/c/' | xargs -P "$P" -n 1 "$D/job.sh"
touch "$D/mem1.stop"; wait "$SAMPLER"
probe_stop churn
probe_check churn
jobs_check c 1 "$M" || { tail -n 5 "$D/churn/run.err" >&2; e2e_fail "churn: an allowed pair did not work or a denied one did"; }
soak_check "$D/mem1" "churn (mini-soak)" || e2e_fail "moatd's memory or fds grew during the churn"
moat status -o json | python3 -c 'import json, sys; e = json.load(sys.stdin)["event_to_enforced"]; print("# moatd event to enforced: %d events, p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (e["count"], e["p50_us"] / 1e3, e["p99_us"] / 1e3, e["max_us"] / 1e3))' >&2 || true
denied1=$(probe_sum churn 'sum(v["attempts"] for k, v in s["pairs"].items() if k.startswith("deny"))')

ch_mark "== 2. moatd paused; dockerd killed and restarted; $PRE known containers stopped or removed, $NRUN started, $N created and removed"
run_ctr() {	# run_ctr PREFIX COUNT - start COUNT sleepers named PREFIX1.. (app=churn)
	seq "$2" | sed "s/^/$1/" | xargs -P "$P" -I{} "$E2E_DOCKER" run -d --name {} --network churn \
		--label app=churn moat-busybox "${E2E_SLEEP[@]}" >/dev/null 2>>"$D/churn/run.err" || true
}
run_ctr pre "$PRE"
wait_for 300 ch_endpoints_match || e2e_fail "moatd not in step with Docker before the pause"
kill -STOP "$MOATD_PID"
PAUSED=$SECONDS
e2e_dockerd_kill KILL
e2e_dockerd_start
ch_stable_start
client_write
# moatd knew every pre container: half come back (maybe at another address), half go.
seq "$PRE" | awk '$1 % 2 { print "pre" $1 }' | xargs -r -P "$P" -n 4 "$E2E_DOCKER" start >/dev/null 2>&1 || true
seq "$PRE" | awk '!($1 % 2) { print "pre" $1 }' | xargs -r "$E2E_DOCKER" rm -f >/dev/null 2>&1 || true
run_ctr new "$NRUN"
# Containers created and removed, never started: cheap, and each leaves two events in
# dockerd's log, which replays only the last 256 to a watcher that reconnects.
seq "$N" | sed 's/^/gone/' | xargs -P "$P" -I{} "$E2E_DOCKER" create --name {} --network churn \
	--label app=churn moat-busybox >/dev/null 2>>"$D/churn/run.err" || true
seq "$N" | sed 's/^/gone/' | xargs -r -n 16 "$E2E_DOCKER" rm -f >/dev/null 2>&1 || true
while [ $((SECONDS - PAUSED)) -lt 5 ]; do sleep 0.5; done
ch_mark "resuming moatd after $((SECONDS - PAUSED)) s"
kill -CONT "$MOATD_PID"
wait_for 600 ch_endpoints_match || { cat "$D/match.out" >&2; e2e_fail "moatd did not catch up with Docker after the pause"; }
ch_mark "moatd in step with Docker: $(tail -n 1 "$D/match.out")"
ch_state survivor
ch_moatd_kill TERM
ch_moatd_start --resync-interval 0
wait_for 600 ch_endpoints_match || e2e_fail "the fresh moatd does not match Docker"
ch_state fresh
python3 -c '
import json, sys
a, b = (sorted(json.load(open(p)), key=lambda e: e["name"]) for p in sys.argv[1:3])
sys.exit(0 if a == b else "endpoints differ")' "$D/state.survivor.endpoints.json" "$D/state.fresh.endpoints.json" ||
	{ diff <(python3 -m json.tool "$D/state.survivor.endpoints.json") <(python3 -m json.tool "$D/state.fresh.endpoints.json") >&2; e2e_fail "the survivor's endpoints differ from a fresh moatd's"; }
diff -u "$D/state.survivor.norm" "$D/state.fresh.norm" >&2 ||
	e2e_fail "the survivor's ruleset differs from a fresh moatd's"
e2e_log "ok: survivor equals a fresh moatd: $(grep -c ' elem ' "$D/state.fresh.norm") elements, $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$D/state.fresh.endpoints.json") endpoints"
expect_ok "prober -> srv:8080 after all that" wait_for 50 tcp6_ok prober "$SRV4" 8080
expect_fail "prober -> vault:8080 after all that" tcp6_ok prober "$VAULT4" 8080

FIG="FIGURES 61-churn: $M containers churned with $denied1 denied attempts, 0 succeeded, 0 verdict flips"
if [ "$SOAK_S" -gt 0 ]; then
	ch_mark "== 3. soak: $SOAK_S s of churn and traffic"
	docker ps -aq --filter name='^(pre|new)[0-9]' | xargs -r docker rm -f >/dev/null
	probe_start soak stream
	sampler "$D/mem3" & SAMPLER=$!
	end=$((SECONDS + SOAK_S)) b=0
	while [ "$SECONDS" -lt "$end" ]; do
		seq $((b * 20 + 1)) $((b * 20 + 20)) | sed 's/^/s/' | xargs -P "$P" -n 1 "$D/job.sh"
		if [ $((b % 2)) = 0 ]; then ch_extra on; else ch_extra off; fi
		moat policy reload >/dev/null
		b=$((b + 1))
	done
	touch "$D/mem3.stop"; wait "$SAMPLER"
	probe_stop soak
	probe_check soak
	[ -z "$(probe_sum soak 's["stream"]["error"]')" ] || e2e_fail "the stream broke during the soak"
	jobs_check s 1 $((b * 20)) || e2e_fail "soak: an allowed pair did not work or a denied one did"
	soak_check "$D/mem3" "soak" || e2e_fail "moatd's memory or fds grew during the soak"
	FIG="$FIG; soak: $((b * 20)) containers, $(probe_sum soak 'sum(v["attempts"] for v in s["pairs"].values())') probe attempts, 0 flips, RSS/fds $(head -n 1 "$D/mem3" | cut -d' ' -f2-) -> $(tail -n 1 "$D/mem3" | cut -d' ' -f2-)"
fi
e2e_log "$FIG; $((SECONDS - CH_T0)) s"
echo "PASS"
