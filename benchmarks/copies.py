"""Which position misses land on a place whose notes are the truth's.

Music written out twice (a repeated opening, a tune's strains, a recapitulation) plays
the same notes at two places of the MIDI. A player who starts in the second statement,
or whose skip lands on the first, sounds exactly as they would at the other one until
the music differs; neither this follower nor any other can tell the two apart from the
audio before then. The following table counts a report at the other statement as a
miss, as it should (a cue tied to one statement fires at the wrong one). This module
says how many of the misses are of that kind, so that the misses left are the ones a
better follower could avoid, and of those how many the follower said it might be at
(``also_at_s``, :mod:`follower.other_places`).

A report at audio time ``t`` on the right piece, more than ``tolerance_s`` from the
truth, is *at a copy* where the notes the truth has played over the audio heard since
the segment began (the item's start, or the rendition's last jump; ``SPAN_S`` at most)
are, shifted by the report's offset from the truth, the same notes: the product's own
test of two places playing the same notes (:data:`follower.same_notes.SAME_NOTES`,
Jaccard overlap 0.7, here as its Dice equivalent, a note counting within one
``STEP_S`` grid step of where the other has it). The copy may lie anywhere within
``tolerance_s`` of the report, as the truth may for a hit, and must lie ``MIN_APART_S`` or
more from the truth: another statement, not the truth's own notes seen a little off (a
held chord matches itself shifted by a fraction of its length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follower.other_places import MIN_APART_S  # a copy lies this far from the truth at least: a phrase away
# the follower's own settings of the test: the grid (its frame), at most SPAN_S of audio compared, sampled at
# STEPS instants, MIN_SOUNDING sounding (instant, pitch) cells needed between the two stretches
from follower.same_notes import COPY_STEP_S as STEP_S, MIN_SOUNDING, SPAN_S, STEPS as INSTANTS, dice_threshold

MIN_HEARD_S = 2.0    # less audio heard since the segment began: too little to call it a copy


@dataclass(frozen=True)
class Misses:
    """An item's reports on the right piece while following, where the truth is defined."""

    locked: int        # such reports
    missed: int        # ... more than the tolerance from the truth
    at_copy: int       # ... of which at a place whose notes are the truth's
    named: int = 0     # ... of which the report also named the truth's place (``also_at_s``)
    names_places: bool = False  # the system reports other places at all (its records have ``also_at_s``)


def piano_roll(notes: np.ndarray, step_s: float = STEP_S) -> np.ndarray:
    """(frames, 128) bool: pitch sounding at the middle of each ``step_s`` frame (NOTE_DTYPE notes)."""
    n = int(np.ceil(float(notes["end_s"].max()) / step_s)) + 1 if len(notes) else 1
    roll = np.zeros((n, 128), np.bool_)
    for start, end, pitch in zip(notes["start_s"], notes["end_s"], notes["pitch"]):
        a = max(int(np.ceil(start / step_s - 0.5)), 0)
        b = min(int(np.ceil(end / step_s - 0.5)), n)
        roll[a:b, int(pitch)] = True
    return roll


def _dilated(roll: np.ndarray) -> np.ndarray:
    out = roll.copy()
    out[1:] |= roll[:-1]
    out[:-1] |= roll[1:]
    return out


def same_notes_within(roll: np.ndarray, truth_s: np.ndarray, offset_s: float, tolerance_s: float,
                      dil: np.ndarray | None = None) -> bool:
    """Do the notes at MIDI instants ``truth_s`` recur at ``truth_s + d`` for some ``d`` within
    ``tolerance_s`` of ``offset_s`` and ``MIN_APART_S`` or more from 0?"""
    dil = _dilated(roll) if dil is None else dil  # (``dil``: the roll's _dilated, where the caller keeps it)
    n = len(roll)
    rows = np.round(truth_s / STEP_S - 0.5).astype(np.int64)
    inside = (rows >= 0) & (rows < n)
    rows = rows[inside]
    if rows.size == 0:
        return False
    a, da = roll[rows], dil[rows]
    need = dice_threshold()
    centre = int(round(offset_s / STEP_S))
    reach = int(np.floor(tolerance_s / STEP_S + 1e-9))
    apart = int(np.ceil(MIN_APART_S / STEP_S - 1e-9))
    for lag in range(centre - reach, centre + reach + 1):
        if abs(lag) < apart:
            continue
        r = rows + lag
        ok = (r >= 0) & (r < n)
        b = np.zeros_like(a)
        db = np.zeros_like(a)
        b[ok], db[ok] = roll[r[ok]], dil[r[ok]]
        total = np.count_nonzero(a) + np.count_nonzero(b)
        if total < 2 * MIN_SOUNDING:
            continue
        if (np.count_nonzero(a & db) + np.count_nonzero(b & da)) / total >= need:
            return True
    return False


def count_misses(records: list[dict], true_piece: str, truth, notes: np.ndarray,
                 tolerance_s: float = 0.5) -> Misses:
    """:class:`Misses` of one run on one item (``truth`` a TimeMap or JumpMap, ``notes`` the true piece's)."""
    from .metrics import normalise_piece

    roll = piano_roll(notes)
    dil = _dilated(roll)  # once per item, not per miss
    starts = [0.0] + list(getattr(truth, "jumps_s", []))
    locked = missed = at_copy = named = 0
    names_places = any("also_at_s" in r for r in records)
    for r in records:
        if r.get("state") != "following" or normalise_piece(r.get("piece")) != normalise_piece(true_piece):
            continue
        if r.get("position_s") is None:
            continue
        t = float(r["t"])
        here = float(truth.audio_to_midi(np.array([t]))[0])
        if not np.isfinite(here):
            continue
        locked += 1
        offset = float(r["position_s"]) - here
        if abs(offset) <= tolerance_s:
            continue
        missed += 1
        began = max(s for s in starts if s <= t + 1e-9)
        heard = min(t - began, SPAN_S)
        if heard < MIN_HEARD_S:
            continue
        audio = t - heard + (np.arange(INSTANTS) + 0.5) * (heard / INSTANTS)
        played = truth.audio_to_midi(audio)
        played = played[np.isfinite(played)]
        if same_notes_within(roll, played, offset, tolerance_s, dil):
            at_copy += 1
            named += any(abs(p - here) <= tolerance_s for p in r.get("also_at_s") or [])
    return Misses(locked, missed, at_copy, named, names_places)
