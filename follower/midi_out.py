"""MIDI out (``--midi-out PORT``): clock, song position and bar/beat, so a DAW plays along.

An output beside OSC (``osc.py``) and JSON lines (``jsonlog.py``): ``emit(update)``
for each engine update, ``close()`` at the end. What goes out:

* **MIDI clock** (0xF8), 24 per quarter note, at the followed tempo (the update's
  ``bpm``: the tempo ratio times the MIDI's written bpm). Clocks are placed by the
  followed *position*, not only by the tempo: the k-th clock after a locate goes out
  when the position (extrapolated at the tempo from the newest update) reaches the
  located beat plus k/24, at most twice as fast as the tempo when catching up. So the
  clock count tracks the player, never runs more than the look-ahead (0.1 s) past the
  reported position, and halts when the player pauses.
* **Transport**. On lock: Song Position Pointer (0xF2, in sixteenth notes: the
  position rounded down to a sixteenth) then Continue (0xFB), or Start (0xFA) when the
  position is the very beginning. On a jump (the position and the clock disagree by
  more than ``jump_beats``) or a new piece: Stop (0xFC), SPP, Continue. When the follower
  is lost or searching again: Stop; on relocking: SPP, Continue. At the end: Stop.
* **Bar and beat** as control changes on ``channel`` (default 16), controllers that
  General MIDI leaves undefined: CC 20 = bar // 128, CC 21 = bar % 128 (bar 1-based,
  counted from the MIDI's start in bars of ``beats_per_bar`` quarter notes), then
  CC 22 = beat in the bar (1-based). Sent with each clock that lands on a beat and after
  every locate; CC 22 last, so a receiver may latch the bar when CC 22 arrives. CC 23 =
  state (0 searching, 1 following, 2 lost), on change.

Timing. Messages are planned in the stream's own time (seconds of audio, or of MIDI
input, consumed: the update's ``t``) by :class:`ClockPlanner`, which is pure and
tested without ports. In real time a sender thread sends each message when its time
comes (audio time mapped to the monotonic clock by the earliest update seen, so the
worker's processing jitter does not shift it); with ``--fast`` replay, there is no
real time to keep and messages go out as they are planned. Each message carries its
planned time in mido's ``time`` attribute (ports ignore it).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass

from .config import JsonConfig
from .errors import ConfigError

CLOCKS_PER_BEAT = 24
SPP_MAX = 16383                 # 14 bits of sixteenth notes
STATES = {"searching": 0, "following": 1, "lost": 2}


@dataclass(frozen=True)
class MidiOutConfig(JsonConfig):
    channel: int = 16               # 1..16: channel of the bar/beat control changes
    cc_bar_msb: int = 20
    cc_bar_lsb: int = 21
    cc_beat: int = 22
    cc_state: int = 23
    beats_per_bar: float = 4.0      # quarter notes per bar, for the bar/beat numbers
    jump_beats: float = 2.0         # clock and followed position this far apart -> relocate
    lookahead_s: float = 0.1        # clocks planned this far past the newest update
    max_catch_up: float = 2.0       # catching up, clocks go at most this many times the tempo's rate

    def __post_init__(self):
        if not 1 <= int(self.channel) <= 16:
            raise ConfigError(f"--midi-out-channel {self.channel} must be 1..16")
        if not self.beats_per_bar > 0:
            raise ConfigError(f"--beats-per-bar {self.beats_per_bar} must be positive")
        for name in ("cc_bar_msb", "cc_bar_lsb", "cc_beat", "cc_state"):
            if not 0 <= getattr(self, name) <= 119:
                raise ConfigError(f"{name}={getattr(self, name)} must be a controller number 0..119")


def bar_beat(position_beats: float, beats_per_bar: float) -> tuple[int, int]:
    """1-based (bar, beat in bar) of a position in quarter notes from the MIDI's start."""
    b = max(float(position_beats), 0.0)
    bar = int(math.floor(b / beats_per_bar + 1e-9))
    beat = int(math.floor(b - bar * beats_per_bar + 1e-9))
    return bar + 1, beat + 1


