#!/bin/bash
# Packets that try to slip through: crafted frames (scapy, tests/e2e/slip.py) from containers
# with NET_RAW against an ingress-isolated api, each denied case over IPv4 and IPv6, each with
# a positive control (the same crafting on an allowed pair or port arrives), so the test can
# fail. What arrives is what a raw sniffer on the destination's eth0 saw: anything Moat let
# over the bridge counts, whether or not the receiving kernel then kept it.
#
#   netns moat-XXXXXX: dockerd, moatd (table inet moat + bridge moat)
#   +----------------------------------------------------------------------------+
#   |  br-front 10.250.1.0/24 fd00:250:1::/64  (RA/ND positive control sent here) |
#   |     |             |                |                   |                    |
#   +-----|-------------|----------------|-------------------|--------------------+
#      +------+     +--------+     +------------+      +-----------+
#      | web  |     | pinger |     | outsider   |      | api       |
#      | sniff|     |        |     | sniff      |      | sniff     |
#      +------+     +--------+     +------------+      +-----------+
#   policy: api <- web on 8080/tcp and 9090/udp; api <- pinger on everything (ICMP too);
#   nothing else reaches api (7070/tcp and 7071/udp are the denied ports of web).
#   Every container runs with NET_RAW and NET_ADMIN and /e2e (this directory) mounted.
#
# Cases: (a) fragmented TCP/UDP/ICMP to a denied pair or port, tiny first fragments, atomic
# fragments; (b) non-first fragments alone; (c) overlapping fragments rewriting an allowed
# port into a denied one; (d) ICMP echo reusing the identifier and sequence of an allowed ping
# in flight; (e) spoofed sources, with and without ARP/ND/MAC poisoning, and whether the
# poisoning diverts api's traffic to the outsider; (f) router advertisements and redirects
# from a container change no route or address (positive control: the same RA from the bridge
# does); (g) destinations that are not api's listed addresses (broadcast, multicast, api's
# IPv6 link-local address); (h) ICMP errors about others' connections; (i) a bridge port
# moatd does not know sending with web's addresses and MAC.
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat
/usr/bin/python3 -c 'import scapy' 2>/dev/null || e2e_fail "python3-scapy missing (tests/deps.sh)"

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network front 10.250.1.0/24 fd00:250:1::/64

e2e_moat_dirs

cat >"$POL/10-api.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080}, {port: 9090, protocol: UDP}]
    - from: [{podSelector: {matchLabels: {app: pinger}}}]
EOF

for c in web pinger outsider api; do
	e2e_run_host "$c" --network front --label "app=$c" --cap-add NET_RAW --cap-add NET_ADMIN \
		-v "$E2E_ROOT/tests/e2e:/e2e:ro" &
done
wait
phase "containers up; moatd"
e2e_moatd_enforce
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q 'default/api.*in'" ||
	e2e_fail "api not isolated"

mac() { ctr_mac "$1" front; }
ctr_pids web pinger outsider api
WEB4=$(ctr_ip web front) WEB6=$(ctr_ip web front 6) WEBM=$(mac web)
PIN4=$(ctr_ip pinger front) PIN6=$(ctr_ip pinger front 6)
OUT4=$(ctr_ip outsider front) OUT6=$(ctr_ip outsider front 6) OUTM=$(mac outsider)
API4=$(ctr_ip api front) API6=$(ctr_ip api front 6) APIM=$(mac api) APILL=$(ll6 api)
WEBLL=$(ll6 web)
BR=br-$(docker network inspect -f '{{.Id}}' front | cut -c1-12)
OUTV=$(ctr_port outsider "$BR")
[ -n "$OUTV" ] || e2e_fail "no bridge port for the outsider"

phase "sniffers"
sniffers api web outsider

# web keeps a UDP flow to api open (both families, source port 40001) for (h).
for a in "$API4" "$API6"; do
	docker exec -d web python3 -c 'import os, socket, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
if ":" in sys.argv[1]:  # else [::]:40001 takes 0.0.0.0:40001 too, and one bind of the two fails
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("", 40001)); s.connect((sys.argv[1], 9090))
while not os.path.exists("/tmp/stop-flows"):
    try:
        s.send(b"hello")
    except OSError:
        pass  # api answers port unreachable, or its neighbour entry is not resolved yet
    time.sleep(0.2)' "$a"
done
flows() { [ "$(ns conntrack -L -p udp --sport 40001 2>/dev/null | grep -c 'dport=9090')" -ge 2 ]; }
wait_for 100 flows || { ns conntrack -L -p udp >&2; e2e_fail "web's UDP flows to api did not start"; }

