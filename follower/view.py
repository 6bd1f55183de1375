"""``--view``: a local web page that shows what the follower hears, served by the running follower.

One more output beside OSC, JSON lines and the console (``emit(update)`` /
``close()``). It runs the standard library's HTTP server on its own threads:

  GET /          the page (``view_page.py``; its script and style are inline, nothing is
                 fetched from elsewhere, and its Content-Security-Policy forbids it)
  GET /events    server-sent events: ``state`` (one JSON object, the newest update) at
                 most ``VIEW_HZ`` times a second per browser, ``end`` when the follower stops
  GET /state     the newest update as JSON (scripts, debugging)
  GET /piece?id= the piece's piano roll as JSON (``view_score.py``), fetched by the page on lock

``emit`` only keeps a reference to the newest update and wakes the event streams;
the JSON is written on the server's threads, so the follower's worker never waits
for a browser. The server binds to 127.0.0.1 unless ``--view-host`` says otherwise,
and then answers only requests addressed to a loopback name (a web page elsewhere
cannot read it through DNS rebinding).
"""

from __future__ import annotations

import errno
import json
import math
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from urllib.parse import parse_qs, urlsplit

from .errors import ConfigError

DEFAULT_VIEW_HOST = "127.0.0.1"
DEFAULT_VIEW_PORT = 8765
DEFAULT_LINGER_S = 30.0
VIEW_HZ = 10.0          # state events per second and browser: the page interpolates the cursor between them
KEEPALIVE_S = 10.0      # a comment line this often on a quiet stream, so a closed tab is noticed
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class ViewOptions:
    host: str = DEFAULT_VIEW_HOST
    port: int = DEFAULT_VIEW_PORT         # 0 = any free port (printed at start)
    midi_dirs: tuple = ()                 # where the pieces' MIDI files are, before the index's own sources
    linger_s: float = DEFAULT_LINGER_S    # the page stays up this long after a replay ends (Ctrl-C stops it)

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--view-port {self.port} is outside 0..65535 (0 = any free port)")
        if not self.linger_s >= 0:
            raise ConfigError(f"--view-linger {self.linger_s} must be zero or more seconds")


def _num(x, nd=3):
    return None if x is None or not math.isfinite(float(x)) else round(float(x), nd)


def snapshot(u, seq: int, ended: bool = False) -> dict:
    """One engine update as the page reads it (plain JSON: no NaN, no numpy)."""
    if u is None:
        return {"seq": seq, "ended": ended, "state": "starting", "t": 0.0, "piece": None, "title": None,
                "position_s": None, "position_beats": None, "tempo": None, "bpm": None, "confidence": 0.0,
                "candidates": [], "reranked": [], "also_at_beats": []}
    return {"seq": seq, "ended": ended, "state": u.state, "t": _num(u.t), "piece": u.piece, "title": u.title,
            "position_s": _num(u.position_s), "position_beats": _num(u.position_beats), "tempo": _num(u.tempo),
            "bpm": _num(u.bpm, 1), "confidence": _num(u.confidence),
            "candidates": [[str(p), _num(s)] for p, s in u.candidates[:5]],
            "reranked": [[str(p), _num(s)] for p, s in u.reranked[:5]],
            "also_at_beats": [_num(b, 2) for b in u.also_at_beats]}


def host_name(header: str) -> str:
    """The name in a Host header, without the port (``[::1]:8765`` -> ``[::1]``)."""
    if header.startswith("["):
        return header[:header.find("]") + 1]
    return header.split(":")[0]


class _Hub:
    """The newest update and a sequence number; event streams wait here for the next one."""

    def __init__(self):
        self.cond = threading.Condition()
        self.update = None
        self.seq = 0
        self.ended = False
        self.closed = False

    def publish(self, update=None, *, ended=None, closed=False):
        with self.cond:
            if update is not None:
                self.update = update
            if ended is not None:
                self.ended = ended
            self.closed = self.closed or closed
            self.seq += 1
            self.cond.notify_all()

    def after(self, seq: int, timeout: float) -> tuple[dict | None, int, bool]:
        """(snapshot, its seq, closed) once something newer than ``seq`` is there, or (None, seq, closed)."""
        with self.cond:
            self.cond.wait_for(lambda: self.seq != seq or self.closed, timeout)
            if self.seq == seq:
                return None, seq, self.closed
            return snapshot(self.update, self.seq, self.ended), self.seq, self.closed


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind looks the host's name up (socket.getfqdn), which may wait on DNS; not needed here
        TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


