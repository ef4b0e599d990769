#!/usr/bin/env python3
"""Traffic for the restart, churn and soak tests; runs inside moat-host containers.

  prober.py serve PORT...          TCP echo server on every PORT (one thread, non-blocking)
  prober.py probe DIR MS TARGET... every MS ms, one connection attempt per target:
      allow:IP:PORT   the policy allows it: it must connect
      deny:IP:PORT    the policy denies it: it must never connect
      stream:IP:PORT  one long-lived connection, a byte every 100 ms, each echo counted
  Stops when DIR/stop exists. DIR/sum.json (rewritten every 0.5 s and at the end) holds the
  counts; DIR/flips.log one line per verdict flip; DIR/soft.log one line per soft failure.

What counts as a verdict flip (the firewall deciding otherwise than the policy):
  - a denied attempt that connects within DENY_WINDOW (1.5 s, so that the SYN retransmitted
    at 1 s is judged too). Nothing but the firewall can make a denied connect succeed, so
    there is no retry and no excuse.
  - an allowed attempt that fails, and whose immediate retry fails too. An attempt fails
    when it does not connect within ALLOW_WINDOW (0.9 s, before the first SYN retransmit),
    is refused, or connects only because its SYN was retransmitted (tcpi_total_retrans > 0):
    the first SYN was lost somewhere. A single failure followed by a successful retry is a
    "soft" failure, counted and logged apart: the prober or the server was starved (the
    accept queue of a busy server drops SYNs) or a packet was lost for reasons of its own;
    a firewall that drops an allowed pair drops the retry as well, since Moat never changes
    its verdict for a pair while the policy and the endpoints stay the same.
  Attempts are non-blocking and judged from the kernel's view of the socket (events are
  handled before deadlines), so a prober that is descheduled does not invent failures.
"""
import json
import os
import selectors
import socket
import struct
import sys
import time

ALLOW_WINDOW = 0.9
DENY_WINDOW = 1.5
STREAM_EVERY = 0.1
TCPI_TOTAL_RETRANS = 100	# offset of tcpi_total_retrans in struct tcp_info


def serve(ports):
    sel = selectors.DefaultSelector()
    for p in ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", p))
        s.listen(4096)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, "listen")
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "listen":
                try:
                    c, _ = s.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, "conn")
                continue
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if d:
                try:
                    s.send(d)
                    continue
                except OSError:
                    pass
            sel.unregister(s)
            s.close()


