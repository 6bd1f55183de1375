"""studies.position_by_tempo: locked updates split by the players' local tempo against the MIDI."""

import numpy as np

from benchmarks.warp import TimeMap
from studies.position_by_tempo import locked_errors, table


def test_a_follower_that_runs_on_through_a_held_chord_is_ahead_there_and_only_there():
    # the players keep the MIDI's tempo for 10 s, then hold a 1 s chord for 3 s, then go on
    truth = TimeMap(np.array([0.0, 10.0, 13.0, 20.0]), np.array([0.0, 10.0, 11.0, 18.0]))
    t = np.arange(0.05, 20.0, 0.05)
    position = np.minimum(t, truth.audio_to_midi(t) + 0.4 * ((t > 10.5) & (t < 13.0)))  # ahead in the hold
    records = [{"t": float(x), "piece": "p", "state": "following", "position_s": float(y)} for x, y in zip(t, position)]
    records[100] = {"t": float(t[100]), "piece": "q", "state": "following", "position_s": 1.0}  # a wrong piece: left out
    records[101] = {"t": float(t[101]), "piece": "p", "state": "searching", "position_s": None}  # not locked: left out
    errors, tempo = locked_errors(records, "p", truth)
    edges = np.sum((t - 0.5 < 0) | (t + 0.5 > 20.0))  # where the local tempo is undefined
    assert len(errors) == len(records) - 2 - edges
    held = tempo < 0.5
    assert np.all(errors[held & (np.abs(errors) > 0.25)] > 0) and np.mean(np.abs(errors[~held]) <= 0.25) > 0.9
    text = table(errors, tempo)
    assert "| 0-0.5 |" in text and "| 0.8-1.25 |" in text and text.splitlines()[-1].startswith("| all |")
