#!/usr/bin/python3
"""Real packets for tests/e2e/20-nft-backend.sh (stdlib only, no scapy).

Every command names the network namespace it works in (/var/run/netns/NETNS); the thread that
does the work enters it (setns moves only the calling thread), so one process serves, probes
and crafts in every namespace and Python starts once per test, not once per check.

  packets.py agent                        commands on stdin, one per line; after each, its
                                          output then "done RC"
  serve NETNS DIR NAME                    TCP echo on TCP_PORTS, UDP echo on UDP_PORTS (v4+v6),
                                          UDP 9999 appends what it gets to DIR/sink-NAME;
                                          DIR/ready-NAME once listening
  probe NETNS TIMEOUT T...                T = PROTO,ADDR,PORT: "T ok|fail" per target, all at once
                                          (PROTO icmp: an echo request, PORT ignored)
  matrix MOAT POL EPS MAP PORTS [ARGS]    real reachability between every pair of endpoints of
                                          EPS, both families, against `moat policy matrix ARGS`;
                                          MAP lines "ns/name NETNS V4 V6" (V6 "-": IPv4 only),
                                          PORTS "80/tcp,53/udp,icmp" (sctp is skipped: this
                                          kernel has none)
  craft NETNS udp DSTMAC SRC DST PORT DATA [SRCMAC]   a UDP frame with any source address
                                          (and source MAC: eth0's by default)
  craft NETNS arp SENDER_IP TARGET_IP        a broadcast who-has claiming SENDER_IP
  craft NETNS ra PREFIX                      a router advertisement offering PREFIX/64
  stream NETNS ADDR PORT LOG              a TCP stream in the background: one echo every 0.1 s,
                                          a line per echo in LOG, "error ..." and stop on the
                                          first failure (or after 60 s)
  nftnorm IN OUT                          `nft list` text with counters zeroed, meters emptied,
                                          the sets and chains of each table sorted, set
                                          elements sorted
"""
import contextlib
import ctypes
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

TCP_PORTS = (53, 80, 81, 7999, 8000, 8080, 8100, 8101, 9000)
UDP_PORTS = (53, 80, 5000)
SINK_PORT = 9999
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def enter(netns):
    """Moves the calling thread (only) into netns: the sockets it makes live there."""
    fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), f"setns {netns}")
    finally:
        os.close(fd)


