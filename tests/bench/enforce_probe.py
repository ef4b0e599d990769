#!/usr/bin/env python3
"""Probes of the enforcement benchmark (tests/bench/enforce.sh), without a process per step
(a fork+exec costs tens of ms on a loaded node, more than what is measured).

  addrs PREFIX N|I,J,..  in namespace PREFIX-eI (I < N, or those listed): lo and eth0 up,
                        IPv6 off, endpoint I's address /16 on eth0 (setns + rtnetlink)
  events SOCKET PID FILE REAL EXTRA PER COUNT [yaml|json]
                        run in moatd's namespace: COUNT changes of the endpoints file (add,
                        then remove, a replica; each written beside it and renamed over it),
                        one at a time; for each, the time from the rename to the kernel's
                        notification of the ep4 element (NFNLGRP_NFTABLES), then waits for
                        moatd's status to count the apply; also moatd's (PID) CPU time per
                        change, which the machine's load does not inflate as it does wall
                        time. Prints one JSON object.
  events-dir SOCKET PID DIR COUNT
                        the same for moatd --endpoints DIR: COUNT changes of one small file
                        of DIR (add, then remove, a replica), the rest of DIR unchanged
  full SOCKET PID       a full apply (mode monitor, then enforce: a mode change recreates
                        the tables), timed at the control socket. Prints JSON.
  status SOCKET [TENTHS]  moatd's status as JSON, once it answers (waits up to TENTHS/10 s)
  wait SOCKET APPLIES [TENTHS]  waits until status counts more than APPLIES applies
  crr-server PORT       accept, read a byte, answer a byte, close; forever
  crr-client ADDR PORT SECONDS [fin]
                        connect, send, receive, close (RST; with fin, an orderly close that
                        leaves conntrack entries in TIME_WAIT) in a loop; prints "RATE FAILS
                        DONE" (DONE: the connections that got their byte back)
  reach ADDR PORT       "open", "refused" or "timeout" (1 s)
  report RESULTS        the table, from the JSON lines enforce.sh collected
"""
import ctypes
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enforce_gen as gen  # noqa: E402

CLONE_NEWNET = 0x40000000
NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFT_MSG_NEWSETELEM = (10 << 8) | 12
NFT_MSG_DELSETELEM = (10 << 8) | 14
RTM_NEWLINK, RTM_NEWADDR = 16, 20
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400
IFF_UP = 1


def setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) < 0:
        raise OSError(ctypes.get_errno(), "setns " + path)
    os.close(fd)


def rtnl(sock, seq, mtype, flags, body):
    sock.send(struct.pack("=IHHII", 16 + len(body), mtype, NLM_F_REQUEST | NLM_F_ACK | flags,
                          seq, 0) + body)
    reply = sock.recv(65536)
    err = struct.unpack_from("=i", reply, 16)[0]
    if err:
        raise OSError(-err, "rtnetlink %d" % mtype)


def link_up(sock, seq, index):
    rtnl(sock, seq, RTM_NEWLINK, 0, struct.pack("=BxHiII", 0, 0, index, IFF_UP, IFF_UP))


def addr_add(sock, seq, index, addr, plen):
    a = socket.inet_aton(addr)
    attrs = struct.pack("=HH", 8, 2) + a + struct.pack("=HH", 8, 1) + a   # IFA_LOCAL, ADDRESS
    rtnl(sock, seq, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
         struct.pack("=BBBBI", socket.AF_INET, plen, 0, 0, index) + attrs)


def sysctl(path, value):
    with open("/proc/sys/" + path, "w") as f:
        f.write(value)


def cmd_addrs(prefix, which):
    for i in [int(x) for x in which.split(",")] if "," in which else range(int(which)):
        setns("/var/run/netns/%s-e%d" % (prefix, i))
        sysctl("net/ipv6/conf/all/disable_ipv6", "1")
        sysctl("net/ipv6/conf/eth0/disable_ipv6", "1")
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as s:
            link_up(s, 1, socket.if_nametoindex("lo"))
            eth0 = socket.if_nametoindex("eth0")
            link_up(s, 2, eth0)
            addr_add(s, 3, eth0, gen.real_addr(i), 16)


def ctl(path, req, timeout=30):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall((json.dumps(req) + "\n").encode())
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def status(path):
    return ctl(path, {"cmd": "status"})


def wait_applies(path, applies, deadline):
    while time.monotonic() < deadline:
        st = status(path)
        if st["applies"] > applies:
            return st
        time.sleep(0.0005)
    raise TimeoutError("moatd did not count an apply")


def nft_listener():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)       # SO_RCVBUFFORCE
    s.bind((0, 0))
    s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
    return s


