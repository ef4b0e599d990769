#!/bin/bash
# Runtime discovery: what daemon/runtime/docker.c and daemon/runtime/netns.c see (through docker_probe) must
# match `docker inspect` and `ip link`, and the watcher must report events and resync after
# dockerd dies and comes back.
#
#   netns moat-XXXXXX (dockerd, docker_probe)
#   +---------------------------------------------------------------------------------+
#   |   br-<net4>  10.213.0.0/24              br-<net6>  10.213.1.0/24, fd00:213::/64 |
#   |     |   \________________________        |        |                           |
#   |   vethA                          vethB   vethC    |        (hostnet: no veth,   |
#   +-----|--------------------------------|-----|------|---------  shares this ns)   |
#         |                                |     |      |                             |
#   +------------------------------------------+  +-----------+                       |
#   | web: eth0 (net4), eth1 (net6)            |  | db: eth0  |                       |
#   | side: --network container:web (same ns)  |  +-----------+                       |
#   +------------------------------------------+                                      |
#   | hostnet: --network host ------------------------------------------------------->+
#
# Labels carry awkward values: quotes, a newline, unicode, an empty value.
set -eu
. "$(dirname "$0")/lib.sh"

PROBE=$E2E_BUILD/tests/e2e/docker_probe
[ -x "$PROBE" ] || e2e_fail "$PROBE missing: build first (MOAT_BUILD=DIR for make B=DIR)"

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network net4 10.213.0.0/24
e2e_network net6 10.213.1.0/24 fd00:213::/64

NL='
'
e2e_run web --network net4 --label app=web --label "quote=say \"hi\" 'there'" \
	--label "multi=line1${NL}line2" --label 'uni=café ☕ 日本' --label empty= \
	--label 'io.kubernetes.pod.namespace=shop'
docker network connect net6 web
e2e_run db --network net6 --label app=db
e2e_run side --network container:web --label app=side
e2e_run hostnet --network host --label app=hostnet

D=$E2E_DIR
ns "$PROBE" >"$D/probe.json"
docker inspect $(docker ps -q --no-trunc) >"$D/inspect.json"
ns ip -j -d link show >"$D/links.json"

# check.py PROBE INSPECT LINKS - exits 1 with every mismatch listed.
cat >"$D/check.py" <<'EOF'
import json, sys

probe, inspect, links = (json.load(open(p)) for p in sys.argv[1:4])
errs = []
def want(cond, msg):
    if not cond:
        errs.append(msg)

pc = {c["id"]: c for c in probe["containers"]}
ic = {c["Id"]: c for c in inspect}
want(set(pc) == set(ic), "containers: probe %s, docker %s" % (sorted(pc), sorted(ic)))
by_name = {c["name"]: c for c in pc.values()}
links_by_index = {l["ifindex"]: l for l in links}
links_by_name = {l["ifname"]: l for l in links}
nets = {n["name"]: n for n in probe["networks"]}
mode_kind = {"host": "host", "none": "none"}
veths_seen = {}

for cid, i in ic.items():
    p = pc.get(cid)
    if not p:
        continue
    n = i["Name"].lstrip("/")
    want(p["name"] == n, "%s: name %r" % (n, p["name"]))
    want(p["labels"] == (i["Config"]["Labels"] or {}), "%s: labels %r != %r" % (n, p["labels"], i["Config"]["Labels"]))
    want(p["pid"] == i["State"]["Pid"] and p["pid"] > 0, "%s: pid %r" % (n, p["pid"]))
    want(p["running"] is True, "%s: not running" % n)
    nm = i["HostConfig"]["NetworkMode"]
    kind = "container" if nm.startswith("container:") else mode_kind.get(nm, "bridge")
    want(p["network_mode"] == kind and p["network_mode_name"] == nm, "%s: network mode %r/%r, docker %r" % (n, p["network_mode"], p["network_mode_name"], nm))
    if kind == "host":
        want(not p["ifaces"] and p["netns_error"] is None, "%s: host network has ifaces %r" % (n, p["ifaces"]))
        continue
    want(p["netns_error"] is None, "%s: netns error %r" % (n, p["netns_error"]))
    # Every container-side interface with a peer here: both ends must agree in `ip link`.
    for f in p["ifaces"]:
        if f["name"] == "lo":
            want(f["host_veth"] is None, "%s: lo has a host veth" % n)
            continue
        h = links_by_name.get(f["host_veth"])
        want(h is not None, "%s/%s: host veth %r not in ip link" % (n, f["name"], f["host_veth"]))
        if h:
            want(h["ifindex"] == f["peer_ifindex"], "%s/%s: peer index %r != %r" % (n, f["name"], f["peer_ifindex"], h["ifindex"]))
            want(h.get("link_index") == f["ifindex"], "%s/%s: host veth's peer %r != %r" % (n, f["name"], h.get("link_index"), f["ifindex"]))
            want(h.get("linkinfo", {}).get("info_kind") == "veth", "%s: %s is not a veth" % (n, h["ifname"]))
            want(h.get("master") == f["bridge"], "%s/%s: bridge %r, ip link says %r" % (n, f["name"], f["bridge"], h.get("master")))
    pn = {a["name"]: a for a in p["networks"]}
    dn = i["NetworkSettings"]["Networks"] or {}
    want(set(pn) == (set() if kind == "container" else set(dn)), "%s: networks %r, docker %r" % (n, sorted(pn), sorted(dn)))
    for name, d in dn.items():
        a = pn.get(name)
        if not a:
            continue
        want(a["id"] == d["NetworkID"], "%s/%s: network id" % (n, name))
        want(a["ipv4"] == (d["IPAddress"] or None), "%s/%s: ipv4 %r != %r" % (n, name, a["ipv4"], d["IPAddress"]))
        want(a["ipv6"] == (d["GlobalIPv6Address"] or None), "%s/%s: ipv6 %r != %r" % (n, name, a["ipv6"], d["GlobalIPv6Address"]))
        want(a["mac"] == d["MacAddress"], "%s/%s: mac %r != %r" % (n, name, a["mac"], d["MacAddress"]))
        want(a["host_veth"] is not None, "%s/%s: no host veth" % (n, name))
        want(a["bridge"] == "br-" + d["NetworkID"][:12], "%s/%s: bridge %r" % (n, name, a["bridge"]))
        f = [f for f in p["ifaces"] if f["name"] == a["iface"]]
        want(f and f[0]["mac"] == a["mac"] and f[0]["host_veth"] == a["host_veth"], "%s/%s: iface %r does not match the network's MAC/veth" % (n, name, a["iface"]))
        want(f and d["IPAddress"] + "/%d" % d["IPPrefixLen"] in f[0]["addrs"], "%s/%s: %s not on %r" % (n, name, d["IPAddress"], a["iface"]))
        if d["GlobalIPv6Address"]:
            want(f and d["GlobalIPv6Address"] + "/%d" % d["GlobalIPv6PrefixLen"] in f[0]["addrs"], "%s/%s: v6 not on %r" % (n, name, a["iface"]))
        if a["host_veth"] in veths_seen:
            errs.append("%s/%s: veth %s also belongs to %s" % (n, name, a["host_veth"], veths_seen[a["host_veth"]]))
        veths_seen[a["host_veth"]] = n

