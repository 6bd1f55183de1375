"""Are two MIDI files the same music? For scoring identification against corpora that hold copies.

A large library holds some pieces twice under different names: the chorale corpus itself
has identical settings filed under two BWV numbers (BWV 274 and BWV 62.6 share every
note), and the Boulanger-Lewandowski roll sets carry their own copies of Bach chorales,
re-quantised to 16th-note steps and, in some, written in another key (so that one of
their transposed distractors lands on the original's key). No listener, and no
follower, can tell such copies apart from the audio. Identification tables against the
big corpus therefore also report "the right piece or the same music": the piece named
at the end counts when its notes are the true piece's.

The test: both files' notes as binary piano rolls (exact pitch, no transposition), each
stretched to ``STEPS`` time steps over its own length (copies differ in tempo), and the
Jaccard overlap of the two rolls' sounding cells. Copies of one chorale score 0.72
(re-quantised roll-set copy) to 1.0 (identical files), different chorales 0.05-0.16,
a transposed copy 0; ``SAME_MUSIC`` sits between the two groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STEPS = 400
SAME_MUSIC = 0.5
MIDI_SUFFIXES = (".mid", ".midi", ".MID", ".MIDI")


def duration_roll(path, steps: int = STEPS) -> np.ndarray:
    """(steps, 128) bool: which pitches sound in each 1/steps of the piece's length."""
    from follower.midi import load_midi

    notes = load_midi(path).pitched
    roll = np.zeros((steps, 128), bool)
    if not len(notes):
        return roll
    length = max(float(notes["end_s"].max()), 1e-6)
    first = np.minimum((notes["start_s"] / length * steps).astype(np.int64), steps - 1)
    last = np.maximum((notes["end_s"] / length * steps).astype(np.int64), first + 1)
    for a, b, p in zip(first, last, notes["pitch"]):
        roll[a:b, p] = True
    return roll


def overlap(a, b) -> float:
    """Jaccard overlap of the two files' duration-normalised piano rolls (0 = nothing shared, 1 = the same)."""
    ra, rb = duration_roll(a), duration_roll(b)
    return float((ra & rb).sum() / max((ra | rb).sum(), 1))


def same_music(a, b, threshold: float = SAME_MUSIC) -> bool:
    return Path(a) == Path(b) or overlap(a, b) >= threshold


def find_piece(piece_id: str, roots) -> Path | None:
    """The MIDI file of ``piece_id`` among ``roots`` [(folder, id prefix)], as an index build named it
    (``prefix/relative path without suffix``; prefix "" for an index of one folder)."""
    for folder, prefix in roots:
        rest = piece_id[len(prefix) + 1:] if prefix and piece_id.startswith(prefix + "/") else \
            (piece_id if not prefix else None)
        if rest is None:
            continue
        for suffix in MIDI_SUFFIXES:
            path = Path(folder) / (rest + suffix)
            if path.is_file():
                return path
    return None
