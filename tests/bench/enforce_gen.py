#!/usr/bin/env python3
"""The cluster of the enforcement benchmark (tests/bench/enforce.sh), as files.

APPS apps x replicas, app K in namespace benchK%10. Endpoint i (i < REAL) is real: replica
i // APPS of app i % APPS, address 10.64.0.0/16, interface v<i> (its veth in the bench
namespace) whose other end has MAC 02:6d:00:00:HH:LL (i), known as a Docker container's is.
EXTRA more addresses (10.65.0.0 up), PER to an endpoint with no interface, grow the sets
without costing a namespace each. PER > 1 because the endpoints file cannot list 100,000
endpoints: it is held to the policy files' limits (4 MiB, 1,000,000 YAML nodes).

Policies: POLICIES_PER_APP per app; policy (K, j) isolates app K both ways, lets app K-1-j in
and app K+1+j out, each on 5201/tcp (iperf3) and 8000+j/tcp; so the pair K -> K+1+j is
allowed on those ports by both sides. Policy (K, 9) also allows ipBlock rules: ingress from
172.16.0.0/12 except 172.16.K.0/24 and egress to 192.168.K.0/24, on 443/tcp.

naive: the same policy as a naive iptables ruleset, one rule per allowed (source address,
destination address, port), in the order of the source app, after an ESTABLISHED rule and
before a final DROP, as iptables-restore input.

Usage: enforce_gen.py policies DIR
       enforce_gen.py endpoints FILE REAL EXTRA PER [INDEX,INDEX,...]   (only those real ones;
                                                                         JSON if FILE is *.json)
       enforce_gen.py endpoints-dir DIR N PER_FILE   (N endpoints of one address, no interface,
                                                      in JSON files of PER_FILE each)
       enforce_gen.py naive FILE REAL [INDEX,...]
       enforce_gen.py tiers FILE N      (N Admin and N Baseline ClusterNetworkPolicies, every
                                         endpoint their subject: tiers_doc)
"""
import json
import os
import sys

APPS = 100
POLICIES_PER_APP = 10
NSS = 10
TIERS = ("web", "api", "db")


