#!/usr/bin/env python3
"""Compare Moat's state across moatd instances, for the restart, churn and soak tests.

  state_compare.py names INSPECT.json ENDPOINTS.json [STABLE...] > NAMES.json
      Addresses and host interfaces -> container names, from `docker inspect` of the
      containers and `moat endpoints -o json`. With STABLE names, every other container's
      addresses, MACs and interfaces map to "C" (one churning crowd), and so do those no
      container has any more.
  state_compare.py norm RULESET.json NAMES.json [--crowd]
      `nft -j list ruleset` of Moat's tables as sorted lines with nothing that legitimately
      differs between two moatd instances enforcing the same thing: handles, counters and
      meters' elements (the drop log's buckets) dropped; addresses, MACs and interfaces
      named by NAMES (unnamed ones stay as "?ADDR", so a stale element shows); identity numbers (moatd numbers them in the order it meets them)
      replaced by the members of the identity (names of its addresses, its prefixes). Each
      set's elements are sorted; with --crowd, duplicates (the crowd) collapse to one.
  state_compare.py endpoints ENDPOINTS.json INSPECT.json
      moatd's endpoints (name, addresses) must be exactly Docker's running containers that
      have an address (host-network ones aside). Prints the differences; exit 1 if any.
"""
import ipaddress
import json
import re
import sys

IDENT_CHAIN = re.compile(r"(?<![A-Za-z0-9])(in|out)_(\d+)(?![0-9])")
CHAIN_MAPS = ("in_ids", "out_ids")
IDENT_MAPS = ("ep4", "ep6", "net4", "net6")
# sets whose elements start with a peer's identity: identity chains' lists, published ports'
PEER_SET = re.compile(r"^((in|out)_\d+_(from|to)|pub_from)$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
RAW6 = re.compile(r"^0x[0-9a-f]{32}$")	# an IPv6 address in a raw-payload set (nd_targets)


def running(inspect):
    for c in inspect:
        if c["State"]["Running"] and c["HostConfig"]["NetworkMode"] != "host":
            yield c


def addrs_of(c):
    for net in c["NetworkSettings"]["Networks"].values():
        for k in ("IPAddress", "GlobalIPv6Address"):
            if net.get(k):
                yield net[k]


def macs_of(c):
    for net in c["NetworkSettings"]["Networks"].values():
        if net.get("MacAddress"):
            yield net["MacAddress"].lower()


def cmd_names(inspect_path, eps_path, stable):
    inspect = json.load(open(inspect_path))
    eps = json.load(open(eps_path))
    names = {}
    for c in inspect:
        n = c["Name"].lstrip("/")
        for a in list(addrs_of(c)) + list(macs_of(c)):
            names[a if MAC.match(a) else str(ipaddress.ip_address(a))] = \
                n if not stable or n in stable else "C"
    for e in eps:
        n = e["endpoint"]
        for i in e["ifaces"]:
            names[i] = n if not stable or n in stable else "C"
    if stable:
        names["*"] = "C"	# gone since (a dead moatd's last view): the crowd too
    json.dump(names, sys.stdout, indent=1, sort_keys=True)


def is_addr(s):
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


class Norm:
    def __init__(self, ruleset, names):
        self.names = names
        self.objs = [o for o in ruleset["nftables"] if self.ours(o)]
        self.ident = self.identities()

    @staticmethod
    def ours(o):
        for k in ("table", "set", "map", "chain", "rule"):
            if k in o:
                return (o[k].get("table") if k != "table" else o[k].get("name")) == "moat"
        return False

    def name(self, s):
        if RAW6.match(s):
            s = str(ipaddress.IPv6Address(int(s, 16)))
        if is_addr(s):
            s = str(ipaddress.ip_address(s))
            return self.names.get(s, self.names.get("*", "?" + s))
        if s.startswith("veth") or MAC.match(s):
            return self.names.get(s, self.names.get("*", "?" + s))
        return s

    def identities(self):
        """identity number -> sorted names of its members (addresses, prefixes)."""
        members = {}
        for o in self.objs:
            s = o.get("map")
            if not s or s["name"] not in IDENT_MAPS:
                continue
            for key, ident in s.get("elem", []):
                m = self.name(key) if isinstance(key, str) else json.dumps(key, sort_keys=True)
                members.setdefault(ident, set()).add(m)
        return {i: "{" + ",".join(sorted(m)) + "}" for i, m in members.items()}

    def ident_name(self, i):
        if i in self.ident:
            return self.ident[i]
        # a mark inside a concatenation may read back in the other byte order
        sw = int.from_bytes(int(i).to_bytes(4, "little"), "big") if isinstance(i, int) else i
        return self.ident.get(sw, "?ident:%s" % i)

    def chain_name(self, s):
        def sub(m):
            return "%s_%s" % (m.group(1), self.ident_name(int(m.group(2))))
        return IDENT_CHAIN.sub(sub, s)

    def value(self, v):
        """Any element or expression, recursively: addresses and chain names named."""
        if isinstance(v, str):
            return self.chain_name(self.name(v))
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: (None if k == "counter" else self.value(x)) for k, x in v.items()
                    if k != "handle"}
        return v

    def elem(self, set_name, e):
        if set_name in IDENT_MAPS:
            return [self.value(e[0]), self.ident_name(e[1])]
        if set_name in CHAIN_MAPS:     # identity -> goto its chain
            return [self.ident_name(e[0]), self.value(e[1])]
        if PEER_SET.match(set_name):
            e = e.get("elem", {}).get("val", e) if isinstance(e, dict) and "elem" in e else e
            if isinstance(e, dict) and "concat" in e:
                c = e["concat"]
                return {"concat": [self.ident_name(c[0]) if isinstance(c[0], int) else
                                   self.value(c[0])] + self.value(c[1:])}
        return self.value(e)

    def lines(self, crowd):
        out = []
        for o in self.objs:
            kind = next(k for k in ("table", "set", "map", "chain", "rule", "counter")
                        if k in o)
            x = o[kind]
            if kind == "table":
                out.append("table %s" % x["family"])
            elif kind == "counter":     # named: what it counted is traffic, not state
                out.append("counter %s %s" % (x["family"], x["name"]))
            elif kind in ("set", "map"):
                name = self.chain_name(x["name"])
                head = "%s %s %s %s %s" % (kind, x["family"], name, json.dumps(x.get("type")),
                                           json.dumps(x.get("map")))
                out.append(head + " flags=%s" % json.dumps(x.get("flags")))
                # a meter (the drop log's buckets) or a set of learnt DNS answers fills from
                # traffic, its elements expire: nft's JSON says timeout (not always dynamic)
                dynamic = {"dynamic", "timeout"} & set(x.get("flags") or [])
                elems = [json.dumps(self.elem(x["name"], e), sort_keys=True)
                         for e in ([] if dynamic else x.get("elem", []))]
                elems = sorted(set(elems)) if crowd else sorted(elems)
                out.extend("  %s elem %s" % (name, e) for e in elems)
            elif kind == "chain":
                out.append("chain %s %s %s" % (x["family"], self.chain_name(x["name"]),
                                              json.dumps({k: x.get(k) for k in
                                                          ("type", "hook", "prio", "policy")})))
            else:
                out.append("  rule %s %s %s" % (x["family"], self.chain_name(x["chain"]),
                                                json.dumps(self.value(x["expr"]),
                                                           sort_keys=True)))
        # objects come in kernel order; sort within the whole (rules keep chain order)
        return sort_keeping_rules(out)


