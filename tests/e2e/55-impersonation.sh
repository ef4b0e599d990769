#!/bin/bash
# Gateway and neighbour impersonation: no bridge port, known to moatd or not, may speak for
# the gateway (ARP, gratuitous ARP, neighbour advertisements for its global or link-local
# address, packets or ICMP errors from its addresses) or advertise routes and redirect; and a
# container with NET_ADMIN that changes its MAC, renames eth0 and makes up a veth pair whose
# indexes match another container's keeps its own port (or is cut off): it never becomes a
# port moatd does not know, and never takes another's. Crafted frames: tests/e2e/slip.py.
# What arrives is what a raw sniffer on the destination's eth0 saw; api's neighbour table and
# routes tell whether a lie took hold. Positive controls: an unknown port's frame from an
# address nobody owns reaches open web; the outsider's own frames pass again with its MAC.
#
#   netns moat-XXXXXX: dockerd, moatd; br-front 10.217.1.1 fd00:217:1::1 fe80::... (gateway)
#   +----------------------------------------------------------------------------------+
#   |  br-front 10.217.1.0/24 fd00:217:1::/64                                           |
#   |     |               |                |           | mst0 (a port moatd never knew)  |
#   +-----|---------------|----------------|-----------|---------------------------------+
#      +------+       +------+       +------------------------+
#      | web  |       | api  |       | outsider  eth0    mst1 |  NET_ADMIN, NET_RAW
#      | sniff|       | sniff|       +------------------------+
#      +------+       +------+
#   No policy: every case is about the bridge (what a lie would divert), not about isolation.
set -eu
. "$(dirname "$0")/lib.sh"

e2e_need_moat
/usr/bin/python3 -c 'import scapy' 2>/dev/null || e2e_fail "python3-scapy missing (tests/deps.sh)"

e2e_setup
e2e_dockerd_start
e2e_images
e2e_network front 10.217.1.0/24 fd00:217:1::/64

e2e_moat_dirs

for c in web api outsider; do
	e2e_run_host "$c" --network front --label "app=$c" --cap-add NET_RAW --cap-add NET_ADMIN \
		-v "$E2E_ROOT/tests/e2e:/e2e:ro" &
done
wait
e2e_moatd_enforce
wait_for 50 sh -c "'$MOAT' --socket '$SOCK' endpoints | grep -q default/outsider" ||
	e2e_fail "outsider not listed"

ctr_pids web api outsider
BR=br-$(docker network inspect -f '{{.Id}}' front | cut -c1-12)
WEB4=$(ctr_ip web front) WEB6=$(ctr_ip web front 6) WEBM=$(ctr_mac web front)
API4=$(ctr_ip api front) API6=$(ctr_ip api front 6) APIM=$(ctr_mac api front) APILL=$(ll6 api)
OUT4=$(ctr_ip outsider front) OUTM=$(ctr_mac outsider front)
GW4=10.217.1.1 GW6=fd00:217:1::1
# Docker gives a bridge with IPv6 fe80::1 besides its own link-local address: both count.
read -r -a GWLL < <(ns ip -6 -o addr show dev "$BR" scope link | awk '{ sub("/.*", "", $4); print $4 }' | paste -sd' ')
[ "${#GWLL[@]}" -gt 0 ] || e2e_fail "the bridge has no link-local address"
OUTV=$(ctr_port outsider "$BR") WEBV=$(ctr_port web "$BR")
[ -n "$OUTV" ] && [ -n "$WEBV" ] || e2e_fail "no bridge port for the outsider or web"
e2e_log "gateway: $GW4 $GW6 ${GWLL[*]}; ports: outsider $OUTV, web $WEBV"
sniffers api web

# api_learns: api's neighbour entries for the gateway's three addresses, fresh and true.
api_learns() {
	in_ctr api ip neigh flush dev eth0
	in_ctr api /usr/bin/python3 -c 'import socket, sys, time
for i in range(3):
    for a in sys.argv[1:]:
        s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"x", (a, 9, 0, socket.if_nametoindex("eth0")) if ":" in a else (a, 9))
    time.sleep(0.1)' "$GW4" "$GW6" "${GWLL[@]}"
	sleep 0.3
	in_ctr api ip neigh show >"$D/neigh.before"
	grep -q "${GWLL[0]} " "$D/neigh.before" && grep -q "$GW4 " "$D/neigh.before" ||
		{ cat "$D/neigh.before" >&2; e2e_fail "api did not resolve the gateway"; }
}
# gateway_true WHO MAC - api's entries for the gateway do not name MAC.
gateway_true() {
	local a
	in_ctr api ip neigh show >"$D/neigh.after"
	for a in "$GW4" "$GW6" "${GWLL[@]}"; do
		if grep -F "$a " "$D/neigh.after" | grep -qi "$2"; then
			grep -F "$a " "$D/neigh.before" "$D/neigh.after" >&2
			e2e_fail "$1 made api map the gateway's $a to its MAC $2"
		fi
	done
	e2e_log "ok: api's entries for the gateway ($GW4, $GW6, ${GWLL[*]}) unchanged by $1"
}
routes() { in_ctr api sh -c 'ip -4 route; ip -6 route; ip -o addr' | sed 's/ valid_lft.*//; s/expires [0-9]*sec//'; }