def real_addr(i):
    return "10.64.%d.%d" % (i // 250, i % 250 + 1)


def extra_addr(i):
    return "10.%d.%d.%d" % (65 + i // 65536, i // 256 % 256, i % 256)


def real_mac(i):
    """Dashes, not colons: a plain scalar in a YAML flow sequence (enforce.sh: bridge_ns)."""
    return "02-6d-00-00-%02x-%02x" % (i >> 8, i & 255)


def churn_addr(i):
    return "10.63.%d.%d" % (i // 250, i % 250 + 1)


def app_of(i):
    return i % APPS


def ns_of(app):
    return "bench%d" % (app % NSS)


def endpoint(name, app, addrs, iface=None, mac=None):
    """One endpoint as the file lists it; addrs: one address or a list."""
    e = {"name": name, "namespace": ns_of(app), "labels": {"app": "app%d" % app,
         "tier": TIERS[app % 3]}, "ips": addrs if isinstance(addrs, list) else [addrs],
         "ports": {"http": "8080/tcp"}}
    if iface:
        e["ifaces"] = [iface]
    if mac:
        e["macs"] = [mac]
    return e


def endpoints(real, extra, per=1, only=None):
    """The real endpoints (or those listed), then the extra addresses, PER to an endpoint."""
    out = [endpoint("app%d-r%d" % (app_of(i), i // APPS), app_of(i), real_addr(i), "v%d" % i,
                    real_mac(i))
           for i in (only if only is not None else range(real))]
    for k in range((extra + per - 1) // per):
        addrs = [extra_addr(i) for i in range(k * per, min(extra, (k + 1) * per))]
        out.append(endpoint("app%d-x%d" % (app_of(k), k // APPS), app_of(k), addrs))
    return out


def flow(v):
    """v in YAML flow style (every string here is a plain scalar)."""
    if isinstance(v, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, flow(x)) for k, x in v.items())
    if isinstance(v, list):
        return "[%s]" % ", ".join(flow(x) for x in v)
    return v


def endpoints_text(eps, fmt="yaml"):
    """The endpoints file, one endpoint a line: YAML in flow style, or JSON."""
    nss = {"bench%d" % n: {"team": "t%d" % (n % 3)} for n in range(NSS)}
    # the bridge's subnet and the pool new replicas take addresses from: an address there
    # that no endpoint has fails closed, as on a Docker network
    subnets = ["10.63.0.0/16", "10.64.0.0/16"]
    if fmt == "json":
        return '{"namespaces": %s,\n "subnets": %s,\n "endpoints": [\n  %s\n]}\n' % (
            json.dumps(nss), json.dumps(subnets), ",\n  ".join(json.dumps(e) for e in eps))
    return "".join(["namespaces:\n"] + ["  %s: %s\n" % (n, flow(l)) for n, l in nss.items()] +
                   ["subnets: %s\n" % flow(subnets), "endpoints:\n"] +
                   ["  - %s\n" % flow(e) for e in eps])


def peer(app):
    return "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}, " \
           "podSelector: {matchLabels: {app: app%d}}}" % (ns_of(app), app)


def policy_doc(k, j):
    src, dst = (k - 1 - j) % APPS, (k + 1 + j) % APPS
    ports = "[{port: 5201}, {port: %d}]" % (8000 + j)
    doc = ["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n",
           "metadata: {name: app%d-p%d, namespace: %s}\n" % (k, j, ns_of(k)),
           "spec:\n  podSelector: {matchLabels: {app: app%d}}\n" % k,
           "  policyTypes: [Ingress, Egress]\n",
           "  ingress:\n    - from: [%s]\n      ports: %s\n" % (peer(src), ports)]
    if j == 9:
        doc.append("    - from: [{ipBlock: {cidr: 172.16.0.0/12, except: [172.16.%d.0/24]}}]\n"
                   "      ports: [{port: 443}]\n" % k)
    doc.append("  egress:\n    - to: [%s]\n      ports: %s\n" % (peer(dst), ports))
    if j == 9:
        doc.append("    - to: [{ipBlock: {cidr: 192.168.%d.0/24}}]\n"
                   "      ports: [{port: 443}]\n" % k)
    return "".join(doc)


def write_policies(d):
    os.makedirs(d, exist_ok=True)
    for k in range(APPS):
        docs = [policy_doc(k, j) for j in range(POLICIES_PER_APP)]
        with open(os.path.join(d, "app%d.yaml" % k), "w") as f:
            f.write("---\n".join(docs))


def tiers_doc(k, tier):
    """Cluster-wide policy k of tier: every endpoint its subject, rules that name other apps'
    ports, so that each packet goes through both tiers' maps and none decides the benchmark's
    pair (app99 -> app0 on 5201 and 8000-8009): the Admin tier passes it on, the Baseline
    tier is not reached (NetworkPolicy isolates both ends)."""
    app, port = (k + 1) % APPS, 9000 + k
    pods = "{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: app%d}}}}" % app
    admin = tier == "Admin"
    return "".join([
        "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n",
        "metadata: {name: %s-%d}\n" % (tier.lower(), k),
        "spec:\n  tier: %s\n  priority: %d\n  subject: {namespaces: {}}\n" % (tier, k),
        "  ingress:\n",
        "    - {action: Deny, from: [%s], protocols: [{tcp: {destinationPort: {number: %d}}}]}\n"
        % (pods, port),
        "    - {action: %s, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: "
        "{range: {start: 5000, end: 8999}}}}]}\n" % ("Pass" if admin else "Accept"),
        "  egress:\n",
        "    - {action: Deny, to: [%s], protocols: [{udp: {destinationPort: {number: %d}}}]}\n"
        % (pods, port),
        "    - {action: Deny, to: [{networks: [192.0.2.%d/32]}]}\n" % k,
    ])


def write_tiers(path, n):
    """n Admin and n Baseline cluster-wide policies in one file."""
    docs = [tiers_doc(k, t) for t in ("Admin", "Baseline") for k in range(n)]
    write_atomic(path, "---\n".join(docs))


def naive_rules(real, only=None):
    """iptables-restore input for the same policy over the real endpoints present."""
    present = sorted(only if only is not None else range(real))
    by_app = {}
    for i in present:
        by_app.setdefault(app_of(i), []).append(real_addr(i))
    out = ["*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n",
           "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"]
    for k in range(APPS):
        for j in range(POLICIES_PER_APP):
            dst = (k + 1 + j) % APPS
            for a in by_app.get(k, []):
                for b in by_app.get(dst, []):
                    for port in (5201, 8000 + j):
                        out.append("-A FORWARD -s %s/32 -d %s/32 -p tcp -m tcp --dport %d "
                                   "-j ACCEPT\n" % (a, b, port))
        for a in by_app.get(k, []):
            out.append("-A FORWARD -s %s/32 -d 192.168.%d.0/24 -p tcp -m tcp --dport 443 "
                       "-j ACCEPT\n" % (a, k))
            out.append("-A FORWARD -s 172.16.%d.0/24 -d %s/32 -p tcp -m tcp --dport 443 "
                       "-j DROP\n" % (k, a))
            out.append("-A FORWARD -s 172.16.0.0/12 -d %s/32 -p tcp -m tcp --dport 443 "
                       "-j ACCEPT\n" % a)
    out.append("-A FORWARD -j DROP\nCOMMIT\n")
    return "".join(out)


def write_dir(d, n, per_file):
    """N endpoints of one address each in files of PER_FILE: a directory for moatd --endpoints."""
    os.makedirs(d, exist_ok=True)
    eps = endpoints(0, n, 1)
    for k in range(0, n, per_file):
        write_atomic(os.path.join(d, "part%05d.json" % (k // per_file)),
                     endpoints_text(eps[k:k + per_file], "json"))


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main(argv):
    def only(k):
        return [int(x) for x in argv[k].split(",")] if len(argv) > k else None

    if argv[1] == "policies":
        write_policies(argv[2])
    elif argv[1] == "endpoints":
        eps = endpoints(int(argv[3]), int(argv[4]), int(argv[5]), only(6))
        write_atomic(argv[2], endpoints_text(eps, "json" if argv[2].endswith(".json") else "yaml"))
    elif argv[1] == "endpoints-dir":
        write_dir(argv[2], int(argv[3]), int(argv[4]))
    elif argv[1] == "tiers":
        write_tiers(argv[2], int(argv[3]))
    elif argv[1] == "naive":
        rules = naive_rules(int(argv[3]), only(4))
        write_atomic(argv[2], rules)
        print(rules.count("\n-A ") + rules.startswith("-A "))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