phase "(a) fragments, (b) non-first fragments, (c) overlaps, (e) spoofing, (g) non-unicast, (h) ICMP errors"
send outsider <<EOF
udp $APIM $OUT4 $API4 9090 a-out-udp4 frag
udp $APIM $OUT6 $API6 9090 a-out-udp6 frag
tcp $APIM $OUT4 $API4 8080 a-out-tcp4 frag
tcp $APIM $OUT6 $API6 8080 a-out-tcp6 frag
tcp $APIM $OUT4 $API4 8080 a-out-tiny4 tiny
tcp $APIM $OUT6 $API6 8080 a-out-tiny6 tiny
udp $APIM $OUT6 $API6 9090 a-out-atomic6 atomic
ping $APIM $OUT4 $API4 0x4d4e 2 a-out-ping4 0.01 frag
ping $APIM $OUT6 $API6 0x4d4e 2 a-out-ping6 0.01 frag
udp $APIM $OUT4 $API4 9090 b-out4 rest:4243
udp $APIM $OUT6 $API6 9090 b-out6 rest:4243
tcp $APIM $OUT4 $API4 8080 b-out-tcp4 rest:4244
tcp $APIM $OUT6 $API6 8080 b-out-tcp6 rest:4244
udp $APIM $OUT4 $API4 9090 c-out-udp4 dup:7071
udp $APIM $OUT6 $API6 9090 c-out-udp6 dup:7071
udp $APIM $WEB4 $API4 9090 e-spoof-udp4
udp $APIM $WEB6 $API6 9090 e-spoof-udp6
tcp $APIM $WEB4 $API4 8080 e-spoof-tcp4
tcp $APIM $WEB6 $API6 8080 e-spoof-tcp6
udp $APIM $WEB4 $API4 9090 e-spoof-frag4 frag
udp $APIM $WEB6 $API6 9090 e-spoof-frag6 frag
ping $APIM $PIN4 $API4 0x4d50 2 e-spoof-ping4 0.01
ping $APIM $PIN6 $API6 0x4d50 2 e-spoof-ping6 0.01
macspoof $APIM $WEBM $WEB4 $API4 9090 e-spoof-mac4
macspoof $APIM $WEBM $WEB6 $API6 9090 e-spoof-mac6
udp ff:ff:ff:ff:ff:ff $OUT4 255.255.255.255 9090 g-bcast4
udp ff:ff:ff:ff:ff:ff $OUT4 10.250.1.255 9090 g-sbcast4
udp 01:00:5e:00:00:01 $OUT4 224.0.0.1 9090 g-mcast4
udp 33:33:00:00:00:01 $OUT6 ff02::1 9090 g-mcast6
udp $APIM $OUT6 $APILL 9090 g-ll6
tcp $APIM $OUT6 $APILL 8080 g-ll6-tcp
udp $WEBM $OUT6 $WEBLL 9090 g-ll6-web
icmperr $APIM $OUT4 $API4 $API4 $WEB4 9090 40001 h-out4
icmperr $APIM $OUT6 $API6 $API6 $WEB6 9090 40001 h-out6
EOF
send pinger <<EOF
ping $APIM $PIN4 $API4 0x4d4e 2 p-ping4 0.01 frag
ping $APIM $PIN6 $API6 0x4d4e 2 p-ping6 0.01 frag
EOF
send web <<EOF
udp $APIM $WEB4 $API4 9090 p-udp4 frag
udp $APIM $WEB6 $API6 9090 p-udp6 frag
tcp $APIM $WEB4 $API4 8080 p-tcp4 frag
tcp $APIM $WEB6 $API6 8080 p-tcp6 frag
tcp $APIM $WEB4 $API4 8080 p-tiny4 tiny
udp $APIM $WEB6 $API6 9090 p-atomic6 atomic
udp $APIM $WEB4 $API4 7071 a-udp4 frag
udp $APIM $WEB6 $API6 7071 a-udp6 frag
tcp $APIM $WEB4 $API4 7070 a-tcp4 frag
tcp $APIM $WEB6 $API6 7070 a-tcp6 frag
tcp $APIM $WEB4 $API4 7070 a-tiny4 tiny
tcp $APIM $WEB6 $API6 7070 a-tiny6 tiny
udp $APIM $WEB6 $API6 7071 a-atomic6 atomic
udp $APIM $WEB4 $API4 9090 b-web4 rest:4242
udp $APIM $WEB6 $API6 9090 b-web6 rest:4242
udp $APIM $WEB4 $API4 9090 c-dup-udp4 dup:7071
udp $APIM $WEB6 $API6 9090 c-dup-udp6 dup:7071
udp $APIM $WEB4 $API4 9090 c-part-udp4 part:7071
udp $APIM $WEB6 $API6 9090 c-part-udp6 part:7071
tcp $APIM $WEB4 $API4 8080 c-dup-tcp4 dup:7070
tcp $APIM $WEB6 $API6 8080 c-dup-tcp6 dup:7070
tcp $APIM $WEB4 $API4 8080 c-part-tcp4 part:7070
tcp $APIM $WEB6 $API6 8080 c-part-tcp6 part:7070
udp $APIM $WEB4 $API4 9090 e-honest4
udp $APIM $WEB6 $API6 9090 e-honest6
icmperr $APIM $WEB4 $API4 $API4 $WEB4 9090 40001 h-web4
icmperr $APIM $WEB6 $API6 $API6 $WEB6 9090 40001 h-web6
EOF
frames api
frames web

