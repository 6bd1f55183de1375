"""Music that starts after silence starts at the beginning of a piece more often than anywhere else.

Many pieces play their opening twice (the two Stollen of a chorale, an exposition's repeat,
a verse sung again). When the players start from the top, the first seconds sound the same
at the piece's beginning and at its repeat, and the lock lands on either, decided by noise
in the scores: on validation renders from the first note (`python -m benchmarks.material
--set tuning --from-start`) 3 of 24 locked on the repeat and stayed there 8-24 s off until
the music differed, every update of that time a wrong position for whatever listens.

So a lock taken within ``start_prior_s`` of the music starting (the first sounding frame
after ``pause_s`` without one, or the first of the stream) also weighs the place the players
would be at had they started at the piece's first note: every sounding frame heard since the
start is matched against the note templates along both places (the locked one extrapolated
back at the lock's tempo, the other forward from the first note), by the evidence rule of a
disputed move (:class:`follower.repeat_hold.RepeatHold`: the same margin and evidence). If
the frames do not prove the locked place better, the beginning is taken. Where the two are
different music the locked place proves itself within a fraction of a second of frames;
where they are the same notes nothing the audio holds can choose, and the beginning is the
likelier. Music started elsewhere in a piece is not moved unless it sounds exactly like the
piece's opening, or like an earlier place of it: music written out twice or more (a tune's
strains, an exposition written out again) plays the same notes at each statement, and a lock
on a later one is moved to the earliest whose notes over everything heard are the same
(:func:`follower.same_notes.copies_before`) and whose frames do not prove worse, by the same
rule. Players start a passage's first statement more often than a later one, and a lock on the
last statement runs off the piece's end while they go on (docs/improvements.md (ss)).
"""

from __future__ import annotations

import numpy as np

from .repeat_hold import RepeatHold
from .same_notes import copies_before


class StartPrior:
    """The frames heard since the music started, and the check a fresh lock makes with them."""

    def __init__(self, *, start_prior_s: float, pause_s: float, fps: float, margin: float, evidence: float,
                 leak_s: float):
        self.fps = float(fps)
        self.max_frames = int(round(start_prior_s * fps))
        self.pause_frames = max(1, int(round(pause_s * fps)))
        self._rule = RepeatHold(margin=margin, evidence=evidence, leak_s=leak_s, fps=fps)
        self._frames = None  # (max_frames, frame size), made at the first frame (audio bins or roll pitches)
        self._loud = np.zeros(self.max_frames, bool)
        self.reset()

    @property
    def enabled(self) -> bool:
        return self.max_frames > 0 and self._rule.enabled

    def reset(self) -> None:
        self.heard = 0            # frames since the music started (0 before any)
        self._started = False
        self._quiet = 0           # sounding-free frames in a row

    def add(self, frame: np.ndarray, loud: bool) -> None:
        """One frame of the stream, oldest first."""
        if loud:
            if not self._started or self._quiet >= self.pause_frames:
                self._started, self.heard = True, 0  # music starts (again)
            self._quiet = 0
        else:
            self._quiet += 1
        if self._started:
            if self.heard < self.max_frames:
                if self._frames is None:
                    self._frames = np.zeros((self.max_frames, len(frame)), np.float32)
                self._frames[self.heard] = frame
                self._loud[self.heard] = loud
            self.heard += 1

    def place(self, aligner, lock_s: float, first_note_s: float, tempo: float, min_apart_s: float,
              notes=None) -> float | None:
        """The place at the newest frame had the players started at ``first_note_s``, where a lock at
        ``lock_s`` (the aligner's coordinates, newest frame) should take it instead; else None.

        ``notes`` (the piece's (onset, end, pitch)): also the earlier copies of what the lock has
        heard (:func:`follower.same_notes.copies_before`), the earliest first, each taken unless the
        frames prove the locked place, as the beginning is."""
        n = self.heard
        if not self.enabled or not self._started or n == 0 or n > self.max_frames:
            return None
        start_now_s = first_note_s + tempo * (n - 1) / self.fps
        places = [start_now_s]
        if notes is not None:
            places += copies_before(notes, lock_s, tempo, n / self.fps, earliest_s=start_now_s + min_apart_s,
                                    latest_s=lock_s - min_apart_s)
        for place_s in places:
            if abs(place_s - lock_s) > min_apart_s and not self._proves(aligner, lock_s, place_s, tempo, n):
                return place_s
        return None

    def _proves(self, aligner, lock_s: float, other_s: float, tempo: float, n: int) -> bool:
        """Do the ``n`` frames heard prove the locked place better than ``other_s`` (both at the newest
        frame), by the evidence rule of a disputed move?"""
        self._rule.clear()
        for j in np.flatnonzero(self._loud[:n]):
            back_s = tempo * (n - 1 - j) / self.fps
            if self._rule.observe(aligner.match(self._frames[j], lock_s - back_s),
                                  aligner.match(self._frames[j], other_s - back_s)):
                return True
        return False
