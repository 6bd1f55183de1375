"""Do two pieces play the same notes along two alignments of the same audio?

A large library holds some music twice under different names, and not always as the same
file: the Boulanger-Lewandowski roll sets carry their own copies of Bach chorales,
re-quantised to 16th-note steps and written out again (some in another key, so that one of
their transposed copies lands on the original's pitches). The snippet embeddings of such a
copy differ from the original's (cosine 0.83-0.95 along the re-ranking's paths, where
unrelated chance paths reach 0.9), so the embedding test of :mod:`follower.rerank` cannot
see that they are one piece; their notes can.

The test: each piece's notes as a binary piano roll (exact pitch, no transposition),
sampled at ``STEPS`` instants spread over the audio both paths have aligned (the last
``SPAN_S`` at most), each mapped to the piece's own timeline through its path (its
position now and its tempo), and the Jaccard overlap of the two rolls' sounding cells.
Identical notes give 1, a re-quantised copy mostly 0.7-1 (median 0.85-0.92), another
harmonisation of the same melody and unrelated music far less (median 0.15-0.2; measured
over the chorale corpus and the roll sets by ``python -m studies.same_notes``;
:data:`SAME_NOTES` sits between the groups).
"""

from __future__ import annotations

import numba
import numpy as np

STEPS = 48          # instants sampled over the compared audio
SPAN_S = 8.0        # the most recent audio compared, s
MIN_SPAN_S = 4.0    # shorter alignments are not compared (two settings of one tune can share 3 s of notes)
MIN_SOUNDING = 8    # sounding (instant, pitch) cells the two rolls need between them
# Jaccard overlap at and above which two stretches are the same notes: over 5-8 s, 92 % of the
# places in the roll sets' copies of chorales reach it, 0.1-0.2 % of the most similar places
# of two settings of one tune, none of other music (python -m studies.same_notes)
SAME_NOTES = 0.7


@numba.njit(cache=True, nogil=True)
def _roll(onset, end, pitch, start_s, step_s, out):
    """Mark ``out[k, p]`` where a note of pitch ``p`` sounds at ``start_s + (k + 0.5) * step_s``.

    The notes are sorted by onset (as :func:`follower.midi.load_midi` and the index keep them):
    the loop stops at the first note that starts after the span. Returns the lowest and highest
    pitch marked (128, -1 where none is)."""
    n = out.shape[0]
    stop_s = start_s + n * step_s
    lo, hi = 128, -1
    for i in range(len(onset)):
        if onset[i] >= stop_s:
            break
        # instants k with onset <= t_k < end
        a = int(np.ceil((onset[i] - start_s) / step_s - 0.5))
        b = int(np.ceil((end[i] - start_s) / step_s - 0.5))
        a = max(a, 0)
        b = min(b, n)
        if a < b:
            lo = min(lo, int(pitch[i]))
            hi = max(hi, int(pitch[i]))
        for k in range(a, b):
            out[k, pitch[i]] = True
    return lo, hi


def span_roll(notes, position_s: float, tempo: float, heard_s: float, steps: int = STEPS) -> np.ndarray:
    """(steps, 128) bool: the piece's sounding pitches over the ``heard_s`` of audio that a path
    with this ``tempo`` (MIDI s per audio s) ending at ``position_s`` has aligned."""
    onset, end, pitch = notes
    out = np.zeros((steps, 128), np.bool_)
    span = max(tempo, 1e-3) * heard_s
    _roll(onset, end, pitch, position_s - span, span / steps, out)
    return out


def overlap(roll_a: np.ndarray, roll_b: np.ndarray) -> float:
    """Jaccard overlap of two rolls' sounding cells; nan where they sound too little to tell."""
    union = np.count_nonzero(roll_a | roll_b)
    if union < MIN_SOUNDING:
        return float("nan")
    return np.count_nonzero(roll_a & roll_b) / union


@numba.njit(cache=True, nogil=True)
def _best_overlap(onset_a, end_a, pitch_a, start_a, step_a, onset_b, end_b, pitch_b, starts_b, step_b, steps,
                  min_sounding):
    """The best Jaccard overlap of a's roll with b's rolls from each of ``starts_b`` (-1: too little sound)."""
    roll_a = np.zeros((steps, 128), np.bool_)
    roll_b = np.zeros((steps, 128), np.bool_)
    lo_a, hi_a = _roll(onset_a, end_a, pitch_a, start_a, step_a, roll_a)
    best = -1.0
    for s in range(len(starts_b)):
        roll_b[:] = False
        lo_b, hi_b = _roll(onset_b, end_b, pitch_b, starts_b[s], step_b, roll_b)
        lo, hi = min(lo_a, lo_b), max(hi_a, hi_b)  # count over the pitches either roll marks
        inter, union = 0, 0
        for k in range(steps):
            for p in range(lo, hi + 1):
                if roll_a[k, p] and roll_b[k, p]:
                    inter += 1
                if roll_a[k, p] or roll_b[k, p]:
                    union += 1
        if union >= min_sounding and inter / union > best:
            best = inter / union
    return best


SHIFTS = np.array([0.0, -0.5, 0.5, -1.0, 1.0])  # b's stretch moved by these fractions of the slack


def same_notes(notes_a, path_a: tuple[float, float], notes_b, path_b: tuple[float, float], heard_s: float,
               slack_s: float = 0.0, threshold: float = SAME_NOTES) -> bool:
    """Do pieces a and b play the same notes over the last ``heard_s`` of audio, along the paths
    ``(position_s, tempo)``? Never for alignments shorter than ``MIN_SPAN_S``.

    ``slack_s``: how far each path's position may be off (the re-ranking's paths move on a grid
    of snippet cells, and a copy may be offset on its timeline by less than a cell): b's stretch
    is also tried that far earlier and later, in half steps, and the best overlap counts.
    The same as :func:`overlap` of :func:`span_roll` for each shift, in one compiled pass.
    """
    heard_s = min(heard_s, SPAN_S)
    if heard_s < MIN_SPAN_S:
        return False
    (position_a, tempo_a), (position_b, tempo_b) = path_a, path_b
    span_a, span_b = max(tempo_a, 1e-3) * heard_s, max(tempo_b, 1e-3) * heard_s
    starts_b = position_b - span_b + (SHIFTS if slack_s > 0 else SHIFTS[:1]) * slack_s
    best = _best_overlap(*notes_a, position_a - span_a, span_a / STEPS, *notes_b, starts_b, span_b / STEPS,
                         STEPS, MIN_SOUNDING)
    return bool(best >= threshold)
