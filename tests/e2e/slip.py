#!/usr/bin/python3
"""Crafted packets and a frame recorder for tests/e2e/50-slip-through.sh.

  slip.py sniff IFACE FILE     record every frame IFACE receives (not what it sends), one hex
                               line each ("PKTTYPE HEX"), flushed per frame; stdlib only
  slip.py show FILE            one line per recorded frame:
                               "src > dst proto dport frag=OFF marks=M1,M2" (dport "-" when the
                               frame holds no transport header); stdlib only
  slip.py run [--iface IF]     read commands from stdin, one per line, and send each as raw
                               frames out of IF (default eth0) with scapy

Commands of `run` (addresses are literal; SRC may be anybody's: the point is to lie):
  udp DMAC SRC DST DPORT MARK [HOW]   a UDP datagram whose payload repeats MK{MARK}
  tcp DMAC SRC DST DPORT MARK [HOW]   a TCP SYN carrying the same payload
  ping DMAC SRC DST ID COUNT MARK [GAP] [FRAG]
                                      COUNT echo requests, identifier ID, sequence 1..COUNT,
                                      GAP seconds apart; FRAG: "frag" sends each in fragments
  icmperr DMAC SRC DST ISRC IDST ISPORT IDPORT MARK
                                      port unreachable (v4) / unreachable (v6) quoting a UDP
                                      datagram ISRC:ISPORT -> IDST:IDPORT
  arp DMAC SENDER_IP TARGET_IP        ARP reply: SENDER_IP is at my MAC
  garp SENDER_IP                      gratuitous ARP request for SENDER_IP from my MAC
  na DMAC DST TARGET [SRC]            unsolicited neighbour advertisement (override): TARGET
                                      is at my MAC, from my link-local address (or SRC)
  macspoof DMAC SMAC SRC DST DPORT MARK
                                      a UDP datagram in a frame whose source MAC is SMAC
  ra PREFIX                           router advertisement to ff02::1 from my link-local
                                      address: default router, PREFIX/64 on-link and autoconf
  redirect DMAC DST TARGET            ICMPv6 redirect to DST: reach TARGET via me
  sleep SECONDS

HOW, for udp and tcp (fragments carry the marker in their payload, 8-byte aligned):
  -            one packet
  frag         three fragments, in order
  rest:ID      the non-first fragments only (IP ID / fragment ID given, so that a later
               first:ID can complete the datagram)
  first:ID     the first fragment only
  dup:PORT     first fragment (DPORT), then a fragment at offset 0 of the same length whose
               header says PORT and whose payload says MARK-rw, then the last fragment: the
               overlap attack (reassembly keeping the second would turn DPORT into PORT)
  part:PORT    the same, but the rewriting fragment is longer than the first (partial overlap)
  tiny         the first fragment holds only 8 bytes of the transport header
  atomic       IPv6 only: one packet with a fragment header (offset 0, no more fragments)
"""
import os
import re
import socket
import sys

MARK_RE = re.compile(rb"MK\{([A-Za-z0-9.:-]+)\}")


# ---- recorder (stdlib only: starts fast) ------------------------------------------------

def sniff(iface, path):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    with open(path, "a") as f:
        f.write("ready\n")
        f.flush()
        while True:
            d, a = s.recvfrom(65535)
            if a[2] == socket.PACKET_OUTGOING:
                continue
            f.write("%d %s\n" % (a[2], d.hex()))
            f.flush()


def parse_l3(d):
    """(src, dst, proto, fragoff, l4 bytes or None) of an IPv4/IPv6 frame, else None."""
    et = int.from_bytes(d[12:14], "big")
    if et == 0x0800:
        ihl = (d[14] & 15) * 4
        off = int.from_bytes(d[20:22], "big") & 0x1fff
        return (socket.inet_ntop(socket.AF_INET, d[26:30]),
                socket.inet_ntop(socket.AF_INET, d[30:34]), d[23], off * 8,
                d[14 + ihl:] if off == 0 else None)
    if et != 0x86dd:
        return None
    src = socket.inet_ntop(socket.AF_INET6, d[22:38])
    dst = socket.inet_ntop(socket.AF_INET6, d[38:54])
    nh, p, off = d[20], 54, 0
    while nh in (0, 43, 60, 44):
        if nh == 44:
            off = int.from_bytes(d[p + 2:p + 4], "big") & 0xfff8
            nh, p = d[p], p + 8
        else:
            nh, p = d[p], p + (d[p + 1] + 1) * 8
    return src, dst, nh, off, d[p:] if off == 0 else None


