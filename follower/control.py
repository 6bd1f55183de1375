"""OSC in: what the stage tells the follower (Max/MSP, Pd, a foot pedal through any OSC sender).

The follower names whatever it hears. Before a piece the players tune, someone announces it,
a pianist tries a few chords: sound that resembles some indexed piece closely enough to be
taken for it (on validation renders with a violinist's open strings and fifths before the
music, every one was followed on a wrong piece for seconds, and into the music after it;
docs/improvements.md (jjj)). Where the stage knows more than the audio, it can say so, with
``--control HOST:PORT`` (``follower listen`` and ``follower replay``):

  /follower/reset           forget everything heard and identify afresh: the piece starts now
  /follower/listen i:0|1    0: forget everything heard and hear nothing (silence) until 1
                            (tuning, talking, applause); 1: hear the input again, afresh

With ``--osc-prefix P`` they are ``P/reset`` and ``P/listen``, so that each of several
followers can be told apart. Messages arrive on a server thread; the worker applies them
between two pushes of audio, in the order they came, so the engine is only ever touched by
one thread. A message the follower does not know is ignored, with one line on stderr.
"""

from __future__ import annotations

import queue
import sys
import threading

import numpy as np

from .errors import ConfigError
from .osc import DEFAULT_PREFIX, check_prefix, parse_host_port

DEFAULT_CONTROL = "127.0.0.1:9001"
RESET, LISTEN = "reset", "listen"


class Control:
    """A UDP OSC server for the messages of the module docstring; :meth:`take` hands them over."""

    def __init__(self, address: str = DEFAULT_CONTROL, prefix: str = DEFAULT_PREFIX):
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import BlockingOSCUDPServer

        self.prefix = check_prefix(prefix)
        host, port = parse_host_port(address, "--control", DEFAULT_CONTROL)
        dispatcher = Dispatcher()
        dispatcher.map(self.prefix + "/reset", self._reset)
        dispatcher.map(self.prefix + "/listen", self._listen)
        dispatcher.set_default_handler(self._unknown)
        try:
            self._server = BlockingOSCUDPServer((host, port), dispatcher)
        except OSError as e:  # the port is taken, or the address is not this machine's
            raise ConfigError(f"--control {address}: cannot receive there ({e.strerror or e}); give a free port "
                              f"of this machine, e.g. --control {DEFAULT_CONTROL}") from None
        bound_host, bound_port = self._server.server_address[:2]
        self.address = f"{bound_host}:{bound_port}"
        self._messages: queue.SimpleQueue = queue.SimpleQueue()
        self._warned: set = set()
        self.received = 0
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="follower-control", daemon=True)
        self._thread.start()

    def _reset(self, address: str, *args) -> None:
        self._messages.put((RESET, None))
        self.received += 1

    def _listen(self, address: str, *args) -> None:
        if len(args) != 1 or not isinstance(args[0], (int, float)) or args[0] not in (0, 1):
            self._warn(address, f"warning: OSC control {address} {' '.join(map(str, args))}: expected one "
                                "argument, 0 (hear nothing) or 1 (hear the input again); ignored")
            return
        self._messages.put((LISTEN, bool(args[0])))
        self.received += 1

    def _unknown(self, address: str, *args) -> None:
        self._warn(address, f"warning: OSC control {address}: not a message of the follower (it knows "
                            f"{self.prefix}/reset and {self.prefix}/listen 0|1); ignored")

    def _warn(self, key: str, line: str) -> None:
        if key not in self._warned:  # once per address: a sender that repeats itself must not flood the console
            self._warned.add(key)
            print(line, file=sys.stderr, flush=True)

    def take(self) -> list[tuple[str, bool | None]]:
        """The messages that came since the last call, oldest first: (RESET, None) or (LISTEN, on)."""
        out = []
        while True:
            try:
                out.append(self._messages.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1.0)


class Listening:
    """What the worker does with the control messages: restart the engine, or feed it silence."""

    def __init__(self, control: Control | None, name: str):
        self.control, self.name = control, name
        self.on = True

    def apply(self, engine, t_s: float) -> None:
        """Carry out the messages received since the last push (``t_s``: the audio time now)."""
        if self.control is None:
            return
        for kind, value in self.control.take():
            if kind == LISTEN and value == self.on:
                continue  # (a repeated message changes nothing)
            engine.restart()  # whatever was heard before belongs to no piece to come
            if kind == LISTEN:
                self.on = value
            line = ("identifying afresh" if self.on else f"hearing nothing until {self.control.prefix}/listen 1")
            print(f"{self.name}: {line} from {t_s:.1f} s ({self.control.prefix}/{kind})", file=sys.stderr, flush=True)

    def heard(self, data):
        """The audio the engine is to hear: ``data``, or silence of the same shape while not listening."""
        return data if self.on else np.zeros_like(data)