def _handler(view: LiveView):
    from .view_page import PAGE

    page = PAGE.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        server_version = "scorefollow-view"

        def log_message(self, format, *args):  # noqa: A002 - the console belongs to the performer's line
            pass

        def _send(self, code: int, body: bytes, ctype: str, extra: dict | None = None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj):
            self._send(code, json.dumps(obj, separators=(",", ":")).encode(), "application/json")

        def do_GET(self):  # noqa: N802 - http.server's name
            try:
                if view.loopback_only and host_name(self.headers.get("Host", "")) not in LOOPBACK_NAMES:
                    return self._json(403, {"error": "this view answers requests to localhost only"})
                url = urlsplit(self.path)
                if url.path in ("/", "/index.html"):
                    return self._send(200, page, "text/html; charset=utf-8", {
                        "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                                   "style-src 'unsafe-inline'; img-src 'self' data:"})
                if url.path == "/state":
                    return self._json(200, snapshot(view.hub.update, view.hub.seq, view.hub.ended))
                if url.path == "/piece":
                    pid = parse_qs(url.query).get("id", [""])[0]
                    roll = view.scores.get(pid) if view.scores is not None else None
                    if roll is None:
                        return self._json(404, {"error": f"no piece {pid!r} in the index"})
                    return self._json(200, roll)
                if url.path == "/events":
                    return self._events()
                return self._json(404, {"error": f"no page {url.path}; try /"})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser went away; nothing to tell anyone

        def _events(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(b"retry: 1000\n\n")  # the page reconnects after a second if the stream breaks
            seq, sent_at, quiet = -1, 0.0, time.monotonic()
            while True:
                snap, seq, closed = view.hub.after(seq, KEEPALIVE_S)
                if snap is not None:
                    self.wfile.write(b"event: state\ndata: " + json.dumps(snap, separators=(",", ":")).encode()
                                     + b"\n\n")
                    sent_at = quiet = time.monotonic()
                elif time.monotonic() - quiet >= KEEPALIVE_S:
                    self.wfile.write(b": keep-alive\n\n")
                    quiet = time.monotonic()
                self.wfile.flush()
                if closed:
                    self.wfile.write(b"event: end\ndata: {}\n\n")
                    self.wfile.flush()
                    return
                # throttle: the worker updates 20 times a second, the browser needs no more than VIEW_HZ
                time.sleep(max(0.0, sent_at + 1.0 / VIEW_HZ - time.monotonic()))

    return Handler


class LiveView:
    """The ``--view`` output; see the module docstring. ``scores`` is a :class:`follower.view_score.PieceScores`."""

    def __init__(self, options: ViewOptions, scores=None):
        self.options = options
        self.scores = scores
        self.hub = _Hub()
        self.loopback_only = options.host in LOOPBACK_NAMES
        family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        server_cls = type("ViewServer", (_Server,), {"address_family": family})
        try:
            self.server = server_cls((options.host.strip("[]"), options.port), _handler(self))
        except socket.gaierror as e:
            raise ConfigError(f"--view-host {options.host}: cannot resolve it ({e.strerror}); "
                              "give an address such as 127.0.0.1") from e
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(f"--view-port {options.port}: already in use (another follower?); choose "
                                  "another port with --view-port N, or 0 for any free one") from e
            raise ConfigError(f"--view-host {options.host} --view-port {options.port}: cannot serve there "
                              f"({e.strerror or e}); check the address") from e
        host, port = self.server.server_address[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="follower-view", daemon=True)
        self._thread.start()

    def emit(self, u) -> None:
        self.hub.publish(u)

    def finish(self) -> None:
        """The input has ended: the page says so and keeps the last picture."""
        self.hub.publish(ended=True)

    def linger(self, seconds: float) -> None:
        """Keep serving for ``seconds`` (the caller's Ctrl-C ends it early)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    def close(self) -> None:
        self.hub.publish(ended=True, closed=True)  # event streams send `end` and return
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)


def start_view(options, index) -> LiveView:
    """The live view of a run (``options`` a :class:`follower.runner.RunOptions` with ``view`` set), its
    address printed on stderr."""
    import sys

    from .paths import resolve_bundle, resolve_index
    from .view_score import PieceScores

    index_path = resolve_index(options.index_path, resolve_bundle(options.bundle_dir))
    view = LiveView(options.view, PieceScores(index, index_path, options.view.midi_dirs))
    where = "" if view.loopback_only else " (reachable from other machines)"
    print(f"live view: {view.url}{where}", file=sys.stderr, flush=True)
    return view