def in_thread(netns, fn, *args, wait=True):
    """Runs fn(*args) in a thread inside netns; returns its result (or raises) when wait."""
    res = {}

    def run():
        try:
            enter(netns)
            res["v"] = fn(*args)
        except BaseException as e:	# noqa: B036 - handed to the caller
            res["e"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    if not wait:
        return None
    t.join()
    if "e" in res:
        raise res["e"]
    return res.get("v")


# ---- servers ----

def dual(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    return s


def tcp_echo(s):
    def echo(c):
        with c:
            while True:
                d = c.recv(65535)
                if not d:
                    return
                c.sendall(d)
    while True:
        threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()


def udp_echo(s, sink=None):
    while True:
        d, a = s.recvfrom(65535)
        if sink:
            with open(sink, "ab") as f:
                f.write(d + b"\n")
        else:
            s.sendto(d, a)


def listen_all(d, name):
    socks = []
    for p in TCP_PORTS:
        s = dual(socket.SOCK_STREAM, p)
        s.listen(128)
        socks.append((tcp_echo, (s,)))
    socks += [(udp_echo, (dual(socket.SOCK_DGRAM, p),)) for p in UDP_PORTS]
    socks.append((udp_echo, (dual(socket.SOCK_DGRAM, SINK_PORT), f"{d}/sink-{name}")))
    return socks


def cmd_serve(argv):
    netns, d, name = argv
    # Sockets are made in netns; the threads that serve them may live anywhere.
    for fn, args in in_thread(netns, listen_all, d, name):
        threading.Thread(target=fn, args=args, daemon=True).start()
    open(f"{d}/ready-{name}", "w").close()


# ---- probes ----

def ping_one(fam, addr, timeout):
    """One ICMP echo request; True when its reply (our id and token) comes back."""
    v6 = fam == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    tok, ident = os.urandom(8), int.from_bytes(os.urandom(2), "big")
    hdr = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, 1)
    with socket.socket(fam, socket.SOCK_RAW, proto) as s:
        s.settimeout(timeout)
        # the kernel sums ICMPv6 itself (it needs the pseudo-header); ICMP is ours to sum
        pkt = hdr + tok if v6 else hdr[:2] + struct.pack("!H", csum(hdr + tok)) + hdr[4:] + tok
        s.sendto(pkt, (addr, 0))
        end = time.time() + timeout
        while time.time() < end:
            try:
                d = s.recv(2048)
            except OSError:
                return False
            icmp = d if v6 else d[(d[0] & 15) * 4:]
            if icmp[0] == (129 if v6 else 0) and icmp[4:6] == hdr[4:6] and icmp[8:16] == tok:
                return True
    return False


def probe_one(netns, proto, addr, port, timeout):
    enter(netns)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    if proto == "icmp":
        return ping_one(fam, addr, timeout)
    tok = os.urandom(8).hex().encode()
    s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        s.sendall(tok)
        return s.recv(65535) == tok
    except OSError:
        return False
    finally:
        s.close()


def probe_all(probes, timeout):
    """probes: (netns, proto, addr, port) tuples; returns {probe: reached}, all probed at once."""
    res = {}

    def run(p):
        res[p] = probe_one(*p, timeout)
    ts = [threading.Thread(target=run, args=(p,), daemon=True) for p in probes]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def cmd_probe(argv):
    netns, timeout, targets = argv[0], float(argv[1]), argv[2:]
    probes = [(netns, t.split(",")[0], t.split(",")[1], int(t.split(",")[2])) for t in targets]
    res = probe_all(probes, timeout)
    for t, p in zip(targets, probes):
        print(t, "ok" if res[p] else "fail")


def cmd_matrix(argv):
    moat, pol, eps, mapf, ports = argv[:5]
    ports = ports.split(",")
    args = [moat, "policy", "matrix", "-p", pol, "-e", eps, "-o", "json"] + argv[5:]
    for p in ports:
        args += ["--port", p]
    m = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    want = {(v["from"], v["to"], v["port"]): v["verdict"] for v in m["verdicts"]}
    where = {}
    for line in open(mapf):
        name, ns, v4, v6 = line.split()
        where[name] = (ns, v4, v6)
    names = sorted({f for f, _, _ in want})
    missing = [n for n in names if n not in where]
    if missing:
        sys.exit(f"matrix: no namespace for {missing}")
    t0 = time.time()
    probes = {}
    for src in names:
        for dst in names:
            for port in ports if dst != src else ():	# self never leaves its namespace
                num, proto = port.split("/") if "/" in port else ("0", port)
                for fam, a in (("v4", where[dst][1]), ("v6", where[dst][2])):
                    if a != "-" and proto != "sctp":
                        probes[(src, dst, port, fam)] = (where[src][0], proto, a, int(num))
    got = probe_all(list(probes.values()), 1.0)
    # A pass that moat denies is never a fluke; a drop that it allows may be a busy machine.
    again = [p for k, p in probes.items() if not got[p] and want[k[:3]] != "deny"]
    got.update(probe_all(again, 3.0))
    bad, allowed = [], 0
    for k, p in sorted(probes.items()):
        verdict, ok = want[k[:3]], got[p]
        allowed += ok
        if ok != (verdict != "deny"):
            bad.append(f"  {k[0]} -> {k[1]} {k[2]} {k[3]}: moat says {verdict}, packets "
                       f"{'pass' if ok else 'are dropped'}")
    print(f"matrix: {len(probes)} probes over {len(names)} endpoints, {allowed} passed, "
          f"{len(probes) - allowed} dropped, {len(bad)} disagree with moat policy matrix "
          f"({len(again)} retried, {time.time() - t0:.1f}s)")
    for b in bad:
        print(b)
    return 1 if bad else 0


# ---- raw frames ----

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def mac(s):
    return bytes.fromhex(s.replace(":", ""))


def ip4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                    socket.inet_pton(socket.AF_INET, src), socket.inet_pton(socket.AF_INET, dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ip6(src, dst, nh, payload, hlim=64):
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, hlim) + s + d + payload


def l4sum6(src, dst, nh, seg):
    pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
              struct.pack("!IxxxB", len(seg), nh))
    return csum(pseudo + seg)


def udp(src, dst, dport, data, v6):
    seg = struct.pack("!HHHH", 40000, dport, 8 + len(data), 0) + data
    if v6:	# mandatory in IPv6
        seg = seg[:6] + struct.pack("!H", l4sum6(src, dst, 17, seg) or 0xffff) + seg[8:]
    return seg


def eth0():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    return s


def own_mac():
    """eth0's address in this thread's namespace (/sys may show another namespace's)."""
    with eth0() as s:
        return s.getsockname()[4]


def send(dst, ethertype, payload, src=None):
    with eth0() as s:
        s.send(dst + (src or own_mac()) + struct.pack("!H", ethertype) + payload)