def sort_keeping_rules(lines):
    """Sort the blocks (an object line and its indented lines); rules keep their order."""
    blocks, cur = [], None
    for ln in lines:
        if ln.startswith("  rule"):
            chain = ln.split()[2]
            blocks.append(("chain-rules " + chain, ln))
        elif ln.startswith("  "):
            cur[1].append(ln)
        else:
            cur = (ln, [])
            blocks.append(cur)
    out, rules = [], {}
    for b in blocks:
        if isinstance(b[1], str):
            rules.setdefault(b[0], []).append(b[1])
        else:
            out.append(b[0] + "\n" + "\n".join(b[1]) if b[1] else b[0])
    out.extend("%s\n%s" % (k, "\n".join(v)) for k, v in rules.items())
    return sorted(out)


def cmd_norm(ruleset_path, names_path, crowd):
    n = Norm(json.load(open(ruleset_path)), json.load(open(names_path)))
    print("\n".join(n.lines(crowd)))


def cmd_endpoints(eps_path, inspect_path):
    eps = {e["endpoint"]: sorted(str(ipaddress.ip_address(a)) for a in e["ips"])
           for e in json.load(open(eps_path)) if not e.get("host_network")}
    dock = {}
    for c in running(json.load(open(inspect_path))):
        ips = sorted(str(ipaddress.ip_address(a)) for a in addrs_of(c))
        if ips:
            dock[c["Name"].lstrip("/")] = ips
    bad = 0
    for n in sorted(set(eps) | set(dock)):
        if eps.get(n) != dock.get(n):
            print("endpoint %s: moatd %s, docker %s" % (n, eps.get(n), dock.get(n)))
            bad += 1
    print("%d endpoints, %d containers, %d differences" % (len(eps), len(dock), bad))
    sys.exit(1 if bad else 0)


def main():
    a = sys.argv[1:]
    if a and a[0] == "names" and len(a) >= 3:
        cmd_names(a[1], a[2], set(a[3:]))
    elif a and a[0] == "norm" and len(a) in (3, 4):
        cmd_norm(a[1], a[2], a[3:] == ["--crowd"])
    elif a and a[0] == "endpoints" and len(a) == 3:
        cmd_endpoints(a[1], a[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