phase "a known port speaks for the gateway"
api_learns
send outsider <<EOF
garp $GW4
arp $APIM $GW4 $API4
$(for a in "${GWLL[@]}"; do echo "na $APIM $APILL $a"; echo "na 33:33:00:00:00:01 ff02::1 $a"; done)
na $APIM $API6 $GW6
udp $APIM $GW4 $API4 9999 k-gw-src4
udp $APIM $GW6 $API6 9999 k-gw-src6
icmperr $APIM $GW4 $API4 $API4 $WEB4 9090 40001 k-gw-err4
EOF
frames api
gateway_true "the outsider (a known port)" "$OUTM"
blocked api k-gw-src4 "a datagram from the gateway's IPv4 address, sent by the outsider"
blocked api k-gw-src6 "a datagram from the gateway's IPv6 address, sent by the outsider"
blocked api k-gw-err4 "an ICMP error from the gateway, sent by the outsider"

phase "a port moatd does not know speaks for the gateway, advertises routes, redirects"
ns ip link add mst0 type veth peer name mst1
ns ip link set mst0 master "$BR" up
ns ip link set mst1 netns "${PID[outsider]}"
in_ctr outsider sysctl -qw net.ipv6.conf.mst1.disable_ipv6=0 net.ipv6.conf.mst1.accept_dad=0
in_ctr outsider ip link set mst1 up
wait_for 50 sh -c "nsenter -t ${PID[outsider]} -n ip -6 addr show dev mst1 scope link | grep -q fe80" ||
	e2e_fail "mst1 got no link-local address"
STRM=$(in_ctr outsider ip -o link show mst1 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
api_learns
routes >"$D/routes.before"
docker exec -i outsider python3 /e2e/slip.py run --iface mst1 <<EOF
udp $WEBM 192.0.2.7 $WEB4 9999 s-control
garp $GW4
arp $APIM $GW4 $API4
$(for a in "${GWLL[@]}"; do echo "na $APIM $APILL $a"; done)
na $APIM $API6 $GW6
udp $APIM $GW4 $API4 9999 s-gw-src4
udp $APIM $GW6 $API6 9999 s-gw-src6
ra fd00:bad:5::
redirect $APIM $API6 $WEB6
sleep 1
EOF
frames api
frames web
arrived web s-control "an unknown port's frame from an address nobody owns, to open web"
gateway_true "an unknown port" "$STRM"
blocked api s-gw-src4 "a datagram from the gateway's IPv4 address, from an unknown port"
blocked api s-gw-src6 "a datagram from the gateway's IPv6 address, from an unknown port"
routes >"$D/routes.after"
diff -u "$D/routes.before" "$D/routes.after" >&2 ||
	e2e_fail "an RA or redirect from an unknown port changed api's routes or addresses"
e2e_log "ok: api's routes and addresses unchanged by an unknown port's RA and redirect"
ns ip link del mst0

phase "NET_ADMIN: a new MAC, eth0 renamed, a made-up pair with web's indexes"
WEBIDX=$(in_ctr web ip -o link show eth0 | sed -n 's/^\([0-9]*\): .*/\1/p')
WEBVIDX=$(ns ip -o link show "$WEBV" | sed -n 's/^\([0-9]*\): .*/\1/p')
in_ctr outsider sh -e -c "
	ip link set eth0 down
	ip link set eth0 address 02:00:5e:10:00:99 name eth9
	ip link set eth9 up
	ip link add fk0 index $WEBIDX address $OUTM type veth peer name fk1 index $WEBVIDX
	ip link set fk0 up
	ip link set fk1 up"
in_ctr outsider ip -o link >&2
sleep 5	# two resyncs (--resync-interval 2) re-inspect every container
moat endpoints -o json >"$D/endpoints.json"
python3 - "$D/endpoints.json" "$OUTV" "$WEBV" <<'EOF' || e2e_fail "a container's NET_ADMIN changed which port is whose"
import json, sys
eps = {e["name"]: e for e in json.load(open(sys.argv[1]))}
outv, webv = sys.argv[2], sys.argv[3]
assert eps["default/outsider"]["ifaces"] == [outv], eps["default/outsider"]
assert eps["default/web"]["ifaces"] == [webv], eps["default/web"]
assert not [n for n, e in eps.items() if webv in e["ifaces"] and n != "default/web"], eps
EOF
e2e_log "ok: the outsider keeps its port $OUTV, and web's $WEBV is web's alone"
docker exec -i outsider python3 /e2e/slip.py run --iface eth9 <<EOF
udp $WEBM 192.0.2.7 $WEB4 9999 n-foreign
udp $WEBM $OUT4 $WEB4 9999 n-newmac
EOF
in_ctr outsider ip link set eth9 address "$OUTM"
docker exec -i outsider python3 /e2e/slip.py run --iface eth9 <<EOF
udp $WEBM $OUT4 $WEB4 9999 n-back
EOF
frames web
blocked web n-foreign "the outsider, with a new MAC, from an address nobody owns"
blocked web n-newmac "the outsider, with a new MAC, from its own address (cut off)"
arrived web n-back "the outsider with its own MAC again"

phase "moatd still running, ruleset still readable"
e2e_alive "$MOATD_PID" || e2e_fail "moatd died"
ns nft list ruleset >"$D/ruleset" || e2e_fail "nft list ruleset failed"
grep -q 'arp saddr ip @node4' "$D/ruleset" || e2e_fail "the gateway rule is not listed"
echo "PASS"