class Prober:
    def __init__(self, out, every, targets):
        self.out, self.every = out, every
        self.sel = selectors.DefaultSelector()
        self.pairs = []
        self.stream = None
        self.n = {}
        for t in targets:
            kind, ip, port = t.split(":", 2) if t.count(":") == 2 else self.v6(t)
            if kind == "stream":
                self.stream = {"to": (ip, int(port)), "echoes": 0, "sent": 0, "error": "",
                               "max_gap_ms": 0, "last": 0.0, "sock": None, "next": 0.0}
            else:
                self.pairs.append((kind, ip, int(port)))
                self.n["%s:%s:%s" % (kind, ip, port)] = {
                    "attempts": 0, "ok": 0, "soft": 0, "flips": 0}
        self.flips = open(os.path.join(out, "flips.log"), "a", buffering=1)
        self.soft = open(os.path.join(out, "soft.log"), "a", buffering=1)
        self.t0 = time.time()

    @staticmethod
    def v6(t):
        kind, rest = t.split(":", 1)
        ip, port = rest.rsplit(":", 1)
        return kind, ip.strip("[]"), port

    def attempt(self, kind, ip, port, retry=False):
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        now = time.time()
        err = s.connect_ex((ip, port))
        win = ALLOW_WINDOW if kind == "allow" else DENY_WINDOW
        a = {"kind": kind, "ip": ip, "port": port, "t": now, "deadline": now + win,
             "retry": retry, "sock": s}
        if not retry:
            self.stat(a)["attempts"] += 1
        if err not in (0, 115):	# EINPROGRESS
            self.done(a, False, "connect: errno %d" % err)
            return
        self.sel.register(s, selectors.EVENT_WRITE, a)

    def stat(self, a):
        return self.n["%s:%s:%s" % (a["kind"], a["ip"], a["port"])]

    def connected(self, a):
        s = a["sock"]
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return False, "errno %d" % err
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        retrans = struct.unpack_from("I", info, TCPI_TOTAL_RETRANS)[0]
        if retrans:
            return False, "connected after %d SYN retransmits" % retrans
        return True, "connected"

    def done(self, a, ok, why):
        try:
            self.sel.unregister(a["sock"])
        except (KeyError, ValueError):
            pass
        a["sock"].close()
        st = self.stat(a)
        stamp = "%.3f %s %s:%d" % (time.time(), a["kind"], a["ip"], a["port"])
        if a["kind"] == "deny":
            # connected at all, retransmit or not, is a flip
            if why.startswith("connected"):
                st["flips"] += 1
                self.flips.write("%s denied pair connected (%s)\n" % (stamp, why))
            else:
                st["ok"] += 1
            return
        if ok:
            st["soft" if a["retry"] else "ok"] += 1
        elif not a["retry"]:
            self.soft.write("%s allowed attempt failed (%s); retrying\n" % (stamp, why))
            self.attempt(a["kind"], a["ip"], a["port"], retry=True)
        else:
            st["flips"] += 1
            self.flips.write("%s allowed pair failed twice (%s)\n" % (stamp, why))

    def stream_tick(self, now):
        st = self.stream
        if st["error"] or now < st["next"]:
            return
        st["next"] = now + STREAM_EVERY
        try:
            if st["sock"] is None:
                st["sock"] = socket.create_connection(st["to"], timeout=2)
                st["sock"].setblocking(False)
                st["last"] = now
                self.sel.register(st["sock"], selectors.EVENT_READ, "stream")
            st["sock"].send(b"x")
            st["sent"] += 1
        except OSError as e:
            st["error"] = "%.3f send: %s" % (now, e)

    def stream_read(self, now):
        st = self.stream
        try:
            d = st["sock"].recv(4096)
        except BlockingIOError:
            return
        except OSError as e:
            d, st["error"] = b"", "%.3f recv: %s" % (now, e)
        if not d:
            st["error"] = st["error"] or "%.3f closed by peer" % now
            self.sel.unregister(st["sock"])
            return
        st["max_gap_ms"] = max(st["max_gap_ms"], int((now - st["last"]) * 1000))
        st["last"] = now
        st["echoes"] += len(d)

    def summary(self, final=False):
        s = {"pairs": self.n, "seconds": round(time.time() - self.t0, 1), "final": final}
        if self.stream:
            s["stream"] = {k: v for k, v in self.stream.items() if k != "sock"}
            s["stream"]["since_last_echo_ms"] = int((time.time() - self.stream["last"]) * 1000)
        tmp = os.path.join(self.out, "sum.json.tmp")
        with open(tmp, "w") as f:
            json.dump(s, f)
        os.rename(tmp, os.path.join(self.out, "sum.json"))

    def run(self):
        nxt = time.time()
        last_sum = 0.0
        stop = os.path.join(self.out, "stop")
        while True:
            now = time.time()
            if now >= nxt:
                if os.path.exists(stop):
                    break
                for kind, ip, port in self.pairs:
                    self.attempt(kind, ip, port)
                nxt += self.every
                if nxt < now:	# starved: skip the missed ticks, do not burst
                    nxt = now + self.every
            if self.stream:
                self.stream_tick(now)
            timeout = max(0.0, min(nxt, now + STREAM_EVERY) - time.time())
            for key, _ in self.sel.select(timeout):
                if key.data == "stream":
                    self.stream_read(time.time())
                    continue
                ok, why = self.connected(key.data)
                self.done(key.data, ok, why)
            now = time.time()
            for key in list(self.sel.get_map().values()):
                a = key.data
                if a != "stream" and now > a["deadline"]:
                    self.done(a, False, "no answer in %.1f s" % (a["deadline"] - a["t"]))
            if now - last_sum > 0.5:
                self.summary()
                last_sum = now
        # let the attempts in flight finish
        end = time.time() + DENY_WINDOW + ALLOW_WINDOW + 0.2
        while time.time() < end and any(k.data != "stream" for k in self.sel.get_map().values()):
            for key, _ in self.sel.select(0.05):
                if key.data != "stream":
                    ok, why = self.connected(key.data)
                    self.done(key.data, ok, why)
            now = time.time()
            for key in list(self.sel.get_map().values()):
                if key.data != "stream" and now > key.data["deadline"]:
                    self.done(key.data, False, "no answer")
        self.summary(final=True)


def main():
    if sys.argv[1] == "serve":
        serve([int(p) for p in sys.argv[2:]])
    elif sys.argv[1] == "probe":
        Prober(sys.argv[2], int(sys.argv[3]) / 1000.0, sys.argv[4:]).run()
    else:
        sys.exit("usage: prober.py serve PORT... | probe DIR MS TARGET...")


if __name__ == "__main__":
    main()