e2e_log "-- (a) fragmented, to a denied pair or port"
for m in p-udp4 p-udp6 p-tcp4 p-tcp6 p-tiny4 p-atomic6 p-ping4 p-ping6; do
	arrived api "$m" "crafted and fragmented, on an allowed pair and port"
done
# The kernel refuses an IPv6 first fragment that cuts the transport header (RFC 7112), for
# allowed ports too: a-tiny6 has no positive control and proves less than a-tiny4.
for m in a-udp4 a-udp6 a-tcp4 a-tcp6 a-tiny4 a-tiny6 a-atomic6; do
	blocked api "$m" "web -> api, denied port, fragmented"
done
for m in a-out-udp4 a-out-udp6 a-out-tcp4 a-out-tcp6 a-out-tiny4 a-out-tiny6 a-out-atomic6 \
	a-out-ping4 a-out-ping6; do
	blocked api "$m" "outsider -> api, fragmented"
done
e2e_log "-- (b) non-first fragments alone"
for m in b-web4 b-web6 b-out4 b-out6 b-out-tcp4 b-out-tcp6; do
	blocked api "$m" "non-first fragments alone"
done
e2e_log "-- (c) overlapping fragments"
for m in c-dup-udp4-rw c-dup-udp6-rw c-part-udp4-rw c-part-udp6-rw c-dup-tcp4-rw c-dup-tcp6-rw \
	c-part-tcp4-rw c-part-tcp6-rw c-out-udp4 c-out-udp6 c-out-udp4-rw c-out-udp6-rw; do
	blocked api "$m" "overlapping fragment rewriting the port"
done
# Whatever the reassembly, no frame from web may carry a denied port.
if grep -E "^($WEB4|$WEB6) > .* dport=(7070|7071) " "$D/frames.api"; then
	e2e_fail "a frame from web to a denied port reached api"
fi
e2e_log "ok: no frame from web to 7070/tcp or 7071/udp reached api"
e2e_log "(overlaps: $(grep -cE 'marks=c-(dup|part)-[a-z]+[46]$' "$D/frames.api") frames of the first fragments' datagrams reached the allowed port: the kernel keeps the first copy or drops the datagram)"
e2e_log "-- (e) spoofed sources"
arrived api e-honest4 "web -> api 9090/udp, crafted (v4)"
arrived api e-honest6 "web -> api 9090/udp, crafted (v6)"
for m in e-spoof-udp4 e-spoof-udp6 e-spoof-tcp4 e-spoof-tcp6 e-spoof-frag4 e-spoof-frag6 \
	e-spoof-ping4 e-spoof-ping6 e-spoof-mac4 e-spoof-mac6; do
	blocked api "$m" "outsider claiming web's (or pinger's) address"
done
e2e_log "-- (g) destinations that are not api's listed addresses"
# The same packets reach web, which is not isolated: the positive control. The subnet's
# broadcast address is an unknown address in a managed subnet: dropped for everyone.
for m in g-bcast4 g-mcast4 g-mcast6 g-ll6-web; do arrived web "$m" "outsider -> web (not isolated)"; done
blocked api g-bcast4 "outsider -> 255.255.255.255:9090/udp"
blocked api g-sbcast4 "outsider -> 10.250.1.255:9090/udp"
blocked api g-mcast4 "outsider -> 224.0.0.1:9090/udp"
blocked api g-mcast6 "outsider -> ff02::1 9090/udp"
blocked api g-ll6 "outsider -> api's link-local address 9090/udp"
blocked api g-ll6-tcp "outsider -> api's link-local address 8080/tcp (SYN)"
e2e_log "-- (h) ICMP errors about web's connection to api"
arrived api h-web4 "web -> api: ICMP error about its own connection (v4)"
arrived api h-web6 "web -> api: ICMP error about its own connection (v6)"
blocked api h-out4 "outsider -> api: ICMP error about web's connection (v4)"
blocked api h-out6 "outsider -> api: ICMP error about web's connection (v6)"

