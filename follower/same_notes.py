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
def _overlaps(onset_a, end_a, pitch_a, start_a, step_a, onset_b, end_b, pitch_b, starts_b, step_b, steps,
              min_sounding):
    """The Jaccard overlap of a's roll with b's roll from each of ``starts_b`` (-1: too little sound)."""
    roll_a = np.zeros((steps, 128), np.bool_)
    roll_b = np.zeros((steps, 128), np.bool_)
    lo_a, hi_a = _roll(onset_a, end_a, pitch_a, start_a, step_a, roll_a)
    out = np.full(len(starts_b), -1.0)
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
        if union >= min_sounding:
            out[s] = inter / union
    return out


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
    best = _overlaps(*notes_a, position_a - span_a, span_a / STEPS, *notes_b, starts_b, span_b / STEPS,
                     STEPS, MIN_SOUNDING).max()
    return bool(best >= threshold)


@numba.njit(cache=True, nogil=True)
def _packed_roll(onset, end, pitch, step_s, n):
    """(n, 2) uint64: bit ``p % 64`` of word ``p // 64`` of row k set where a note of pitch ``p`` sounds
    at ``(k + 0.5) * step_s`` (the instants of :func:`_roll`)."""
    out = np.zeros((n, 2), np.uint64)
    for i in range(len(onset)):
        a = max(int(np.ceil(onset[i] / step_s - 0.5)), 0)
        b = min(int(np.ceil(end[i] / step_s - 0.5)), n)
        p = int(pitch[i])
        bit = np.uint64(1) << np.uint64(p & 63)
        for k in range(a, b):
            out[k, p >> 6] |= bit
    return out


@numba.njit(cache=True, nogil=True)
def _bits(x):
    """The set bits of a uint64 (SWAR popcount)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True, nogil=True)
def _dilated(roll):
    """Each row ORed with its neighbours: a note sounding one grid step earlier or later still counts."""
    out = roll.copy()
    for k in range(len(roll)):
        for w in range(2):
            if k > 0:
                out[k, w] |= roll[k - 1, w]
            if k + 1 < len(roll):
                out[k, w] |= roll[k + 1, w]
    return out


@numba.njit(cache=True, nogil=True)
def _lag_overlaps(roll, dil, rows, lags, min_sounding):
    """How alike the roll's ``rows`` and the rows ``lag`` earlier are, for each of ``lags`` (negative: later):
    the share of both stretches' sounding cells that the other sounds within a grid step (a Dice overlap
    with that tolerance in time; -1: too little sound; rows outside the roll count silent)."""
    out = np.full(len(lags), -1.0)
    for s in range(len(lags)):
        matched, total = 0, 0
        for k in range(len(rows)):
            r = rows[k] - lags[s]
            inside = 0 <= r < len(roll)
            for w in range(2):
                a, da = roll[rows[k], w], dil[rows[k], w]
                b = roll[r, w] if inside else np.uint64(0)
                db = dil[r, w] if inside else np.uint64(0)
                matched += _bits(a & db) + _bits(b & da)
                total += _bits(a) + _bits(b)
        if total >= 2 * min_sounding:
            out[s] = matched / total
    return out


COPY_STEP_S = 0.05  # the grid on which copies_before samples a piece's notes (the engine's frame)


def _heard_rows(position_s: float, tempo: float, heard_s: float, step_s: float) -> np.ndarray:
    """Grid rows of the ``STEPS`` instants over the last ``heard_s`` of audio at ``tempo`` before
    ``position_s`` (those before the piece's start left out), as :func:`same_notes` samples them."""
    span = max(tempo, 1e-3) * heard_s
    instants = position_s - span + (np.arange(STEPS) + 0.5) * (span / STEPS)
    return np.round(instants[instants >= 0] / step_s - 0.5).astype(np.int64)


def copies_before(notes, position_s: float, tempo: float, heard_s: float, *, earliest_s: float, latest_s: float,
                  threshold: float = SAME_NOTES) -> list[float]:
    """Earlier places of one piece that play the notes a path ending at ``position_s`` has played.

    The piece's notes over the last ``heard_s`` of audio at ``tempo`` (MIDI s per audio s) before
    ``position_s`` (``STEPS`` instants, as :func:`same_notes` samples them) are compared with those
    before every place from ``earliest_s`` to ``latest_s`` (``COPY_STEP_S`` apart): the share of both
    stretches' sounding cells that the other sounds within one grid step (a sequenced performance
    plays a repeat written out with timings of its own), a Dice overlap held to the Dice equivalent of
    ``threshold`` (a Jaccard overlap). Each run of places at or above it gives its best one. Returns
    those places, earliest first (music written out twice or more: a repeated opening, a tune's
    strains). One pass over the notes and a bit-packed comparison per place: milliseconds for a piece
    of 1,000 s.
    """
    onset, end, pitch = notes
    if latest_s < earliest_s or heard_s <= 0 or len(onset) == 0:
        return []
    step = COPY_STEP_S
    n = int(np.ceil(max(float(end.max()), position_s) / step)) + 1
    roll = _packed_roll(onset, end, pitch, step, n)
    rows = np.minimum(_heard_rows(position_s, tempo, heard_s, step), n - 1)
    lo = max(int(np.ceil((position_s - latest_s) / step)), 1)
    hi = int(np.floor((position_s - earliest_s) / step))
    if hi < lo or len(rows) == 0:
        return []
    lags = np.arange(lo, hi + 1, dtype=np.int64)
    o = _lag_overlaps(roll, _dilated(roll), rows, lags, MIN_SOUNDING)
    threshold = dice_threshold(threshold)
    out, k = [], len(o) - 1
    while k >= 0:  # largest lags first: the earliest places first
        if o[k] < threshold:
            k -= 1
            continue
        run = k
        while k >= 0 and o[k] >= threshold:
            k -= 1
        best = k + 1 + int(np.argmax(o[k + 1:run + 1]))
        out.append(float(position_s - lags[best] * step))
    return out


def packed_roll(notes, step_s: float = COPY_STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """A piece's notes on the ``step_s`` grid, bit-packed, and the same with each row ORed with its
    neighbours: what :func:`lag_overlaps` compares (``notes``: (onset, end, pitch))."""
    onset, end, pitch = notes
    n = int(np.ceil(float(end.max()) / step_s)) + 1 if len(onset) else 1
    roll = _packed_roll(onset, end, pitch, step_s, n)
    return roll, _dilated(roll)


def lag_overlaps(rolls: tuple[np.ndarray, np.ndarray], position_s: float, tempo: float, heard_s: float,
                 lags: np.ndarray, step_s: float = COPY_STEP_S) -> np.ndarray:
    """For each of ``lags`` (grid steps; negative: later in the piece), how alike the notes of the last
    ``heard_s`` of audio at ``tempo`` before ``position_s`` are to those ``lag`` steps earlier: the Dice
    overlap of :func:`copies_before`, -1 where the two sound too little to tell. ``rolls``:
    :func:`packed_roll` of the piece."""
    roll, dil = rolls
    rows = _heard_rows(position_s, tempo, heard_s, step_s)
    rows = rows[rows < len(roll)]
    if len(rows) == 0:
        return np.full(len(lags), -1.0)
    return _lag_overlaps(roll, dil, rows, np.asarray(lags, np.int64), MIN_SOUNDING)


def dice_threshold(threshold: float = SAME_NOTES) -> float:
    """The Dice overlap equivalent to the Jaccard overlap ``threshold``: 2J / (1 + J)."""
    return 2 * threshold / (1 + threshold)