def wait_element(s, mtype, addr, deadline):
    """Until a notification of type mtype names set ep4 and carries addr; its arrival time."""
    key = socket.inet_aton(addr)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no notification for %s" % addr)
        s.settimeout(left)
        try:
            buf = s.recv(1 << 20)
        except OSError as e:           # ENOBUFS: notifications lost; keep reading
            if e.errno != 105:
                raise
            continue
        now = time.monotonic()
        off = 0
        while off + 16 <= len(buf):
            ln, t = struct.unpack_from("=IH", buf, off)
            msg = buf[off:off + ln]
            if t == mtype and b"ep4\0" in msg and key in msg:
                return now
            off += (ln + 3) & ~3 if ln else len(buf)


def quantiles(v):
    v = sorted(v)
    q = (lambda p: v[min(len(v) - 1, int(p * len(v)))]) if v else (lambda p: 0)
    return {"count": len(v), "p50_us": int(q(0.5) * 1e6), "p99_us": int(q(0.99) * 1e6),
            "max_us": int(max(v) * 1e6) if v else 0}


def cpu_ms(pid):
    """CPU time of pid's threads, ms: schedstat's nanoseconds, where stat counts whole ticks
    (10 ms, coarser than what one change costs). Threads that ended are not counted: moatd's
    that run long are the loop's and its readers'."""
    ns = 0
    for t in os.listdir("/proc/%s/task" % pid):
        try:
            with open("/proc/%s/task/%s/schedstat" % (pid, t)) as f:
                ns += int(f.read().split()[0])
        except OSError:
            pass    # the thread ended
    return ns / 1e6


