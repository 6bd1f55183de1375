"""Players far slower than the MIDI's written tempo: a second engine that hears them twice as fast.

A MIDI file's tempo is often a sequencer's default rather than the music's, and players
take a piece at 0.35x of it as readily as at 1x. The encoders were trained on tempi
of about 0.6-1.25x of the written one (training.augment.tempo) and the decoder
follows 0.5-2x (``TrackerConfig.tempo_min``, the re-ranking's path): below that the
2.1 s audio window holds less than a second of written music, single snippets are
retrieved poorly, and the engine either waits long or locks onto a piece that shares a
bar with it (on validation renders at 0.35-0.5x, `python -m benchmarks.material --set
tuning --tempo 0.35,0.5`: a median of 3.6 s to a stable name, p90 26 s, one of 18 wrong
at the end, four followed on a wrong piece for 3-8 s).

:class:`TwoSpeedEngine` runs the engine twice on the same audio: as it is, and with
each pair of spectrogram frames averaged into one (``Engine(speed=2)``), so that a
player at 0.4x sounds at 0.8x, well within what both know. The second engine updates
every other frame, about half the first one's cost, and only while it may come to be heard
(``active_tempo``); otherwise its frames still enter its window. Which of the two the outputs
hear:

* the engine at the written tempo, unless
* it is not following, or follows at a tempo of ``handover_tempo`` or below (the
  bottom of its range: where its tempo estimate sits when the player is slower
  still), or follows another piece than the slow engine, which hears the player at
  ``handover_tempo`` or below and whose paths back its piece better (``disagree_handover``:
  a wrong lock of the first engine keeps a tempo of its own choosing, above the
  handover), *and* the slow engine has
  followed one piece for ``settle_s`` and does so at below ``slow_tempo_max`` (its own
  tempo estimate, in real time: it hears the player in its range). From then on
* the slow engine is heard for as long as it follows at below ``slow_tempo_max``;
  a lock of the first engine meanwhile does not take over. On those renders the
  first engine, its tempo pinned at the bottom of its range, switched to a wrong piece
  twice *after* both had named the right one. Unless (``handback``)
* the first engine follows another piece at ``handback_tempo`` or faster for ``settle_s``
  while the slow engine's own paths have not backed its piece for as long (its update's
  confidence below ``handback_weak``): music near the written tempo that both engines
  first took for a wrong piece, the slow engine hearing it at twice that and following
  nothing, the first engine having found the right piece within its range (a validation
  piano render in a large room followed on a wrong piece for 20 s, now 6.7 s; no other
  of 488 validation renders changed, docs/improvements.md (iii)).

At the written tempo and above, the slow engine hears the music at 1.5-4x, far outside
its range: it may lock wrong there, but then at a tempo far above ``slow_tempo_max``,
and it is not heard (on renders at 1.6-2x it locks wrong on 12 of 18 alone; with the pair
the outputs scored exactly as the first engine's).

Its timers run on its own clock (a second of it is two of the audio's), except the pause: a
silence is counted in real seconds by both engines (``EngineConfig.pause_hold_s``), so that a
wrong lock of the slow engine on what was played before the music (players tuning, held open
strings) is let go in a pause as the first engine's is (docs/improvements.md (jjj)).

Its updates come every 100 ms; the one heard between two of them is the newer one
restamped (at 0.7x or slower, 50 ms of audio is 35 ms or less of the score).
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from dataclasses import dataclass

from .config import JsonConfig
from .engine import FOLLOWING, Engine, Update
from .errors import ConfigError


@dataclass(frozen=True)
class TwoSpeedConfig(JsonConfig):
    # chosen on validation renders at 0.35-0.5x, 0.5-0.7x, 0.75-1.3x and 1.6-2x of the written tempo (seed 21
    # of `benchmarks.material --set tuning --tempo`; docs/improvements.md (mm))
    speed: int = 2                # frames averaged into one by the slow engine
    # the first engine at or below this tempo (or not following) hands over ... Its tempo is smoothed and
    # kept >= 0.5 (TrackerConfig.tempo_min): for a player below that it sits at 0.50-0.53, while 0.55-0.6
    # is a player it follows well (0.6 handed a 0.57x passage to the slow engine, which sat on the other
    # copy of a repeated line; at 0.55 the validation sets score the same or better)
    handover_tempo: float = 0.55
    slow_tempo_max: float = 0.7   # ... to the slow engine following below this tempo (real time), until it no longer does
    # ... once it has followed that piece this long: it locks at one of seven fixed tempi, all <= 0.7x
    # in real time, whatever the player's tempo; its estimate needs a second to move from there
    settle_s: float = 1.0
    # the slow engine updates only while it may come to be heard: the first engine is not following,
    # or follows below this tempo, or the slow engine itself follows below slow_tempo_max. Otherwise
    # its frames still enter its window (and its re-ranking's history) and it waits
    active_tempo: float = 0.8
    # the two follow different pieces, the slow engine, settled, hears the player at handover_tempo or below
    # (real time), and its verified paths back its piece better than the first engine's back the first
    # engine's (the updates' confidence): the slow engine is heard even while the first engine's tempo is
    # above the handover. A first engine locked on a wrong piece sits at a tempo of its own choosing (at or
    # near its lowest lock tempo, 0.7) and never hands over while it does. Without the comparison of the
    # paths, a slow engine astray in a slow passage took over from a first engine that followed well.
    # Chosen on validation renders at 0.35-0.5x, 0.5-0.7x and with jumps (docs/improvements.md (aaa))
    disagree_handover: bool = True
    # while the slow engine is heard, the first engine follows another piece at this tempo or above (a
    # player it hears well within its range, not pinned at its bottom), and the slow engine's own paths
    # have not backed its piece (confidence below handback_weak) for settle_s: the first engine is heard
    # again. Both conditions: a slow player's engine, backed by its paths, stays heard where the first
    # engine switches to a wrong piece at 0.9x (a validation render at 0.35-0.5x did so without the second)
    handback: bool = True
    handback_tempo: float = 0.8
    handback_weak: float = 0.1

    def __post_init__(self):
        if (self.speed < 2 or not 0 < self.handover_tempo <= self.slow_tempo_max or self.settle_s < 0
                or self.active_tempo < self.handover_tempo):
            raise ConfigError("two_speeds: speed >= 2, 0 < handover_tempo <= slow_tempo_max, settle_s >= 0, "
                              "active_tempo >= handover_tempo")


class TwoSpeedEngine:
    """The engine's interface (:meth:`push`, :meth:`warm_up`, :meth:`reset`, ...) over two engines."""

    def __init__(self, bundle, index, *, input_rate_hz: float, config=None, two_speeds: TwoSpeedConfig | None = None):
        self.two_speeds = two_speeds or TwoSpeedConfig()
        self.main = Engine(bundle, index, input_rate_hz=input_rate_hz, config=config)
        self.slow = Engine(bundle, index, input_rate_hz=input_rate_hz, config=config, speed=self.two_speeds.speed)
        self.bundle, self.index, self.config = bundle, index, self.main.config
        self.fps, self.update_s = self.main.fps, self.main.update_s
        self._reset_choice()

    def _reset_choice(self) -> None:
        self.heard = "main"        # whose updates the outputs hear: "main" or "slow"
        self._slow_last: Update | None = None
        self._slow_since: tuple | None = None  # (t, piece) since which the slow engine follows that piece
        self._main_last: Update | None = None  # the first engine's newest update before this block
        self._last: Update | None = None
        self._last_heard = "main"
        self._main_since: tuple | None = None  # (t, piece) since which the first engine follows that piece in range
        self._slow_weak_since: float | None = None  # since when the slow engine's paths have not backed its piece

    def warm_up(self) -> None:
        self.main.warm_up()
        self.slow.warm_up()

    def reset(self) -> None:
        self.main.reset()
        self.slow.reset()
        self._reset_choice()

    def restart(self) -> None:
        self.main.restart()
        self.slow.restart()
        self._reset_choice()

    @property
    def tuning_cents(self) -> int:
        return self.main.tuning_cents  # the slow engine hears the first one's frames

    @property
    def skipped_updates(self) -> int:
        return self.main.skipped_updates

    @property
    def state(self) -> str:
        return self._last.state if self._last is not None else self.main.state

    @property
    def evidence_on(self) -> bool:
        return self.main.evidence_on

    def evidence(self):
        return self.main.evidence()

    def push(self, block, *, last: bool = False, max_updates: int | None = None) -> list[Update]:
        """As :meth:`follower.engine.Engine.push`: one update per update of the first engine."""
        t0 = time.perf_counter()
        frames = self.main.frames_of(block, last=last)  # one front end for both: the same frames
        ups = self.main.push_frames(frames, max_updates=max_updates, since=t0)
        slow_max = None if max_updates is None else max(1, max_updates // self.two_speeds.speed)
        slow = self.slow.push_frames(frames, max_updates=slow_max, wanted=self._slow_wanted(ups))
        out, j = [], 0
        for u in ups:
            cost_ms = u.latency_ms
            while j < len(slow) and slow[j].t <= u.t + 1e-9:
                self._see_slow(slow[j])
                if abs(slow[j].t - u.t) < 1e-9:
                    cost_ms += slow[j].latency_ms  # both engines' work in this update, whichever is heard
                j += 1
            out.append(self._choose(u, cost_ms))
        for s in slow[j:]:
            self._see_slow(s)
        return out

    def _slow_wanted(self, ups: list[Update]):
        """``wanted(t)`` for the slow engine's updates: from the first engine's updates up to ``t`` (this
        block's, computed before) and the slow engine's own state, so the same whatever the blocks."""
        c, slow, main_last = self.two_speeds, self.slow, self._main_last
        times = [u.t for u in ups]

        def wanted(t_s: float) -> bool:
            k = bisect.bisect_right(times, t_s + 1e-9)
            m = ups[k - 1] if k else main_last
            if m is None or m.state != FOLLOWING or m.tempo is None or m.tempo < c.active_tempo:
                return True
            return (slow.state == FOLLOWING and slow.tracker is not None
                    and slow.tracker.tempo / slow.speed < c.slow_tempo_max)

        if ups:
            self._main_last = ups[-1]
        return wanted

    def _see_slow(self, s: Update) -> None:
        self._slow_last = s
        if s.state != FOLLOWING or s.confidence >= self.two_speeds.handback_weak:
            self._slow_weak_since = None
        elif self._slow_weak_since is None:
            self._slow_weak_since = s.t
        if s.state != FOLLOWING:
            self._slow_since = None
        elif self._slow_since is None or self._slow_since[1] != s.piece:
            self._slow_since = (s.t, s.piece)

    def _hand_back(self, u: Update, s: Update) -> bool:
        """While the slow engine is heard: does the first engine now follow another piece well within
        its range, for ``settle_s``, on paths that back it better than the slow engine's back its own?"""
        c = self.two_speeds
        return (c.handback and self._main_since is not None and u.piece != s.piece
                and u.t - self._main_since[0] >= c.settle_s and u.confidence > s.confidence
                and self._slow_weak_since is not None and s.t - self._slow_weak_since >= c.settle_s)

    def _see_main(self, u: Update) -> None:
        if u.state != FOLLOWING or u.tempo is None or u.tempo < self.two_speeds.handback_tempo:
            self._main_since = None
        elif self._main_since is None or self._main_since[1] != u.piece:
            self._main_since = (u.t, u.piece)

    def _choose(self, u: Update, cost_ms: float) -> Update:
        c, s = self.two_speeds, self._slow_last
        self._see_main(u)
        slow_in_range = (s is not None and s.state == FOLLOWING and s.tempo is not None
                         and s.tempo < c.slow_tempo_max and s.t - self._slow_since[0] >= c.settle_s)
        if self.heard == "main":
            main_in_range = u.state == FOLLOWING and u.tempo is not None and u.tempo > c.handover_tempo
            if slow_in_range and (not main_in_range or (c.disagree_handover and u.piece != s.piece
                                                        and s.tempo <= c.handover_tempo
                                                        and s.confidence > u.confidence)):
                self.heard = "slow"
        elif not slow_in_range or self._hand_back(u, s):
            self.heard = "main"
        u.latency_ms = cost_ms  # (the engine's own update, as the engine sets it)
        chosen = u
        if self.heard == "slow":  # the slow engine's newest update, restamped now (it may be heard twice)
            chosen = dataclasses.replace(s, t=u.t, latency_ms=cost_ms)
        prev = self._last
        # the flags say what changed since the last update the outputs heard: the first engine's own
        # say so while it alone is heard; the slow engine's are 100 ms old and come twice
        if prev is not None and (self.heard != "main" or self._last_heard != "main"):
            chosen = dataclasses.replace(chosen, piece_changed=prev.piece != chosen.piece,
                                         state_changed=prev.state != chosen.state)
        self._last, self._last_heard = chosen, self.heard
        return chosen
