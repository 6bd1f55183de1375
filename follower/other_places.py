"""Where else the player may be: the places of the followed piece that play what was heard.

A score that writes a passage out twice (a repeated opening, a tune's strains, an
exposition repeat) sounds the same at both places until the music differs. A player who
starts in the second statement, or skips back to the first, cannot be told from one at
the other before then, by this follower or any other: the engine reports one place (the
earliest after a lock, the nearest after a jump), and cues tied to one statement would
fire at the other. So every update while following also names the other places
(``Update.also_at_s``): those whose notes, over the audio heard since the follower last
placed itself, are the notes at the reported place. An empty list: the place is unique.

"Placed itself": a lock, a switch, or a reported position that moved more than
``PLACE_MOVE_S`` beyond what the tempo says (a jump, the fine aligner or the coarse path
moving elsewhere). From then on the span compared grows with the audio (from the
engine's window, the least audio a place was found on, to ``follower.same_notes.SPAN_S``),
so that places drop out as soon as enough music differs there. A full search of the piece
(:func:`follower.same_notes.lag_overlaps` at every lag ``MIN_APART_S`` or more away; 4 ms for
a piece of 22 minutes) is made once per placement; later updates only check the places
found, every ``RECHECK_S`` of audio.
"""

from __future__ import annotations

import numpy as np

from .same_notes import COPY_STEP_S, SPAN_S, dice_threshold, lag_overlaps, packed_roll

MIN_APART_S = 2.0    # another place lies at least this far (MIDI s) from the reported one: a phrase away
PLACE_MOVE_S = 1.0   # a reported position this far off the tempo's continuation is a new placement
RECHECK_S = 0.5      # audio between two checks of the places found
SHIFT_STEPS = 2      # a place is checked this many grid steps either side (a repeat written out with timings of its own)
_APART = int(np.ceil(MIN_APART_S / COPY_STEP_S - 1e-9))  # MIN_APART_S in grid steps


class OtherPlaces:
    """The other places of the followed piece, kept from update to update (one per engine).

    ``window_s``: the audio a placement rests on at least (the engine's window, in audio s).
    """

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._need = dice_threshold()
        self.reset()

    def reset(self) -> None:
        self._piece = None
        self._rolls = None
        self._last = None           # (t_s, position_s) of the previous update
        self._placed_t = 0.0        # audio time of the last placement
        self._offsets = None        # MIDI s from the reported place to each other place; None: not searched yet
        self._checked_t = 0.0

    def places(self, t_s: float, piece, notes, position_s: float | None, tempo: float | None) -> list[float]:
        """The other places (MIDI s, earliest first) for this update; ``piece`` None (not following) forgets
        everything. ``notes``: the piece's (onset, end, pitch), or None where the index has none."""
        if piece is None or notes is None or position_s is None or not tempo or len(notes[0]) == 0:
            self.reset()
            return []
        if piece != self._piece:
            self.reset()
            self._piece, self._rolls = piece, packed_roll(notes)
            self._placed_t = t_s
        elif self._last is not None:
            last_t, last_pos = self._last
            if abs(position_s - (last_pos + tempo * (t_s - last_t))) > PLACE_MOVE_S:
                self._placed_t, self._offsets = t_s, None
        self._last = (t_s, position_s)
        heard_s = min(t_s - self._placed_t + self.window_s, SPAN_S)
        if self._offsets is None:
            self._offsets = self._search(position_s, tempo, heard_s)
            self._checked_t = t_s
        elif self._offsets and t_s - self._checked_t >= RECHECK_S - 1e-9:
            self._offsets = self._check(position_s, tempo, heard_s)
            self._checked_t = t_s
        end_s = (len(self._rolls[0]) - 1) * COPY_STEP_S
        return [float(min(max(position_s + d, 0.0), end_s)) for d in self._offsets]

    def _search(self, position_s: float, tempo: float, heard_s: float) -> list[float]:
        """Offsets of the best lag of each run of lags at or above the threshold, earliest place first."""
        n = len(self._rolls[0])
        here = int(round(position_s / COPY_STEP_S))
        lags = np.concatenate([np.arange(here, _APART - 1, -1), np.arange(-_APART, here - n, -1)])  # earliest first
        if len(lags) == 0:
            return []
        o = lag_overlaps(self._rolls, position_s, tempo, heard_s, lags)
        out, k = [], 0
        while k < len(lags):
            if o[k] < self._need:
                k += 1
                continue
            run = k
            while k < len(lags) and o[k] >= self._need and (k == run or lags[k] == lags[k - 1] - 1):
                k += 1
            best = run + int(np.argmax(o[run:k]))
            out.append(-float(lags[best]) * COPY_STEP_S)
        return out

    def _check(self, position_s: float, tempo: float, heard_s: float) -> list[float]:
        """The offsets whose places still play the notes, each moved to its best lag nearby."""
        kept = []
        for d in self._offsets:
            centre = -int(round(d / COPY_STEP_S))
            lags = np.arange(centre - SHIFT_STEPS, centre + SHIFT_STEPS + 1)
            lags = lags[np.abs(lags) >= _APART]  # (a place never drifts onto the reported one)
            o = lag_overlaps(self._rolls, position_s, tempo, heard_s, lags)
            if len(o) and o.max() >= self._need:
                lag = int(lags[int(np.argmax(o))])
                if all(abs(lag + round(k / COPY_STEP_S)) > SHIFT_STEPS for k in kept):  # two drifted onto one
                    kept.append(-float(lag) * COPY_STEP_S)
        return kept
