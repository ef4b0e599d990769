"""A generated node of 50 services and 300 flows for the web UI's scale test (81-web-scale.sh).

    web_scale.py gen DIR         endpoints.yaml, policies/, edges.json (seeded: the same every run)
    web_scale.py send DIR PHASE  in the client namespace: one TCP connection attempt per edge of
                                 PHASE (1: the 300; 2: a 51st service and its edges)

Service i has 10.89.1.(10+i) on the client side (its connections start there) and
10.89.2.(10+i) on the server side (connections to it end there), one endpoint with both.
Four tiers (front -> api -> worker/data, api -> data); data is isolated (ingress from api and
worker only: front's and the outsider's attempts are denied); worker is isolated in monitor
mode (from api only: front's attempts pass as violations).
"""
import json
import os
import random
import socket
import sys
import time

NAMES = {
    "front": ["web", "cdn-edge", "admin-ui", "mobile-gw", "partner-gw", "docs", "status-page",
              "checkout-ui"],
    "api": ["orders", "catalog", "cart", "users", "auth", "search", "pricing", "reviews",
            "inventory", "shipping", "payments", "coupons", "notify-api", "reports"],
    "worker": ["mailer", "indexer", "thumbnailer", "billing-run", "exporter", "scheduler",
               "fraud-check", "recommender", "etl", "audit-log", "webhooks", "sms", "backup",
               "cleanup"],
    "data": ["orders-db", "catalog-db", "users-db", "redis-cache", "redis-session", "kafka",
             "search-es", "payments-db", "analytics-db", "object-store", "queue", "ledger-db",
             "geo-db", "config-store"],
}
NAMESPACES = {"front": "shop", "api": "shop", "worker": "batch", "data": "data"}
PORTS = {"api": [8080, 9000], "worker": [7000], "data": [5432, 6379, 9092, 9200]}
OUTSIDER = "10.89.1.250"	# no endpoint: an external address


def services():
    out = []
    for tier, names in NAMES.items():
        for name in names:
            out.append({"name": name, "tier": tier, "ns": NAMESPACES[tier]})
    for i, s in enumerate(out):
        s["c"], s["s"] = f"10.89.1.{10 + i}", f"10.89.2.{10 + i}"
    return out


def edges(svcs):
    rnd = random.Random(17)
    by = {t: [s for s in svcs if s["tier"] == t] for t in NAMES}
    plan = [("front", "api", 70), ("api", "api", 40), ("api", "worker", 50), ("api", "data", 80),
            ("worker", "data", 50), ("front", "data", 4), ("front", "worker", 6)]
    seen, out = set(), []
    for a, b, n in plan:
        while n:
            x, y = rnd.choice(by[a]), rnd.choice(by[b])
            port = rnd.choice(PORTS[b])
            k = (x["name"], y["name"], port)
            if x is y or k in seen:
                continue
            seen.add(k)
            out.append({"from": x["c"], "to": y["s"], "port": port})
            n -= 1
    for y in by["data"][:2]:	# the outsider tries two databases
        out.append({"from": OUTSIDER, "to": y["s"], "port": PORTS["data"][0]})
    return out


def endpoint_line(s):
    return (f"  - {{name: {s['name']}, namespace: {s['ns']}, labels: {{app: {s['name']}, "
            f"tier: {s['tier']}}}, ips: [{s['c']}, {s['s']}], ifaces: [vc, vs]}}\n")


POLICIES = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: data-from-backends, namespace: data}
spec:
  podSelector: {matchLabels: {tier: data}}
  ingress:
    - from:
        - namespaceSelector: {}
          podSelector: {matchExpressions: [{key: tier, operator: In, values: [api, worker]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: worker-from-api
  namespace: batch
  annotations: {moat.io/mode: monitor}
spec:
  podSelector: {matchLabels: {tier: worker}}
  ingress:
    - from: [{namespaceSelector: {}, podSelector: {matchLabels: {tier: api}}}]
"""


def gen(d):
    svcs = services()
    extra = {"name": "ledger-sync", "tier": "worker", "ns": "batch", "c": "10.89.1.200",
             "s": "10.89.2.200"}
    os.makedirs(os.path.join(d, "policies"), exist_ok=True)
    with open(os.path.join(d, "endpoints.yaml"), "w") as f:
        f.write("endpoints:\n" + "".join(endpoint_line(s) for s in svcs))
    with open(os.path.join(d, "endpoints2.yaml"), "w") as f:
        f.write("endpoints:\n" + "".join(endpoint_line(s) for s in svcs + [extra]))
    with open(os.path.join(d, "policies", "scale.yaml"), "w") as f:
        f.write(POLICIES)
    by = {s["name"]: s for s in svcs}
    phase2 = [{"from": by["payments"]["c"], "to": extra["s"], "port": 7000},
              {"from": extra["c"], "to": by["ledger-db"]["s"], "port": 5432},
              {"from": by["orders"]["c"], "to": by["ledger-db"]["s"], "port": 5432}]
    with open(os.path.join(d, "edges.json"), "w") as f:
        json.dump({"1": edges(svcs), "2": phase2,
                   "addresses": sorted({s["c"] for s in svcs} | {OUTSIDER, extra["c"]})}, f)


def send(d, phase):
    socks = []
    for e in json.load(open(os.path.join(d, "edges.json")))[phase]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((e["from"], 0))
        try:
            s.connect((e["to"], e["port"]))
        except BlockingIOError:
            pass
        socks.append(s)
    time.sleep(0.5)	# the SYNs are out (and logged); the answers do not matter
    for s in socks:
        s.close()


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    else:
        send(sys.argv[2], sys.argv[3])