def craft_udp(dmac, src, dst, port, data, smac=None):
    v6 = ":" in src
    seg = udp(src, dst, int(port), data.encode(), v6)
    send(mac(dmac), 0x86dd if v6 else 0x0800, ip6(src, dst, 17, seg) if v6 else
         ip4(src, dst, 17, seg), mac(smac) if smac else None)


def craft_arp(sip, tip):
    arp = (struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + own_mac() +
           socket.inet_aton(sip) + b"\0" * 6 + socket.inet_aton(tip))
    send(b"\xff" * 6, 0x0806, arp)


def craft_ra(prefix):
    """Router lifetime 0 (no default route), one prefix: autonomous, on-link, /64."""
    src, dst = "fe80::badc:afe", "ff02::1"
    opts = struct.pack("!BB", 1, 1) + own_mac()
    opts += struct.pack("!BBBBIII", 3, 4, 64, 0xc0, 3600, 1800, 0)
    opts += socket.inet_pton(socket.AF_INET6, prefix)
    ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 0, 0, 0) + opts
    ra = ra[:2] + struct.pack("!H", l4sum6(src, dst, 58, ra)) + ra[4:]
    send(mac("33:33:00:00:00:01"), 0x86dd, ip6(src, dst, 58, ra, hlim=255))


def cmd_craft(argv):
    kinds = {"udp": craft_udp, "arp": craft_arp, "ra": craft_ra}
    in_thread(argv[0], kinds[argv[1]], *argv[2:])


# ---- stream ----

def stream(addr, port, log):
    with open(log, "a", buffering=1) as f:
        try:
            s = socket.create_connection((addr, int(port)), timeout=2)
            s.settimeout(1)
        except OSError as e:
            f.write(f"error {e}\n")
            return
        end, i = time.time() + 60, 0
        while time.time() < end:
            tok = f"{i}\n".encode()
            try:
                s.sendall(tok)
                if s.recv(64) != tok:
                    f.write("error bad echo\n")
                    return
            except OSError as e:
                f.write(f"error {e}\n")
                return
            f.write(f"echo {i}\n")
            i += 1
            time.sleep(0.1)


def cmd_stream(argv):
    in_thread(argv[0], stream, *argv[1:], wait=False)


# ---- nft list text ----

def sorted_elements(m):
    elems = m.group(1).replace("\n", " ").split(", ")
    return "elements = { " + ", ".join(sorted(e.strip() for e in elems)) + " }"


def cmd_nftnorm(argv):
    """What is left is what the kernel holds, whatever order it was built in."""
    src, dst = argv
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", open(src).read())
    # named counters hold traffic; meters (the drop log's buckets) fill from it
    text = re.sub(r"(?m)^(\s*)packets \d+ bytes \d+$", r"\1packets bytes", text)
    text = re.sub(r"\n\s*elements = \{[^}]*limit rate[^}]*\}", "", text)
    text = re.sub(r"elements = \{([^}]*)\}", sorted_elements, text)
    out, block, blocks = [], [], []
    for line in text.splitlines():
        if line.startswith("table "):
            out.append(line)
        elif line == "}":
            out += sorted(blocks) + [line]
            blocks = []
        elif line.startswith("\t") and not line.startswith("\t\t") and line.endswith("{"):
            block = [line]
        elif line == "\t}":
            blocks.append("\n".join(block + [line]))
        elif line.strip():
            block.append(line)
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


COMMANDS = {"serve": cmd_serve, "probe": cmd_probe, "matrix": cmd_matrix, "craft": cmd_craft,
            "stream": cmd_stream, "nftnorm": cmd_nftnorm}


def run(argv):
    """One command; returns its exit status and what it printed."""
    out, rc = io.StringIO(), 0
    try:
        with contextlib.redirect_stdout(out):
            rc = COMMANDS[argv[0]](argv[1:]) or 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (print(e.code, file=out) or 1)
    except Exception as e:	# noqa: BLE001 - reported to the script
        print(f"error {argv[0]}: {e!r}", file=out)
        rc = 1
    return rc, out.getvalue()


def agent():
    for line in sys.stdin:
        if line.split():
            rc, out = run(line.split())
            sys.stdout.write(f"{out}done {rc}\n")
            sys.stdout.flush()
    os._exit(0)	# servers and streams are daemon threads: they end here


if __name__ == "__main__":
    if sys.argv[1:] == ["agent"]:
        agent()
    rc, out = run(sys.argv[1:])
    sys.stdout.write(out)
    if sys.argv[1] in ("serve", "stream") and not rc:
        threading.Event().wait()
    sys.exit(rc)