# The scenario itself.
web, side = by_name.get("web"), by_name.get("side")
want(web and len([a for a in web["networks"] if a["host_veth"]]) == 2, "web: want two veths")
want(web and side and side["network_mode_peer"] == web["id"], "side: peer is not web")
want(web and side and sorted(f["host_veth"] or "" for f in side["ifaces"]) == sorted(f["host_veth"] or "" for f in web["ifaces"]), "side: not in web's namespace")
want(web and web["labels"].get("multi") == "line1\nline2" and web["labels"].get("uni") == "café ☕ 日本", "web: awkward labels mangled")
want(web and list(web["labels"]) == sorted(web["labels"]), "web: labels not sorted")
want(nets.get("net4", {}).get("subnets") == ["10.213.0.0/24"], "net4 subnets %r" % nets.get("net4"))
want(sorted(nets.get("net6", {}).get("subnets", [])) == ["10.213.1.0/24", "fd00:213::/64"] and nets["net6"]["ipv6"], "net6 subnets %r" % nets.get("net6"))
want(not nets.get("host", {"subnets": []})["subnets"], "host network has subnets")
for e in errs:
    print("mismatch:", e)
sys.exit(1 if errs else 0)
EOF

python3 "$D/check.py" "$D/probe.json" "$D/inspect.json" "$D/links.json" ||
	{ cat "$D/probe.json"; e2e_fail "probe disagrees with docker inspect / ip link"; }
e2e_log "ok: probe matches docker inspect and ip link"

# The checker must be able to fail: one wrong label, one wrong veth.
python3 - "$D/probe.json" "$D/bad.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
for c in p["containers"]:
    if c["name"] == "web":
        c["labels"]["multi"] = "line1 line2"
        c["networks"][0]["host_veth"] = "lo"
json.dump(p, open(sys.argv[2], "w"))
EOF
expect_fail "checker rejects a mangled probe" \
	python3 "$D/check.py" "$D/bad.json" "$D/inspect.json" "$D/links.json"

# Watcher: RESYNC on connect; start/connect/die/destroy; DOWN and RESYNC across a restart.
W=$D/watch.log
ns "$PROBE" --watch 120 >"$W" 2>"$D/watch.err" &
WATCH_PID=$!
e2e_on_exit 'kill $WATCH_PID 2>/dev/null; wait $WATCH_PID 2>/dev/null'
seen() { grep -qxF "$1" "$W"; }
count() { grep -cxF "$1" "$W" || true; }
wait_for 50 seen RESYNC || e2e_fail "no RESYNC after connecting: $(cat "$W" "$D/watch.err")"

e2e_run ev1 --network net4
ev1=$(docker inspect -f '{{.Id}}' ev1)
docker network connect net6 ev1
docker rm -f ev1 >/dev/null
for a in start connect die destroy; do
	wait_for 50 seen "CONTAINER $a $ev1" || e2e_fail "no $a event for ev1: $(cat "$W")"
done
e2e_log "ok: start, connect, die, destroy seen"

t0=$(date +%s%N)
e2e_dockerd_kill KILL
wait_for 50 seen DOWN || e2e_fail "no DOWN after killing dockerd: $(cat "$W")"
e2e_dockerd_start
wait_for 100 test "$(count RESYNC)" -ge 2 || e2e_fail "no RESYNC after restart: $(cat "$W")"
e2e_log "ok: DOWN and RESYNC across a dockerd restart ($((($(date +%s%N) - t0) / 1000000)) ms)"

# And the client works against the new dockerd.
ns "$PROBE" >"$D/probe2.json" || e2e_fail "probe failed after restart"
e2e_log "PASS"
