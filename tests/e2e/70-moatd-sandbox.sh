#!/bin/bash
# moatd inside deploy/moatd.service's sandbox, without systemd: the unit's capability bounding
# set and no_new_privs (setpriv, as systemd applies them to a root service). moatd must
# discover a container that runs as another user with no capabilities (opening its
# /proc/PID/ns/net needs CAP_SYS_PTRACE, entering it CAP_SYS_ADMIN), enforce, and serve
# metrics. strace records every system call; afterwards each must be allowed by the unit's
# SystemCallFilter, each socket family by RestrictAddressFamilies, and each namespace
# operation by RestrictNamespaces=net, so that the unit does not break moatd under systemd.
#
#   netns moat-XXXXXX: dockerd; strace -f setpriv --bounding-set=<unit's> moatd --metrics
#   +--------------------------------------------------------------------+
#   |  br sbx 10.214.1.0/24            lo: 127.0.0.1:9640 (metrics)      |
#   |     |               |                 |                            |
#   +-----|---------------|-----------------|----------------------------+
#      +----------+   +---------+   +------------+
#      | web      |   | api     |   | outsider   |
#      | uid 1000 |   | uid 0   |   | uid 0      |
#      | no caps  |   |         |   |            |
#      +----------+   +---------+   +------------+
#   policy: api <- web on 8080/tcp; nothing else reaches api.
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat
UNIT=${MOAT_UNIT:-$E2E_ROOT/deploy/moatd.service}	# MOAT_UNIT: try another unit
for t in strace setpriv systemd-analyze; do
	command -v $t >/dev/null || e2e_fail "$t is missing (tests/deps.sh installs it)"
done

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network sbx 10.214.1.0/24

e2e_moat_dirs
mkdir -p "$D/state"
cat >"$POL/api.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-web}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080}]
EOF

e2e_run_host web --network sbx --label app=web --user 1000:1000 --cap-drop ALL
e2e_run_host api --network sbx --label app=api
e2e_run_host outsider --network sbx --label app=outsider

# The unit's capabilities in setpriv's words: CAP_NET_ADMIN CAP_CHOWN -> -all,+net_admin,+chown
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr ' ' '\n' | grep . |
	sed 's/^CAP_//' | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd, -)
[ -n "$caps" ] || e2e_fail "no CapabilityBoundingSet in $UNIT"
grep -qx 'NoNewPrivileges=yes' "$UNIT" || e2e_fail "the unit no longer sets NoNewPrivileges"
e2e_log "capabilities: -all,$caps"

moatd_start strace -f -qq -o "$D/strace" \
	setpriv --no-new-privs --inh-caps=-all --ambient-caps=-all --bounding-set="-all,$caps" -- \
	"$MOATD" --config /dev/null --runtime "$DOCKER_HOST" --policy-dir "$POL" --socket "$SOCK" \
	--state-dir "$D/state" --mode enforce --resync-interval 2 --metrics 127.0.0.1:9640
# strace runs moatd as its child: stop moatd itself, strace follows it out.
stop_traced() {
	local c
	[ -n "${MOATD_PID:-}" ] || return 0
	c=$(pgrep -P "$MOATD_PID" | head -1) || true
	[ -n "$c" ] && kill -TERM "$c" 2>/dev/null
	e2e_wait_gone "$MOATD_PID" 100 || kill -KILL "$MOATD_PID" ${c:+"$c"} 2>/dev/null
	wait "$MOATD_PID" 2>/dev/null || true
	MOATD_PID=
}
e2e_on_exit stop_traced
wait_for 200 moat status >/dev/null 2>&1 || { cat "$D/moatd.log" >&2; e2e_fail "moatd did not answer"; }
e2e_log "moatd's capabilities: $(grep CapEff /proc/"$(pgrep -P "$MOATD_PID" | head -1)"/status)"

e2e_log "== the non-root container is discovered: its namespace was opened and entered"
wait_for 100 sh -c "'$MOAT' --socket '$SOCK' endpoints -o json | grep -q default/web" ||
	{ cat "$D/moatd.log" >&2; e2e_fail "web not listed"; }