touch "/proc/${PID[web]}/root/tmp/stop-flows"

phase "(d) echo reusing the identifier and sequence of an allowed ping; (b) completed"
# First, before the reassembly timer (30 s for IPv4) drops web's held fragments.
send web <<EOF
udp $APIM $WEB4 $API4 9090 b-web4 first:4242
udp $APIM $WEB6 $API6 9090 b-web6 first:4242
EOF
send pinger <<EOF &
ping $APIM $PIN4 $API4 0x4d4f 40 d-pin4 0.02
EOF
p4=$!
send pinger <<EOF &
ping $APIM $PIN6 $API6 0x4d4f 40 d-pin6 0.02
EOF
p6=$!
send outsider <<EOF
sleep 0.3
ping $APIM $OUT4 $API4 0x4d4f 20 d-out4 0.01
ping $APIM $OUT6 $API6 0x4d4f 20 d-out6 0.01
EOF
wait "$p4" "$p6"
frames api
arrived api d-pin4 "pinger -> api echo (v4)"
arrived api d-pin6 "pinger -> api echo (v6)"
blocked api d-out4 "outsider echo with pinger's identifier and sequence (v4)"
blocked api d-out6 "outsider echo with pinger's identifier and sequence (v6)"
arrived api b-web4 "web's held non-first fragments, completed by their first (v4)"
arrived api b-web6 "web's held non-first fragments, completed by their first (v6)"
blocked api b-out4 "outsider's non-first fragments, still alone"

phase "(e) ARP and ND poisoning, then spoofing again"
# api learns web's addresses first: unsolicited advertisements only update existing entries.
# api_to MARK ADDR... - api sends MARK to each ADDR (UDP 5555), three times 0.1 s apart.
api_to() { in_ctr api /usr/bin/python3 -c 'import socket, sys, time
for i in range(3):
    for a in sys.argv[2:]:
        s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"MK{%s}" % sys.argv[1].encode() * 4, (a, 5555))
    time.sleep(0.1)' "$@"; }
api_to warmup "$WEB4" "$WEB6"
sleep 0.3
in_ctr api ip neigh show >"$D/neigh.before"
send outsider <<EOF
arp $APIM $WEB4 $API4
garp $WEB4
na $APIM $APILL $WEB6
na 33:33:00:00:00:01 ff02::1 $WEB6
na $APIM $API6 $WEB6 $OUT6
sleep 0.2
udp $APIM $WEB4 $API4 9090 e-poison-udp4
udp $APIM $WEB6 $API6 9090 e-poison-udp6
EOF
in_ctr api ip neigh show >"$D/neigh.after"
api_to e-icpt-arp4 "$WEB4"
api_to e-icpt-nd6 "$WEB6"
frames api
frames outsider
blocked api e-poison-udp4 "spoofed after ARP poisoning attempts"
blocked api e-poison-udp6 "spoofed after ND poisoning attempts"
if grep -F "$WEB4 " "$D/neigh.after" | grep -qi "$OUTM"; then
	e2e_fail "ARP poisoning: api maps web's $WEB4 to the outsider's MAC"
fi
e2e_log "ok: api's ARP entry for web unchanged"
if grep -F "$WEB6 " "$D/neigh.after" | grep -qi "$OUTM"; then
	grep -F "$WEB6 " "$D/neigh.before" "$D/neigh.after" >&2
	leak e-nd-poison "ND poisoning: an NA from the outsider (from its link-local or its own global address) made api map web's $WEB6 to the outsider's MAC $OUTM"
else
	held e-nd-poison "ND poisoning of api's entry for web"
fi
blocked outsider e-icpt-arp4 "api -> web (v4) diverted to the outsider after ARP poisoning attempts"
blocked outsider e-icpt-nd6 "api -> web (v6) diverted to the outsider after ND poisoning"

phase "(e) MAC spoofing: frames from web's MAC carrying the outsider's own address"
in_ctr api ip neigh flush dev eth0	# api's neighbours back to the truth
api_to warmup2 "$WEB4" "$WEB6"
send outsider <<EOF &
repeat 150 0.02 macspoof $APIM $WEBM $OUT4 $API4 9 e-fdb-teach4
EOF
p4=$!
fdb_poisoned() { ns bridge fdb show br "$BR" | grep -i "$WEBM" | grep -q " dev $OUTV "; }
if wait_for 100 fdb_poisoned; then
	ns bridge fdb show br "$BR" | grep -i "$WEBM" >&2
	leak e-fdb-poison "the bridge learnt web's MAC $WEBM on the outsider's port $OUTV"
