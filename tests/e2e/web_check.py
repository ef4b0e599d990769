"""The web UI in headless Chromium, checked from the DOM (tests/e2e/80-web.sh).

    web_check.py demo URL SHOT    the demo's map: its services, a denial within 2 s, its
                                  explanation, node details, the flows table's filters
    web_check.py token URL TOKEN SHOT
                                  with --web-token-file: refused until the token is given,
                                  then the same page, live, on an HttpOnly cookie

DOCKER_HOST names the demo's dockerd; API, DB, WEB its containers' addresses. Prints what it
measured; exits 1 with the reason on the first failed expectation.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser  # noqa: E402

SERVICES = ["shop/web", "shop/api", "shop/db", "shop/outsider"]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def attempt(src, ip, port):
    """A connection from container src in the background (nc waits out its timeout)."""
    return subprocess.Popen(["docker", "exec", src, "sh", "-c", f"echo hi | nc -w 1 {ip} {port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def edge_sel(kind, frm, to):
    return f'#map g.edge.{kind}[data-from$="app={frm}"][data-to*="app={to}"]'


def positions(b):
    return b.eval("""Object.fromEntries([...document.querySelectorAll('#map g.node')]
        .map(g => [g.dataset.id, g.getAttribute('transform')]))""")


def watch(b, selector):
    """Records in the page when selector first matches (a MutationObserver on the map)."""
    b.eval(f"""(() => {{
        window.__seen = null;
        const sel = {json.dumps(selector)};
        const mo = new MutationObserver(() => {{
            if (!window.__seen && document.querySelector(sel)) {{ window.__seen = Date.now(); mo.disconnect(); }}
        }});
        mo.observe(document.getElementById('map'), {{ childList: true, subtree: true }});
    }})()""")


def denial_latency(b, src, ip, port, frm, to):
    """Starts a denied attempt; returns ms from its first packet (the flow's first_ms, the
    kernel's timestamp) to its denied edge in the DOM."""
    sel = edge_sel("denied", frm, to)
    if b.eval(f"!!document.querySelector('{sel}')"):
        fail(f"{sel} is there before the attempt")
    watch(b, sel)
    p = attempt(src, ip, port)
    try:
        b.wait("window.__seen", timeout=10)
    finally:
        p.wait()
    flows = b.eval(f"""fetch('/api/flows?from=app%3D{frm}&to=app%3D{to}&verdict=denied')
        .then(r => r.json())""")
    if not flows.get("flows"):
        fail(f"no denied flow {frm} -> {to} in /api/flows: {flows}")
    return b.eval("window.__seen") - flows["flows"][-1]["first_ms"]


def check_services(b):
    graph = b.eval("fetch('/api/graph').then(r => r.json())")["graph"]
    groups = {n["id"] for n in graph["nodes"] if n["kind"] == "group"}
    covered = {e for n in graph["nodes"] for e in n["endpoints"]}
    missing = [s for s in SERVICES if s not in covered]
    if missing:
        fail(f"services without a group in /api/graph: {missing}")
    b.wait(f"(() => {{ const ids = new Set([...document.querySelectorAll('#map g.node')].map(g => g.dataset.id));"
           f" return {json.dumps(sorted(groups))}.every(i => ids.has(i)); }})()")
    titles = b.eval("[...document.querySelectorAll('#map g.node title')].map(t => t.textContent).join('\\n')")
    for s in SERVICES:
        if s not in titles:
            fail(f"{s} is in no node of the map")
    log(f"every service is a node: {sorted(groups)}")


def select_verdict(b, verdict):
    b.eval(f"""(() => {{ const s = document.getElementById('f-verdict'); s.value = {json.dumps(verdict)};
        s.dispatchEvent(new Event('input', {{ bubbles: true }})); }})()""")
    want = "limit=200" + (f"&verdict={verdict}" if verdict else "")
    b.wait(f"document.body.dataset.tableQuery === {json.dumps(want)}")
    rows = b.eval("[...document.querySelectorAll('#flows tr')].map(r => [r.dataset.verdict, r.dataset.from, r.dataset.to])")
    return rows


def check_table(b):
    denied = select_verdict(b, "denied")
    if len(denied) < 2 or any(v != "denied" for v, _, _ in denied):
        fail(f"verdict=denied shows {denied}")
    if ["denied", "shop/outsider", "shop/api"] not in denied:
        fail(f"the outsider's attempt on api is not in the denied flows: {denied}")
    allowed = select_verdict(b, "allowed")
    if len(allowed) < 2 or any(v != "allowed" for v, _, _ in allowed):
        fail(f"verdict=allowed shows {allowed}")
    every = select_verdict(b, "")
    if len(every) != len(denied) + len(allowed):
        fail(f"no filter shows {len(every)} rows, not {len(denied)} + {len(allowed)}")
    # a bad filter is refused with moatd's words, not an empty table
    b.eval("""(() => { const i = document.getElementById('f-port'); i.value = 'bogus';
        i.dispatchEvent(new Event('input', { bubbles: true })); })()""")
    err = b.wait("document.getElementById('f-error').textContent")
    if "--port bogus" not in err:
        fail(f"a bad port filter says {err!r}")
    b.eval("""(() => { const i = document.getElementById('f-port'); i.value = '';
        i.dispatchEvent(new Event('input', { bubbles: true })); })()""")
    b.wait("document.body.dataset.tableQuery === 'limit=200' && !document.getElementById('f-error').textContent")
    log(f"flows table: {len(denied)} denied, {len(allowed)} allowed, every filter as asked")


def check_explain(b):
    b.click(edge_sel("denied", "outsider", "api"))
    text = b.wait("""(() => { const l = document.querySelector('#explain li');
        return l && l.querySelector('.side') && document.getElementById('details').innerText; })()""")
    for want in ["shop/outsider \u2192 shop/api 9000/tcp: deny",
                 "ingress of shop/api: isolated (enforce) by shop/api",
                 "no rule allows it", "9000/tcp"]:
        if want not in text:
            fail(f"the denied edge's details lack {want!r}:\n{text}")
    log("the denied edge explains itself: " + " | ".join(text.splitlines()[-2:]))


def check_node(b):
    b.click('#map g.node[data-id^="shop/app=db"]')
    row = b.wait("""(() => { const r = document.querySelector('#details tr[data-endpoint="shop/db"]');
        return r && r.innerText; })()""")
    for want in ["shop/db", "app=db", "ingress", "enforce"]:
        if want not in row:
            fail(f"db's details lack {want!r}: {row!r}")
    log(f"db's details: {' '.join(row.split())}")


def demo(url, shot):
    with Browser(1400, 900) as b:
        b.open(url)
        b.wait("document.querySelector('#live.on') && document.querySelectorAll('#map g.node').length >= 4")
        b.wait("document.body.dataset.graphLoaded")
        check_services(b)
        before = positions(b)
        ms = denial_latency(b, "outsider", os.environ["API"], 9000, "outsider", "api")
        log(f"the outsider's denied attempt on api:9000 was on the map {ms} ms after its first packet")
        if ms > 2000:
            fail(f"the denial took {ms} ms to show (more than 2 s)")
        after = positions(b)
        moved = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
        if moved:
            fail(f"nodes moved when an edge came: {moved}")
        check_table(b)
        check_node(b)
        check_explain(b)
        b.wait("document.querySelectorAll('#flows tr').length >= 4")
        errors = b.console_errors()
        if errors:
            fail(f"the page reported errors: {errors}")
        b.screenshot(shot)
        print(f"latency_ms={ms}")


def token(url, tok, shot):
    with Browser(1400, 900) as b:
        b.open(url)
        b.wait("!document.getElementById('login').hidden")
        if b.eval("document.querySelectorAll('#map g.node').length"):
            fail("the map shows nodes without the token")
        status = b.eval("fetch('/api/graph').then(r => r.status)")
        if status != 401:
            fail(f"/api/graph without the token answered {status}")
        b.type("#token", "not-the-token-0123456789")
        b.eval("document.getElementById('login-form').requestSubmit()")
        b.wait("document.getElementById('login-error').textContent")
        if not b.eval("!document.getElementById('login').hidden"):
            fail("a wrong token opened the page")
        b.eval("document.getElementById('token').value = ''")
        b.type("#token", tok)
        b.eval("document.getElementById('login-form').requestSubmit()")
        b.wait("document.getElementById('login').hidden && document.querySelectorAll('#map g.node').length >= 4")
        if tok in b.eval("document.cookie"):
            fail("the token cookie is readable by scripts (not HttpOnly)")
        b.wait("document.querySelector('#live.on')")
        ms = denial_latency(b, "outsider", os.environ["WEB"], 8080, "outsider", "web")
        log(f"with the token: a new denial (outsider -> web:8080) on the map after {ms} ms")
        if ms > 2000:
            fail(f"the denial took {ms} ms to show (more than 2 s)")
        errors = [e for e in b.console_errors() if "401" not in e]
        if errors:
            fail(f"the page reported errors: {errors}")
        b.screenshot(shot)
        print(f"latency_ms={ms}")


if __name__ == "__main__":
    if sys.argv[1] == "demo":
        demo(sys.argv[2], sys.argv[3])
    else:
        token(sys.argv[2], sys.argv[3], sys.argv[4])
