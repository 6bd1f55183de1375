"""The sustain pedal (CC 64) of a MIDI file, on the Score's own timeline.

``follower.midi.load_midi`` keeps notes only (the follower needs nothing else);
piano renders need the pedal too, or a pedalled passage sounds dry and staccato
where a pianist lets it ring. The piano roll stays as written: the score shows
the notes, not the pedal, and that is what the follower matches against.
"""

from __future__ import annotations

import numpy as np

from follower.midi import Score

SUSTAIN_CC = 64


def sustain_events(path, score: Score) -> np.ndarray:
    """(k, 2) float array of (seconds, value) CC 64 changes of every track, time-sorted.

    Times use ``score``'s tempo map (ticks -> beats -> seconds), so they line up with
    its notes. A file without pedal gives an empty array.
    """
    import mido

    mid = mido.MidiFile(path, clip=True)
    ticks, values = [], []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "control_change" and msg.control == SUSTAIN_CC:
                ticks.append(tick)
                values.append(msg.value)
    if not ticks:
        return np.zeros((0, 2))
    order = np.argsort(ticks, kind="stable")
    beats = np.asarray(ticks, dtype=np.float64)[order] / score.ticks_per_beat
    return np.stack([score.beats_to_seconds(beats), np.asarray(values, dtype=np.float64)[order]], axis=1)


def crop_pedal(pedal: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """The pedal within [start_s, end_s), shifted to start at 0; the state at ``start_s`` is kept."""
    if len(pedal) == 0:
        return pedal
    before = pedal[pedal[:, 0] < start_s]
    inside = pedal[(pedal[:, 0] >= start_s) & (pedal[:, 0] < end_s)]
    out = inside.copy()
    out[:, 0] -= start_s
    if len(before):
        out = np.concatenate([[[0.0, before[-1, 1]]], out])
    return out
