"""Bars and beats from a MIDI file's time signatures (follower/meter.py)."""

import mido
import numpy as np

from follower.meter import TimeSignature, beat_grid, time_signatures


def test_a_change_of_signature_starts_a_new_bar_and_counts_its_beats():
    g = beat_grid([TimeSignature(0.0, 4, 4), TimeSignature(6.0, 3, 4)], 12.0)  # change in the middle of bar 2
    assert g.has_bars
    assert g.quarters.tolist() == list(range(12))
    assert g.bar.tolist() == [1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4]
    assert g.beat.tolist() == [1, 2, 3, 4, 1, 2, 1, 2, 3, 1, 2, 3]


def test_the_beat_is_the_denominator_note():
    g = beat_grid([TimeSignature(0.0, 6, 8)], 6.0)
    assert np.allclose(np.diff(g.quarters), 0.5)
    assert g.bar.tolist() == [1] * 6 + [2] * 6 and g.beat.tolist() == list(range(1, 7)) * 2


def test_without_a_time_signature_there_are_quarter_beats_and_no_bars():
    g = beat_grid([], 3.5)
    assert not g.has_bars and g.quarters.tolist() == [0, 1, 2, 3] and g.beat.tolist() == [1, 2, 3, 4]


def test_signatures_restated_on_every_track_are_read_once(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    for _ in range(3):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=8 * 480))
        track.append(mido.Message("note_on", note=60, velocity=64, time=0))
        track.append(mido.Message("note_off", note=60, velocity=0, time=480))
        mid.tracks.append(track)
    path = tmp_path / "meter.mid"
    mid.save(str(path))
    assert time_signatures(path) == [TimeSignature(0.0, 4, 4), TimeSignature(8.0, 3, 4)]
