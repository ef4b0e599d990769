#!/usr/bin/env python3
"""Load generator and probes of the cluster benchmark (tests/bench/cluster.sh). Runs in the
bench's namespace, where etcd listens on 127.0.0.1:2379 and moatd programs nftables. Speaks
etcd's v3 JSON gateway with urllib, as moatd does with libcurl.

  load URL FIRST NODES PER    simulated nodes sim<FIRST>..sim<FIRST+NODES-1>: each a record
                              (its subnet 10.<128+i/256>.<i%256>.0/24), a heartbeat and PER
                              endpoints (app=app<j%20>), in transactions of 128 puts
  cold SOCKET N PIDFILE MOATD ARGS...
                              start moatd (its pid in PIDFILE) and time until it enforces N
                              endpoints of other nodes (its first apply, with all of them)
  probe URL SOCKET PID COUNT  COUNT changes of one endpoint of sim0 (put, then delete), one at
                              a time: the time from the gateway's answer to the kernel's
                              notification of the ep4 element, and moatd's CPU per change
  rss PID                     VmRSS and VmHWM in MiB
Prints one JSON object per command.
"""
import base64
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enforce_probe as ep  # noqa: E402

PREFIX = "/moat/v1/"
APPS = 20


def b64(s):
    return base64.b64encode(s.encode()).decode()


def post(url, path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def subnet(i):
    return "10.%d.%d" % (128 + i // 256, i % 256)


def endpoint(i, j, addr=None):
    name = "e%d" % j
    return name, json.dumps({"name": name, "namespace": "default",
                             "labels": {"app": "app%d" % (j % APPS), "node": "sim%d" % i},
                             "ips": [addr or "%s.%d" % (subnet(i), j + 1)],
                             "ports": {"http": "8080/tcp"}})


def txn(url, kvs):
    for k in range(0, len(kvs), 128):
        ops = [{"request_put": {"key": b64(key), "value": b64(val)}} for key, val in kvs[k:k + 128]]
        post(url, "/v3/kv/txn", {"success": ops})


def cmd_load(url, first, nodes, per):
    t0 = time.monotonic()
    for i in range(int(first), int(first) + int(nodes)):
        node = "sim%d" % i
        kvs = [(PREFIX + "nodes/" + node, json.dumps({"node": node, "host": "h-" + node,
                                                       "subnets": [subnet(i) + ".0/24"]})),
               (PREFIX + "alive/" + node, json.dumps({"host": "h-" + node, "lease": "1",
                                                       "ttl": 20, "heard": 0}))]
        for j in range(int(per)):
            name, val = endpoint(i, j)
            kvs.append((PREFIX + "endpoints/%s/default/%s" % (node, name), val))
        txn(url, kvs)
    print(json.dumps({"nodes": int(nodes), "endpoints": int(nodes) * int(per),
                      "load_s": round(time.monotonic() - t0, 2)}))


def cmd_cold(sock, n, pidfile, *argv):
    import subprocess
    t0 = time.monotonic()
    # its output to a file: a pipe held open would keep the caller's $(...) waiting
    with open(pidfile + ".log", "a") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    with open(pidfile, "w") as f:
        f.write(str(p.pid))
    while time.monotonic() - t0 < 120:
        try:
            st = ep.status(sock)
            if st["applies"] >= 1 and st["cluster"]["remote_endpoints"] >= int(n):
                print(json.dumps({"cold_ms": int((time.monotonic() - t0) * 1000),
                                  "remote_endpoints": st["cluster"]["remote_endpoints"],
                                  "elements": st["elements"], "last_apply": st["last_apply"]}))
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    raise TimeoutError("moatd did not enforce %s remote endpoints" % n)


def cmd_probe(url, sock, pid, count):
    s = ep.nft_listener()
    addr = subnet(0) + ".250"
    key = PREFIX + "endpoints/sim0/default/probe"
    puts, dels = [], []
    cpu0 = ep.cpu_ms(pid)
    for i in range(int(count)):
        add = i % 2 == 0
        t0 = time.monotonic()
        if add:
            post(url, "/v3/kv/put", {"key": b64(key), "value": b64(endpoint(0, 249, addr)[1]
                                                                   .replace('"e249"', '"probe"'))})
        else:
            post(url, "/v3/kv/deleterange", {"key": b64(key)})
        t1 = ep.wait_element(s, ep.NFT_MSG_NEWSETELEM if add else ep.NFT_MSG_DELSETELEM, addr,
                             t0 + 30)
        (puts if add else dels).append(t1 - t0)
    cpu = (ep.cpu_ms(pid) - cpu0) / int(count)
    st = ep.status(sock)
    print(json.dumps({"remote_endpoints": st["cluster"]["remote_endpoints"],
                      "put": ep.quantiles(puts), "delete": ep.quantiles(dels),
                      "all": ep.quantiles(puts + dels), "cpu_ms": round(cpu, 3),
                      "daemon": st["event_to_enforced"], "changes": st["changes"]}))


def cmd_rss(pid):
    with open("/proc/%s/status" % pid) as f:
        v = dict(line.split(":", 1) for line in f if ":" in line)
    print(json.dumps({"rss_mib": round(int(v["VmRSS"].split()[0]) / 1024, 1),
                      "hwm_mib": round(int(v["VmHWM"].split()[0]) / 1024, 1)}))


if __name__ == "__main__":
    cmds = {"load": cmd_load, "cold": cmd_cold, "probe": cmd_probe, "rss": cmd_rss}
    cmds[sys.argv[1]](*sys.argv[2:])
