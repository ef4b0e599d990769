#!/usr/bin/env python3
"""DNS load for tests/bench/dns.sh (stdlib only), from inside an endpoint's namespace.

  dns_bench.py rtt SERVER FMT N       N queries one after the other for FMT % i (i from 1):
                                      prints {"n", "lost", "failed" (not NOERROR), "p50_us", "p99_us", "max_us"}
  dns_bench.py rate SERVER FMT N S    N queries (FMT % i) kept S in flight on one socket:
                                      prints {"n", "answered", "seconds", "per_s"}
"""
import json
import os
import select
import socket
import struct
import sys
import time


def query(qid, name):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else 0


def rtt(server, fmt, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.connect((server, 53))
    got, lost, failed = [], 0, 0
    for i in range(1, n + 1):
        qid = i & 0xffff
        t0 = time.perf_counter()
        s.send(query(qid, fmt % i))
        try:
            r = s.recv(4096)
            while struct.unpack("!H", r[:2])[0] != qid:
                r = s.recv(4096)
            failed += (r[3] & 0xf) != 0
            got.append((time.perf_counter() - t0) * 1e6)
        except OSError:
            lost += 1
    print(json.dumps({"n": n, "lost": lost, "failed": failed, "p50_us": int(quantile(got, .5)),
                      "p99_us": int(quantile(got, .99)), "max_us": int(max(got or [0]))}))


def rate(server, fmt, n, inflight):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.connect((server, 53))
    s.setblocking(False)
    sent = answered = given_up = 0
    t0 = last = time.perf_counter()
    while answered + given_up < n and time.perf_counter() - last < 2:
        while sent < n and sent - answered - given_up < inflight:
            sent += 1
            s.send(query(sent & 0xffff, fmt % sent))
        if select.select([s], [], [], 0.2)[0]:
            try:
                while True:
                    s.recv(4096)
                    answered += 1
                    last = time.perf_counter()
            except BlockingIOError:
                pass
        else:				# lost ones: keep the window moving
            given_up = sent - answered
    secs = last - t0
    print(json.dumps({"n": n, "answered": answered, "seconds": round(secs, 3),
                      "per_s": int(answered / secs) if secs else 0}))


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "rtt":
        rtt(a[0], a[1], int(a[2]))
    elif cmd == "rate":
        rate(a[0], a[1], int(a[2]), int(a[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
