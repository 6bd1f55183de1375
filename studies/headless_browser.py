"""A real headless Chromium driven over the DevTools protocol, standard library only.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol commands
(JSON, each ended by a NUL byte) on its file descriptor 3 and writes replies and
events on 4, so no websocket client and no port are needed. Used by the live
view's browser test (``tests/follower/test_view_browser.py``) and its figure
(``python -m studies.live_view_figure``).

    with HeadlessBrowser() as b:
        b.open("http://127.0.0.1:8765/")
        b.evaluate("document.title")
        b.screenshot("page.png")
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

_TRAMPOLINE = """
import os, sys
r, w = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))  # out of the way of 3 and 4 first
os.dup2(r, 3)
os.dup2(w, 4)
os.set_inheritable(3, True)  # dup2 onto itself (r == 3) would leave it close-on-exec
os.set_inheritable(4, True)
for fd in {r, w, int(sys.argv[1]), int(sys.argv[2])} - {3, 4}:
    os.close(fd)
os.execvp(sys.argv[3], sys.argv[3:])
"""

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    """``$SCOREFOLLOW_BROWSER``, else the first Chromium-type browser on PATH, else None."""
    env = os.environ.get("SCOREFOLLOW_BROWSER")
    if env:
        return shutil.which(env) or (env if os.path.isfile(env) else None)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class HeadlessBrowser:
    """One headless Chromium with one page; see the module docstring."""

    def __init__(self, binary: str | None = None, *, width: int = 1280, height: int = 720, timeout_s: float = 30):
        self.binary = binary or find_browser()
        if not self.binary:
            raise BrowserError("no Chromium-type browser found (apt-get install chromium, or set "
                               "SCOREFOLLOW_BROWSER to one)")
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="scorefollow-chromium-")
        self._log = open(os.path.join(self.profile, "chromium.log"), "w+b")  # why it failed, if it does
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [self.binary, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "--force-device-scale-factor=1", "--hide-scrollbars",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-dev-shm-usage", "--disable-background-networking", "--mute-audio",
                "--no-sandbox",  # its sandbox refuses to run as root (CI and containers run as root)
                "about:blank"]
        # a small trampoline puts our pipe ends on the descriptors 3 and 4 the protocol expects, then
        # becomes chromium (sh cannot: dash redirects descriptors 0-9 only)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w), *args],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=self._log)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict = {}
        self._events: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = None

    # -- protocol ------------------------------------------------------------------
    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._replies[None] = "closed"
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self._events.put(msg)

    def call(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        """Send one command (to the page's session unless ``session=False``) and return its result."""
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        try:
            os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        except OSError as e:
            raise BrowserError(f"{method}: the browser is gone ({e}); it said: {self.log_tail()}") from e
        with self._cond:
            ok = self._cond.wait_for(lambda: mid in self._replies or None in self._replies, self.timeout_s)
            reply = self._replies.pop(mid, None)
        if reply is None:
            raise BrowserError(f"{method}: no reply from the browser "
                               f"({'it exited' if ok else f'waited {self.timeout_s:.0f} s'}); "
                               f"it said: {self.log_tail()}")
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def log_tail(self, n: int = 600) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-n:].strip() or "(nothing)"

    # -- page ------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Attach to a new page and load ``url`` (returns once its load event fired)."""
        if self.session is None:
            target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                     session=False)["sessionId"]
            self.call("Page.enable")
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.evaluate("document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise BrowserError(f"{url} did not finish loading in {self.timeout_s:.0f} s")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float, poll_s: float = 0.1):
        """Poll ``expression`` until it is truthy; return its value, or raise BrowserError."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"waited {timeout_s:.0f} s for {expression}")
            time.sleep(poll_s)

    def screenshot(self, path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", session=False)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=2)  # the browser's exit closed its end: the reader has stopped
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
