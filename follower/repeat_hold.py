"""Keep the fine aligner's place when the embedding path moves elsewhere without evidence.

A literal repeat (the two Stollen of a chorale, a sonata's exposition written out twice)
sounds the same at both of its places. The embedding path (tracker, lock policy) cannot
tell them apart and may move the coarse position to the other place while the fine
aligner (:mod:`follower.aligner`) is following the music exactly where it is. Before this
rule the aligner was re-seeded at the coarse position whenever the two disagreed by more
than ``max_disagree_s``, so a move to the other occurrence became the reported position at
once (an error of the repeat's length, tens of seconds, until the music differed).

Now a disagreement opens a dispute. While it lasts, the aligner is anchored to its own
position and is still reported; each sounding frame compares how well the piece's note
templates match the frame near the coarse position and near the aligner's
(:meth:`follower.aligner.FineAligner.match`, the same window width on both sides, so a
literal repeat scores exactly even). The difference, less ``hold_margin``, accumulates
(leaking with ``hold_leak_s``, never below zero); once it reaches ``hold_evidence`` the
coarse position has proved itself (a real jump, a restart, an aligner that went astray)
and the aligner is re-seeded there. When the coarse position comes back within
``max_disagree_s`` of the aligner the dispute ends by itself.

A dispute opens only once the coarse path has moved, a second or more after a real jump:
the frames heard since then are evidence already. So the engine weighs them at once when a
dispute opens (``hold_backfill_s`` of them, oldest first, at both places' positions
extrapolated back at the tempo): a jump the audio already shows is followed at its
opening, while a literal repeat's frames still score even.
"""

from __future__ import annotations

import math


class RepeatHold:
    """The evidence of one dispute between the coarse and the fine position (see the module docstring)."""

    def __init__(self, *, margin: float, evidence: float, leak_s: float, fps: float):
        self.margin = float(margin)
        self.evidence = float(evidence)
        self._keep = math.exp(-1.0 / (max(leak_s, 1e-9) * fps))  # per frame
        self.against = 0.0       # accumulated evidence for the coarse position, in cosine-frames
        self.active = False

    @property
    def enabled(self) -> bool:
        return self.evidence > 0

    def clear(self) -> None:
        """No dispute (the two agree again, or the aligner was re-seeded)."""
        self.against, self.active = 0.0, False

    def open(self) -> None:
        """A dispute begins: the coarse position moved away from the aligner's."""
        self.against, self.active = 0.0, True

    def observe(self, coarse_match: float, fine_match: float) -> bool:
        """Fold in one sounding frame's matches; True once the coarse position has won."""
        self.against = max(0.0, self._keep * self.against + coarse_match - fine_match - self.margin)
        return self.against >= self.evidence