def show(path):
    for line in open(path):
        parts = line.split()
        if len(parts) != 2:
            continue
        d = bytes.fromhex(parts[1])
        l3 = parse_l3(d)
        marks = sorted(set(m.decode() for m in MARK_RE.findall(d)))
        if not l3:
            print("l2 ethertype=0x%s marks=%s" % (d[12:14].hex(), ",".join(marks)))
            continue
        src, dst, proto, off, l4 = l3
        dport = "-"
        if l4 is not None and proto in (6, 17) and len(l4) >= 4:
            dport = str(int.from_bytes(l4[2:4], "big"))
        elif l4 is not None and proto in (1, 58) and len(l4) >= 1:
            dport = "type%d" % l4[0]
        print("%s > %s proto=%d dport=%s frag=%d marks=%s" %
              (src, dst, proto, dport, off, ",".join(marks)))


# ---- crafting (scapy) -------------------------------------------------------------------

def load_scapy():
    global S
    import scapy.all as S  # noqa: N812 (imported late: it takes a second)
    S.conf.verb = 0


def is6(a):
    return ":" in a


def payload(mark, n=192):
    m = b"MK{" + mark.encode() + b"}"
    return (m * (n // len(m) + 1))[:n]


def l4_bytes(src, dst, proto, dport, pl):
    """The transport header and payload pl, checksummed for src and dst."""
    ip = S.IPv6(src=src, dst=dst) if is6(src) else S.IP(src=src, dst=dst)
    l4 = (S.UDP(sport=43210, dport=dport) if proto == "udp" else
          S.TCP(sport=43210, dport=dport, flags="S", seq=1000))
    pkt = ip / l4 / pl
    return bytes(pkt[S.UDP if proto == "udp" else S.TCP])


def rewrite(src, dst, proto, port, mark, pl, n):
    """The first n bytes of the datagram an overlap attacker wants reassembled: header says
    port, payload up to n says mark, the rest is pl's, and the checksum is right for it."""
    hl = 8 if proto == "udp" else 20
    return l4_bytes(src, dst, proto, port, payload(mark, n - hl) + pl[n - hl:])[:n]


def fragment(src, dst, nh, data, off, more, fid):
    """One fragment: data at byte offset off (a multiple of 8)."""
    if is6(src):
        return (S.IPv6(src=src, dst=dst, nh=44) /
                S.IPv6ExtHdrFragment(nh=nh, offset=off // 8, m=int(more), id=fid) /
                S.Raw(data))
    return S.IP(src=src, dst=dst, proto=nh, id=fid & 0xffff, flags="MF" if more else 0,
                frag=off // 8) / S.Raw(data)


def frags_of(src, dst, proto, dport, mark, how, fid):
    """The IP packets for one udp/tcp command."""
    nh = 17 if proto == "udp" else 6
    pl = payload(mark)
    data = l4_bytes(src, dst, proto, dport, pl)
    cut = [0, 64, 128, len(data)]
    if how == "tiny":
        cut = [0, 8, 128, len(data)]
    pieces = [(cut[i], data[cut[i]:cut[i + 1]], i < 2) for i in range(3)]
    kind, _, arg = how.partition(":")
    if kind == "-":
        ip = S.IPv6(src=src, dst=dst, nh=nh) if is6(src) else S.IP(src=src, dst=dst, proto=nh)
        return [ip / S.Raw(data)]
    if kind == "atomic":
        return [fragment(src, dst, nh, data, 0, False, fid)]
    if kind in ("rest", "first"):
        fid = int(arg)
        pieces = pieces[1:] if kind == "rest" else pieces[:1]
    out = [fragment(src, dst, nh, p, o, m, fid) for o, p, m in pieces]
    if kind in ("dup", "part"):
        n = 64 if kind == "dup" else 96
        rw = rewrite(src, dst, proto, int(arg), mark + "-rw", pl, n)
        out.insert(1, fragment(src, dst, nh, rw, 0, True, fid))
    return out


class Sender:
    def __init__(self, iface):
        self.iface = iface
        self.mac = S.get_if_hwaddr(iface)
        self.fid = (os.getpid() << 8) & 0xffffff

    def ll6(self):
        """My link-local address, from /proc/net/if_inet6 (scope 0x20)."""
        for line in open("/proc/net/if_inet6"):
            f = line.split()
            if f[5] == self.iface and f[3] == "20":
                return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[0]))
        raise SystemExit("no link-local address on " + self.iface)

    def send(self, dmac, pkts, smac=None):
        S.sendp([S.Ether(src=smac or self.mac, dst=dmac) / p for p in pkts], iface=self.iface)

    def next_id(self):
        self.fid += 1
        return self.fid

    def c_udp(self, dmac, src, dst, dport, mark, how="-"):
        self.send(dmac, frags_of(src, dst, "udp", int(dport), mark, how, self.next_id()))

    def c_tcp(self, dmac, src, dst, dport, mark, how="-"):
        self.send(dmac, frags_of(src, dst, "tcp", int(dport), mark, how, self.next_id()))

    def c_ping(self, dmac, src, dst, ident, count, mark, gap="0.05", frag="-"):
        ident, n = int(ident, 0), 1200 if frag == "frag" else 64
        for seq in range(1, int(count) + 1):
            if is6(src):
                echo = S.ICMPv6EchoRequest(id=ident, seq=seq, data=payload(mark, n))
                p = S.IPv6(src=src, dst=dst) / echo
                if frag == "frag":
                    p = S.IPv6(src=src, dst=dst) / S.IPv6ExtHdrFragment(id=self.next_id()) / echo
                pkts = S.fragment6(p, 600) if frag == "frag" else [p]
            else:
                p = S.IP(src=src, dst=dst, id=self.next_id() & 0xffff) / S.ICMP(
                    id=ident, seq=seq) / payload(mark, n)
                pkts = S.fragment(p, 600) if frag == "frag" else [p]
            self.send(dmac, pkts)
            S.time.sleep(float(gap))

    def c_icmperr(self, dmac, src, dst, isrc, idst, isport, idport, mark):
        inner = payload(mark, 32)
        if is6(src):
            q = S.IPv6(src=isrc, dst=idst) / S.UDP(sport=int(isport), dport=int(idport)) / inner
            p = S.IPv6(src=src, dst=dst) / S.ICMPv6DestUnreach(code=4) / bytes(q)
        else:
            q = S.IP(src=isrc, dst=idst) / S.UDP(sport=int(isport), dport=int(idport)) / inner
            p = S.IP(src=src, dst=dst) / S.ICMP(type=3, code=3) / bytes(q)
        self.send(dmac, [p])

    def c_arp(self, dmac, sender, target):
        self.send(dmac, [S.ARP(op=2, hwsrc=self.mac, psrc=sender, hwdst=dmac, pdst=target)])

    def c_garp(self, sender):
        self.send("ff:ff:ff:ff:ff:ff", [S.ARP(op=1, hwsrc=self.mac, psrc=sender,
                                              hwdst="00:00:00:00:00:00", pdst=sender)])

    def c_na(self, dmac, dst, target, src=None):
        p = (S.IPv6(src=src or self.ll6(), dst=dst, hlim=255) /
             S.ICMPv6ND_NA(tgt=target, R=0, S=int(not dst.startswith("ff")), O=1) /
             S.ICMPv6NDOptDstLLAddr(lladdr=self.mac))
        self.send(dmac, [p])

    def c_macspoof(self, dmac, smac, src, dst, dport, mark):
        self.send(dmac, frags_of(src, dst, "udp", int(dport), mark, "-", 0), smac=smac)

    def c_ra(self, prefix):
        p = (S.IPv6(src=self.ll6(), dst="ff02::1", hlim=255) /
             S.ICMPv6ND_RA(routerlifetime=1800, prf=1) /
             S.ICMPv6NDOptSrcLLAddr(lladdr=self.mac) /
             S.ICMPv6NDOptPrefixInfo(prefix=prefix, prefixlen=64, L=1, A=1,
                                     validlifetime=3600, preferredlifetime=1800) /
             S.ICMPv6NDOptRouteInfo(prefix="::", plen=0, prf=1, rtlifetime=1800))
        self.send("33:33:00:00:00:01", [p])

    def c_redirect(self, dmac, dst, target):
        p = (S.IPv6(src=self.ll6(), dst=dst, hlim=255) /
             S.ICMPv6ND_Redirect(tgt=self.ll6(), dst=target) /
             S.ICMPv6NDOptDstLLAddr(lladdr=self.mac))
        self.send(dmac, [p])

    def c_sleep(self, secs):
        S.time.sleep(float(secs))

    def c_repeat(self, n, gap, cmd, *args):
        for _ in range(int(n)):
            getattr(self, "c_" + cmd)(*args)
            S.time.sleep(float(gap))


def run(argv):
    iface = "eth0"
    if argv[:1] == ["--iface"]:
        iface = argv[1]
    load_scapy()
    sender = Sender(iface)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        fn = getattr(sender, "c_" + words[0], None)
        if not fn:
            raise SystemExit("slip.py: unknown command " + words[0])
        fn(*words[1:])


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "sniff":
        sniff(*argv)
    elif cmd == "show":
        show(*argv)
    elif cmd == "run":
        run(argv)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
