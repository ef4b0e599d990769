"""A headless Chromium driven over its DevTools protocol, for the web UI's tests.

Debian's chromium, run as root with no sandbox and nothing that talks to the internet; a
fresh profile in a temporary directory; the DevTools port is picked by Chromium (port 0)
and read from DevToolsActivePort. Only python3-websocket besides the standard library.

    with Browser(width=1400, height=1000) as b:
        b.open("http://127.0.0.1:9641/")
        b.wait("document.querySelectorAll('.node').length >= 4")
        b.click("g.edge.denied")
        b.screenshot("map.png")
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import websocket

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


class Error(Exception):
    pass


class Browser:
    def __init__(self, width=1400, height=1000, timeout=20):
        self.width, self.height = width, height
        self.dir = tempfile.mkdtemp(prefix="moat-chromium.")
        self.log = open(os.path.join(self.dir, "chromium.log"), "w")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.dir}/profile",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.seq = 0
        self.events = []
        self.ws = self._connect(timeout)
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def _connect(self, timeout):
        port_file = os.path.join(self.dir, "profile", "DevToolsActivePort")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Error(f"chromium exited ({self.proc.returncode}); see {self.log.name}")
            try:
                port = int(open(port_file).read().split()[0])
                break
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        else:
            raise Error("chromium did not open its DevTools port")
        import urllib.request
        while True:
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                break
            if time.time() > deadline:
                raise Error("no page target")
            time.sleep(0.1)
        return websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                           suppress_origin=True)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, **params):
        self.seq += 1
        me = self.seq
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise Error(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def eval(self, expr):
        """The value of a JavaScript expression (awaited when a promise), as JSON."""
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise Error(f"{expr}: {r['exceptionDetails'].get('exception', {}).get('description') or r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, url):
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'")

    def wait(self, expr, timeout=10, every=0.05):
        """Polls expr until it is truthy; returns its value, or raises with what it was."""
        deadline = time.time() + timeout
        probe = f"(() => {{ const v = ({expr}); return v instanceof Node ? true : v; }})()"
        while True:
            v = self.eval(probe)
            if v:
                return v
            if time.time() > deadline:
                raise Error(f"timed out after {timeout}s waiting for: {expr} (last: {v!r})")
            time.sleep(every)

    def click(self, selector):
        """A real mouse click in the middle of the first element that matches."""
        box = self.eval(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            const p = e.querySelector('path.hit');
            if (p) {{  // the middle of a curve, not of its box
                const pt = p.getPointAtLength(p.getTotalLength() / 2), m = p.getScreenCTM();
                return [pt.x * m.a + pt.y * m.c + m.e, pt.x * m.b + pt.y * m.d + m.f];
            }}
            const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()""")
        if not box:
            raise Error(f"nothing matches {selector}")
        x, y = box[0], box[1]
        self.click_at(x, y)

    def click_at(self, x, y):
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector, text):
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def console_errors(self):
        """Exceptions and console errors the page has reported so far."""
        self.eval("0")	# reads what is queued on the socket
        out = []
        for m in self.events:
            if m.get("method") == "Runtime.exceptionThrown":
                out.append(m["params"]["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] == "error":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in m["params"]["args"]))
        return out

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