def cmd_events(sock, pid, path, real, extra, per, count, fmt="yaml"):
    base = gen.endpoints(int(real), int(extra), int(per))
    tmpdir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), "tmp")
    os.makedirs(tmpdir, exist_ok=True)
    tmp = os.path.join(tmpdir, "endpoints.yaml")
    s = nft_listener()
    st = status(sock)
    outside, applies = [], []
    cpu0 = cpu_ms(pid)
    for i in range(int(count)):
        idx, add = i // 2, i % 2 == 0
        addr = gen.churn_addr(idx)
        churn = [gen.endpoint("churn%d" % idx, idx % gen.APPS, addr)] if add else []
        with open(tmp, "w") as f:
            f.write(gen.endpoints_text(base + churn, fmt))
        t0 = time.monotonic()
        os.rename(tmp, path)
        t1 = wait_element(s, NFT_MSG_NEWSETELEM if add else NFT_MSG_DELSETELEM, addr, t0 + 30)
        st = wait_applies(sock, st["applies"], t0 + 30)
        outside.append(t1 - t0)
        applies.append(st["last_apply"]["ms"])
    cpu = (cpu_ms(pid) - cpu0) / int(count)
    print(json.dumps({"format": fmt, "cpu_ms": round(cpu, 2), "outside": quantiles(outside), "daemon": st["event_to_enforced"],
                      "apply_ms_p50": sorted(applies)[len(applies) // 2],
                      "apply_ms_max": max(applies), "last_apply": st["last_apply"],
                      "endpoints": st["endpoints"], "elements": st["elements"]}))


def cmd_events_dir(sock, pid, d, count):
    path = os.path.join(d, "zz-churn.json")
    tmp = os.path.join(d, ".zz-churn.json")
    s = nft_listener()
    st = status(sock)
    outside, applies = [], []
    cpu0 = cpu_ms(pid)
    for i in range(int(count)):
        idx, add = i // 2, i % 2 == 0
        addr = gen.churn_addr(idx)
        churn = [gen.endpoint("churn%d" % idx, idx % gen.APPS, addr)] if add else []
        with open(tmp, "w") as f:
            f.write(gen.endpoints_text(churn, "json"))
        t0 = time.monotonic()
        os.rename(tmp, path)
        t1 = wait_element(s, NFT_MSG_NEWSETELEM if add else NFT_MSG_DELSETELEM, addr, t0 + 30)
        st = wait_applies(sock, st["applies"], t0 + 30)
        outside.append(t1 - t0)
        applies.append(st["last_apply"]["us"] / 1000)
    cpu = (cpu_ms(pid) - cpu0) / int(count)
    print(json.dumps({"cpu_ms": round(cpu, 3), "outside": quantiles(outside),
                      "daemon": st["event_to_enforced"], "changes": st["changes"],
                      "apply_ms_p50": sorted(applies)[len(applies) // 2],
                      "endpoints": st["endpoints"], "elements": st["elements"]}))


def cmd_full(sock, pid):
    st = status(sock)
    out = {"endpoints": st["endpoints"], "elements": st["elements"]}
    for mode in ("monitor", "enforce"):
        t0, cpu0 = time.monotonic(), cpu_ms(pid)
        r = ctl(sock, {"cmd": "mode", "mode": mode}, 120)
        dt, cpu = time.monotonic() - t0, cpu_ms(pid) - cpu0
        if not r.get("ok"):
            raise RuntimeError(r)
        st = status(sock)
        out[mode] = {"wall_ms": int(dt * 1000), "apply_ms": st["last_apply"]["ms"],
                     "full": st["last_apply"]["full"], "msgs": st["last_apply"]["msgs"],
                     "cpu_ms": int(cpu)}
    print(json.dumps(out))


def cmd_status(sock, tenths="100"):
    deadline = time.monotonic() + int(tenths) / 10
    while True:
        try:
            print(json.dumps(status(sock)))
            return
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def cmd_wait(sock, applies, tenths="600"):
    print(json.dumps(wait_applies(sock, int(applies), time.monotonic() + int(tenths) / 10)))


def cmd_crr_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(1024)
    while True:
        c, _ = s.accept()
        try:
            if c.recv(1):
                c.send(b"y")
        except OSError:
            pass
        c.close()


def cmd_crr_client(addr, port, seconds, close="rst"):
    linger = struct.pack("ii", close == "rst", 0)
    n = fails = 0
    t0 = time.monotonic()
    end = t0 + float(seconds)
    while time.monotonic() < end:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        c.settimeout(1)
        try:
            c.connect((addr, int(port)))
            c.send(b"x")
            if c.recv(1) == b"y":
                n += 1
            else:
                fails += 1
        except OSError:
            fails += 1
        c.close()
    print("%.0f %d %d" % (n / (time.monotonic() - t0), fails, n))


def cmd_reach(addr, port):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(1)
    try:
        c.connect((addr, int(port)))
        print("open")
    except ConnectionRefusedError:
        print("refused")
    except OSError:
        print("timeout")


def ms(us):
    return "%.2f" % (us / 1000)


def mib(kib):
    return "%.1f" % (kib / 1024)


def size(r):
    """endpoints/addresses of a row."""
    return "%d/%d" % (r["endpoints"], r["elements"]["addresses"]) if "elements" in r \
        else "%d/%d" % (r["endpoints"], r["endpoints"])


def report_events(rows):
    print("\nEvent to enforced: an endpoints-file change (add or remove one replica)   "
          "target at 1,000 endpoints: p50 < 5 ms, p99 < 20 ms")
    row = "  %-13s %-9s %-7s %-42s %8s %8s %8s"
    print(row % ("endpts/addrs", "conntrack", "changes", "measured", "p50 ms", "p99 ms",
                 "max ms"))
    for r in rows:
        o, d = r["outside"], r["daemon"]
        head = (size(r), r["conntrack"], o["count"])
        print(row % (head + ("the file in %s" % r.get("format", "yaml").upper(), "", "", "")))
        head = ("", "", "")
        if d["count"] == o["count"]:    # moatd's quantiles cover exactly this phase
            print(row % (head + ("inside moatd (status event_to_enforced)", ms(d["p50_us"]),
                                 ms(d["p99_us"]), ms(d["max_us"]))))
            head = ("", "", "")
        print(row % (head + ("outside (rename -> kernel notification)", ms(o["p50_us"]),
                             ms(o["p99_us"]), ms(o["max_us"]))))
        print(row % ("", "", "", "  compile+apply (status last_apply.ms)",
                     r["apply_ms_p50"], "", r["apply_ms_max"]))
        print(row % ("", "", "", "  moatd CPU time per change (mean)", "%.2f" % r["cpu_ms"],
                     "", ""))


def report_resync(cold, full):
    print("\nFull resync   target at 1,000 endpoints and 1,000 policies: < 1 s")
    row = "  %-13s %-62s %8s"
    print(row % ("endpts/addrs", "measured", "ms"))
    for r in cold:
        print(row % (size(r), "cold start -> status answers (load, compile, full apply)",
                     r["wall_ms"]))
        print(row % ("", "  compile+apply (status last_apply.ms)", r["apply_ms"]))
        print(row % ("", "  moatd CPU time", r["cpu_ms"]))
        if "repairs_after" in r:
            print(row % ("", "  repairs (full re-applies) in the %d s after: count"
                         % r["watch_s"], r["repairs_after"]))
    for r in full:
        for mode in ("monitor", "enforce"):
            m = r[mode]
            print(row % (size(r), "mode %s, a full apply (%s, %d msgs): request -> reply"
                         % (mode, "full" if m["full"] else "NOT full", m["msgs"]), m["wall_ms"]))
            print(row % ("", "  compile+apply (status last_apply.ms)", m["apply_ms"]))
            print(row % ("", "  moatd CPU time", m["cpu_ms"]))


def report_grow(rows):
    print("\nEndpoints file replaced by the next size (rename -> moatd counts the apply)")
    row = "  %-13s %8s %8s %6s %8s %8s %6s %8s"
    print(row % ("endpts/addrs", "wall ms", "apply ms", "full", "added", "deleted", "msgs",
                 "repairs"))
    for r in rows:
        a = r["last_apply"]
        print(row % (size(r), r["wall_ms"], a["ms"], "yes" if a["full"] else "no", a["added"],
                     a["deleted"], a["msgs"], r["repairs"]))


def median(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def report_tput(rows, env):
    print("\nThroughput app99-r0 -> app0-r0 through br0: iperf3 TCP (%d s) and connection rate "
          "(connect, 1 byte each way, close; python, %d s).\n  %d rounds, each beside the same "
          "on a reference bridge with no ruleset; best round shown; ratio = median over rounds "
          "of this / reference.\n  target: Moat >= 0.95, flat over set sizes"
          % (env["seconds"], env["seconds"], env["runs"]))
    row = "  %-16s %-13s %-32s %7s %7s %6s %7s %7s %6s"
    print(row % ("ruleset", "endpts/addrs", "ruleset size", "Gbit/s", "ref", "ratio",
                 "conn/s", "ref", "ratio"))
    for r in rows:
        if "elements" in r:
            e = r["elements"]
            what = "%d allow elements, %d nets" % (e["allow_in"] + e["allow_out"], e["nets"])
            if "tiers" in r:
                what = "+%d tier policies, %d elements" % (
                    r["tiers"], e.get("admin", 0) + e.get("baseline", 0))
        elif "floor" in r:
            what = "ct state established accept"
        elif "rules" in r:
            what = "%d rules (loaded in %.1f s)" % (r["rules"], r["load_ms"] / 1000)
        else:
            what = "none (control)"
        gr = median([a / b for a, b in zip(r["gbit"], r["gbit_ref"])])
        cr = median([a / b for a, b in zip(r["conn"], r["conn_ref"])])
        print(row % (r["label"], size(r), what, "%.2f" % max(r["gbit"]),
                     "%.2f" % max(r["gbit_ref"]), "%.2f" % gr, int(max(r["conn"])),
                     int(max(r["conn_ref"])), "%.2f" % cr))


def report_tiers(rows):
    print("\nCluster-wide policies beside the NetworkPolicies: their apply (compile and batch), "
          "their elements (throughput: moat-tiers above)")
    row = "  %-13s %8s %8s %6s %8s %12s %12s"
    print(row % ("endpts/addrs", "policies", "apply ms", "full", "msgs", "Admin elems",
                 "Base elems"))
    for r in rows:
        a, e = r["last_apply"], r["elements"]
        print(row % (size(r), r["policies"], a["ms"], "yes" if a["full"] else "no", a["msgs"],
                     e.get("admin", 0), e.get("baseline", 0)))


def report_rss(rows):
    print("\nmoatd memory   target at 1,000 endpoints and 1,000 policies: RSS < 30 MiB")
    row = "  %-13s %-36s %10s %10s"
    print(row % ("endpts/addrs", "when", "VmRSS MiB", "VmHWM MiB"))
    for r in rows:
        print(row % (size(r), r["when"], mib(r["VmRSS"]), mib(r["VmHWM"])))


def cmd_report(path):
    rows = [json.loads(line) for line in open(path)]
    kind = lambda k: [r for r in rows if r["kind"] == k]  # noqa: E731
    env, setup = kind("env")[0], kind("setup")
    print("\nMoat enforcement benchmark: %d policies; %d CPUs, load %s at start, kernel %s" % (
        gen.APPS * gen.POLICIES_PER_APP, env["cpus"], env["load"], env["kernel"]))
    for r in setup:
        print("setup of %d endpoint namespaces with a veth each: %.1f s (netns %.1f s, veths "
              "%.1f s, addresses %.1f s)" % (r["n"], r["total_ms"] / 1000, r["netns_ms"] / 1000,
                                             r["veths_ms"] / 1000, r["addrs_ms"] / 1000))
    print("past %s endpoints the sets grow with addresses, %d to an extra endpoint; "
          "endpts/addrs: endpoints/IPv4 addresses in moatd" % (
              setup[0]["n"] if setup else "?", env["per"]))
    report_events(kind("events"))
    report_resync(kind("cold"), kind("full"))
    report_grow(kind("grow"))
    report_tput(kind("tput"), env)
    report_tiers(kind("tiers"))
    when = {"cold": "after cold start", "full": "after two full applies",
            "grow": "after the file was replaced"}
    report_rss([dict(r, when=when[r["kind"]]) for r in rows if r["kind"] in when])


COMMANDS = {"addrs": cmd_addrs, "events": cmd_events, "events-dir": cmd_events_dir, "full": cmd_full, "status": cmd_status,
            "wait": cmd_wait, "crr-server": cmd_crr_server, "crr-client": cmd_crr_client,
            "reach": cmd_reach, "report": cmd_report}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