moat endpoints -o json >"$D/endpoints.json"
python3 - "$D/endpoints.json" <<'EOF' || { cat "$D/moatd.log" >&2; e2e_fail "endpoints are incomplete"; }
import json, sys
eps = {e["name"]: e for e in json.load(open(sys.argv[1]))}
for n in ("default/web", "default/api", "default/outsider"):
    assert eps[n]["ifaces"], "%s: no host interface (namespace not entered?): %s" % (n, eps[n])
    assert eps[n]["ips"], "%s: no address: %s" % (n, eps[n])
EOF

e2e_log "== enforced"
tcp6_echo_server api 8080
API=$(ctr_ip api sbx)
wait_for 50 tcp6_ok web "$API" 8080 || e2e_fail "web -> api 8080 (allowed)"
e2e_log "ok: web -> api 8080"
expect_fail "outsider -> api 8080" tcp6_ok outsider "$API" 8080

e2e_log "== metrics over TCP (AF_INET in RestrictAddressFamilies)"
ns python3 -c 'import urllib.request; assert b"moat" in urllib.request.urlopen("http://127.0.0.1:9640/metrics", timeout=5).read()' ||
	e2e_fail "metrics not served"
e2e_log "ok: metrics"

e2e_log "== reload (SIGHUP, the unit's ExecReload)"
kill -HUP "$(pgrep -P "$MOATD_PID" | head -1)"
sleep 1
moat status >/dev/null || e2e_fail "moatd gone after SIGHUP"
stop_traced
grep -q "stopping" "$D/moatd.log" || { cat "$D/moatd.log" >&2; e2e_fail "moatd did not stop on SIGTERM"; }

e2e_log "== every system call within the unit's filter"
# groups GROUP... - the system calls of filter groups, nested groups expanded.
python3 - "$D/strace" "$UNIT" <<'EOF' || e2e_fail "moatd does something its unit forbids"
import re, subprocess, sys
trace, unit = sys.argv[1], sys.argv[2]
cache = {}
def expand(name):
    if not name.startswith("@"):
        return {name}
    if name not in cache:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                             text=True, check=True).stdout.split("\n")
        names = set()
        for line in out[1:]:
            w = line.strip()
            if w and not w.startswith("#"):
                names |= expand(w)
        cache[name] = names
    return cache[name]
allowed, first = set(), True
families = set()
namespaces = None
for line in open(unit):
    k, _, v = line.strip().partition("=")
    if k == "SystemCallFilter":
        deny = v.startswith("~")
        names = set().union(*(expand(w) for w in v.lstrip("~").split()))
        assert not (first and deny), "a deny-list-first filter is not handled here"
        allowed = allowed - names if deny else allowed | names
        first = False
    elif k == "RestrictAddressFamilies":
        families = set(v.split())
    elif k == "RestrictNamespaces":
        namespaces = set(v.split())
assert allowed, "no SystemCallFilter in the unit"
lines = open(trace).read().split("\n")
start = next(i for i, l in enumerate(lines) if re.match(r"\d+ +execve\(\".*/moatd\"", l))
used, bad = {}, []
for l in lines[start + 1:]:
    m = re.match(r"\d+ +([a-z_0-9]+)\((.*)", l)
    if not m:
        continue
    name, args = m.groups()
    used[name] = used.get(name, 0) + 1
    if name == "socket":
        fam = args.split(",")[0]
        if fam not in families:
            bad.append("socket family %s not in RestrictAddressFamilies: %s" % (fam, l))
    if name in ("setns", "unshare") or (name in ("clone", "clone3") and "CLONE_NEW" in args):
        kinds = set(re.findall(r"CLONE_NEW([A-Z]+)", args))
        if name == "setns" and not kinds:
            bad.append("setns without a namespace type (any type passes): %s" % l)
        if namespaces is not None and {k.lower() for k in kinds} - namespaces:
            bad.append("namespace %s not in RestrictNamespaces: %s" % (kinds, l))
outside = sorted(set(used) - allowed)
for n in outside:
    bad.append("system call %s (%d calls) is not in SystemCallFilter" % (n, used[n]))
print("# %d distinct system calls, %d calls, all allowed" % (len(used), sum(used.values()))
      if not bad else "\n".join(bad))
sys.exit(1 if bad else 0)
EOF
e2e_log "ok: system calls, socket families and namespaces are what the unit allows"
e2e_log "PASS"
