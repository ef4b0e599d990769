#!/usr/bin/python3
"""DNS clients and servers for tests/e2e/24-dns-names.sh (stdlib only).

  dnsnames.py serve PORT...               TCP servers on 0.0.0.0 that answer "ok" (foreground)
  dnsnames.py query SERVER NAME [tcp]     the addresses NAME resolves to, one per line
  dnsnames.py connect ADDR PORT           exit 0 when a TCP connection gets "ok" within 2 s
  dnsnames.py loop SERVER N FMT PORT      for i in 1..N: resolve FMT % i, connect at once to
                                          the answer on PORT, once, no retry; prints
                                          "loop: N resolved, K connected" and the failures
"""
import os
import socket
import struct
import sys
import threading


def query_msg(name, qtype=1):
    qid = int.from_bytes(os.urandom(2), "big")
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return qid, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def skip_name(m, at):
    while True:
        n = m[at]
        if n & 0xC0 == 0xC0:
            return at + 2
        if n == 0:
            return at + 1
        at += n + 1


def answers(m, qid):
    hid, flags, qd, an = struct.unpack("!HHHH", m[:8])
    if hid != qid or not flags & 0x8000:
        raise ValueError("not our answer")
    at = 12
    for _ in range(qd):
        at = skip_name(m, at) + 4
    out = []
    for _ in range(an):
        at = skip_name(m, at)
        rtype, _, _, rdlen = struct.unpack("!HHIH", m[at:at + 10])
        at += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntop(socket.AF_INET, m[at:at + 4]))
        at += rdlen
    return out


def query(server, name, tcp=False):
    qid, msg = query_msg(name)
    if tcp:
        with socket.create_connection((server, 53), timeout=3) as s:
            s.sendall(struct.pack("!H", len(msg)) + msg)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                d = s.recv(65535)
                if not d:
                    raise ValueError("closed")
                buf += d
            return answers(buf[2:], qid)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(msg, (server, 53))
        return answers(s.recv(65535), qid)


def connect(addr, port, timeout=2.0):
    try:
        with socket.create_connection((addr, int(port)), timeout=timeout) as s:
            return s.recv(16) == b"ok"
    except OSError:
        return False


def serve(ports):
    def run(s):
        while True:
            c, _ = s.accept()
            c.sendall(b"ok")
            c.close()
    for p in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(p)))
        s.listen(128)
        threading.Thread(target=run, args=(s,), daemon=True).start()
    threading.Event().wait()


def loop(server, n, fmt, port):
    bad, ok = [], 0
    for i in range(1, int(n) + 1):
        name = fmt % i
        addrs = query(server, name)
        if addrs and connect(addrs[0], port):
            ok += 1
        else:
            bad.append(f"  {name} -> {addrs}: the first connection failed")
    print(f"loop: {n} resolved, {ok} connected at the first try")
    print("\n".join(bad[:10]))
    return 0 if not bad else 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args)
    elif cmd == "query":
        print("\n".join(query(args[0], args[1], len(args) > 2 and args[2] == "tcp")))
    elif cmd == "connect":
        return 0 if connect(args[0], args[1]) else 1
    elif cmd == "loop":
        return loop(*args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