else
	held e-fdb-poison "web's MAC learnt on the outsider's port"
fi
api_to e-icpt-fdb "$WEB4" "$WEB6"
wait "$p4"
frames outsider
blocked outsider e-icpt-fdb "api -> web diverted to the outsider by frames with web's MAC"
# web's MAC back on web's port, api's neighbours back to the truth.
in_ctr web /usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], 9))' "$API4"
in_ctr api ip neigh flush dev eth0

phase "(f) router advertisements and redirects from a container"
routes() {
	local c
	ns sh -c 'ip -4 route; ip -6 route; ip -o addr' | sed 's/ valid_lft.*//; s/expires [0-9]*sec//'
	for c in web api pinger; do
		echo "== $c"
		in_ctr "$c" sh -c 'ip -4 route; ip -6 route; ip -o addr' |
			sed 's/ valid_lft.*//; s/expires [0-9]*sec//'
	done
}
routes >"$D/routes.before"
send outsider <<EOF
ra fd00:bad:1::
redirect $APIM $API6 $WEB6
redirect $APIM $APILL $WEB6
sleep 1
EOF
routes >"$D/routes.after"
diff -u "$D/routes.before" "$D/routes.after" >&2 ||
	e2e_fail "an RA or redirect from a container changed routes or addresses"
e2e_log "ok: routes and addresses of the node and of web, api, pinger unchanged"
echo "ra fd00:bad:2::" | ns /usr/bin/python3 "$E2E_ROOT/tests/e2e/slip.py" run --iface "$BR"
wait_for 30 sh -c "nsenter -t ${PID[web]} -n ip -6 route | grep -q fd00:bad:2::" ||
	e2e_fail "positive control: web ignored an RA from the bridge (the RA test proves nothing)"
e2e_log "ok: the same RA sent by the node changes web's routes"

phase "(i) a bridge port moatd does not know claims nothing an endpoint owns"
# What a container started while moatd is down (or before its event is handled) has: a port
# in no set. Here a second link of the outsider's, on the bridge, sends as web.
ns ip link add mst0 type veth peer name mst1
ns ip link set mst0 master "$BR" up
ns ip link set mst1 netns "${PID[outsider]}"
in_ctr outsider sysctl -qw net.ipv6.conf.mst1.disable_ipv6=0 net.ipv6.conf.mst1.accept_dad=0
in_ctr outsider ip link set mst1 up
wait_for 50 sh -c "nsenter -t ${PID[outsider]} -n ip -6 addr show dev mst1 scope link | grep -q fe80" ||
	e2e_fail "mst1 got no link-local address"
STRM=$(in_ctr outsider ip -o link show mst1 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
in_ctr api ip neigh flush dev eth0
api_to warmup3 "$WEB4" "$WEB6"
docker exec -i outsider python3 /e2e/slip.py run --iface mst1 <<EOF
udp $WEBM 192.0.2.7 $WEB4 9999 i-control
udp $APIM $WEB4 $API4 9090 i-src4
udp $APIM $WEB6 $API6 9090 i-src6
arp $APIM $WEB4 $API4
na $APIM $APILL $WEB6
repeat 50 0.02 macspoof $APIM $WEBM 192.0.2.7 $API4 9 i-mac
EOF
frames web
frames api
arrived web i-control "an unknown port's frame from an address nobody owns to open web"
blocked api i-src4 "web's IPv4 address from an unknown port"
blocked api i-src6 "web's IPv6 address from an unknown port"
in_ctr api ip neigh show | grep -qi "$STRM" && e2e_fail "an unknown port's ARP/NA made api map web to it"
e2e_log "ok: api's neighbours for web unchanged by an unknown port's ARP and NA"
ns bridge fdb show br "$BR" | grep -i "$WEBM" | grep -q " dev mst0 " &&
	e2e_fail "the bridge learnt web's MAC on an unknown port"
e2e_log "ok: web's MAC not learnt on an unknown port"

phase "moatd still running, ruleset still readable"
e2e_alive "$MOATD_PID" || e2e_fail "moatd died"
moat status >/dev/null || e2e_fail "moatd does not answer"
ns nft list ruleset >/dev/null || e2e_fail "nft list ruleset failed"
echo "PASS"