class ClockPlanner:
    """Engine updates in, timed MIDI messages out; see the module docstring."""

    def __init__(self, config: MidiOutConfig | None = None):
        self.config = config or MidiOutConfig()
        self.running = False
        self.piece = None
        self.clock_beats = 0.0      # the position the clocks sent so far stand for
        self.clocks = 0             # clocks since the last locate
        self.spp_beats = 0.0        # where the last locate put the transport (quarter notes)
        self.spp_clocks = 0
        self.last_t = -math.inf     # time of the last planned message (plans never go back in time)
        self.state = None
        self.locates = 0

    def _msg(self, t: float, kind: str, **kw):
        import mido

        t = max(t, self.last_t)
        self.last_t = t
        return mido.Message(kind, time=t, **kw)

    def _cc(self, t, control, value):
        return self._msg(t, "control_change", channel=self.config.channel - 1, control=int(control),
                         value=int(min(max(value, 0), 127)))

    def _bar_beat(self, t, beats) -> list:
        bar, beat = bar_beat(beats, self.config.beats_per_bar)
        bar = min(bar, 128 * 128 - 1)
        c = self.config
        return [self._cc(t, c.cc_bar_msb, bar // 128), self._cc(t, c.cc_bar_lsb, bar % 128),
                self._cc(t, c.cc_beat, beat)]

    def step(self, u) -> list:
        """The messages one update calls for, with their planned times, in order."""
        out = []
        t = float(u.t)
        if u.state != self.state:
            out.append(self._cc(t, self.config.cc_state, STATES.get(u.state, 0)))
            self.state = u.state
        following = u.state == "following" and u.piece is not None and u.position_beats is not None
        if not following:
            if self.running:
                out.append(self._msg(t, "stop"))
                self.running = False
            return out
        pos, bpm = float(u.position_beats), float(u.bpm or 0.0)
        if not self.running or u.piece != self.piece or abs(pos - self.clock_beats) > self.config.jump_beats:
            out += self.locate(t, pos, u.piece)
        if bpm <= 0:
            return out
        rate = bpm / 60.0 * CLOCKS_PER_BEAT           # clocks per second at the followed tempo
        min_gap = 1.0 / (rate * self.config.max_catch_up)
        horizon = t + self.config.lookahead_s
        while True:
            nxt = self.clock_beats + 1.0 / CLOCKS_PER_BEAT
            due = max(t + (nxt - pos) * CLOCKS_PER_BEAT / rate, self.last_t + min_gap)
            if due > horizon:
                break
            out.append(self._msg(due, "clock"))
            self.clocks += 1
            self.clock_beats = self.spp_beats + self.clocks / CLOCKS_PER_BEAT
            if (self.spp_clocks + self.clocks) % CLOCKS_PER_BEAT == 0:  # this clock lands on a beat
                out += self._bar_beat(due, self.clock_beats)
        return out

    def locate(self, t: float, position_beats: float, piece) -> list:
        """Stop (if running), Song Position Pointer at the position's sixteenth, Continue (Start at 0)."""
        out = [self._msg(t, "stop")] if self.running else []
        spp = int(min(max(math.floor(position_beats * 4 + 1e-9), 0), SPP_MAX))
        self.spp_beats = spp / 4.0
        self.spp_clocks = spp * 6
        self.clocks = 0
        self.clock_beats = self.spp_beats
        if spp == 0:
            out.append(self._msg(t, "start"))
        else:
            out += [self._msg(t, "songpos", pos=spp), self._msg(t, "continue")]
        out += self._bar_beat(t, self.spp_beats)
        self.running, self.piece = True, piece
        self.locates += 1
        return out

    def finish(self, t: float) -> list:
        """What closing sends: Stop, if the transport runs."""
        if not self.running:
            return []
        self.running = False
        return [self._msg(t, "stop")]


class MidiClockOut:
    """The ``--midi-out`` output; ``port`` is a port name (see :mod:`follower.midi_ports`) or an open mido port."""

    def __init__(self, port, *, realtime: bool = True, config: MidiOutConfig | None = None):
        from .midi_ports import open_output

        self.planner = ClockPlanner(config)
        self._owned = isinstance(port, str)
        self.port = open_output(port) if self._owned else port
        self.realtime = realtime
        self.sent = 0
        self.errors = 0
        self._last_t = 0.0
        self._offset = None            # monotonic seconds minus stream seconds, the smallest seen
        self._pending: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._closing = False
        self._thread = None
        if realtime:
            self._thread = threading.Thread(target=self._sender, name="midi-out", daemon=True)
            self._thread.start()

    def _send(self, msg) -> None:
        try:
            self.port.send(msg)
            self.sent += 1
        except Exception:  # noqa: BLE001 - a vanished port must not stop the follower
            self.errors += 1

    def emit(self, u) -> None:
        self._last_t = float(u.t)
        msgs = self.planner.step(u)
        if not self.realtime:
            for m in msgs:
                self._send(m)
            return
        now = time.monotonic()
        with self._cv:
            self._offset = now - u.t if self._offset is None else min(self._offset, now - u.t)
            self._pending.extend(msgs)
            self._cv.notify()

    def _sender(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._closing:
                    self._cv.wait()
                if not self._pending:
                    return
                msg = self._pending[0]
                wait = self._offset + msg.time - time.monotonic()
                if wait > 0 and not self._closing:
                    self._cv.wait(wait)  # woken early by new messages or close: look again
                    continue
                self._pending.popleft()
            self._send(msg)

    def close(self) -> None:
        if self._thread is not None:
            with self._cv:
                self._closing = True  # what is still planned goes out now, then the Stop
                self._cv.notify()
            self._thread.join(timeout=2)
        for m in self.planner.finish(max(self._last_t, self.planner.last_t)):
            self._send(m)
        if self._owned:
            try:
                self.port.close()
            except Exception:  # noqa: BLE001 - the device may already be gone
                pass
