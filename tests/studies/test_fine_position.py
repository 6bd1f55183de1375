"""The fine-position study's error split and its one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.warp import TimeMap
from studies.fine_position import error_causes, main


def test_errors_are_split_by_cause():
    truth = TimeMap(np.array([0.0, 100.0]), np.array([10.0, 110.0]))  # MIDI = audio + 10 s
    records = [{"t": 0.5, "piece": "p", "state": "searching", "position_s": None}]
    records += [{"t": t, "piece": "p", "state": "following", "position_s": t + 10.0 + off}
                for t, off in ((1.0, 1.0), (2.0, 0.1), (5.0, 0.3), (6.0, 30.0), (7.0, -0.8), (8.0, 0.0))]
    records.append({"t": 9.0, "piece": "q", "state": "following", "position_s": 19.0})  # another piece: not counted
    c = error_causes(records, "p", truth)
    assert c == {"locked": 6, "within_0.25": 2, "within_0.5": 3, "over_2s": 1,
                 "after_lock_0.5_2s": 1, "other_0.5_2s": 1}


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert main(["trace", "--material", str(tmp_path), "--index", "x", "--out", str(tmp_path / "o")]) == 2
    assert "no such manifest" in capsys.readouterr().err
    assert main(["trace", "--material", str(tmp_path), "--index", "x", "--out", str(tmp_path / "o"),
                 "--set", "fine.nope=1"]) == 2
    assert "FineConfig field" in capsys.readouterr().err


def test_held_chords_stretch_the_truth_only_on_long_chords():
    from studies.fine_position import hold_chords

    base = TimeMap(np.array([0.0, 40.0]), np.array([0.0, 40.0]))  # the written tempo
    onsets = np.concatenate([np.arange(0.0, 20.0, 0.5), [20.0, 21.0], np.arange(21.25, 40.0, 0.25)])
    held, holds = hold_chords(base, onsets, np.random.default_rng(0), every_s=(4.0, 4.0), extra_s=(2.0, 2.0))
    assert holds and all(b - a >= 0.8 for a, b, _ in holds)   # only the one-second chord [20, 21) is long enough
    assert [(a, b) for a, b, _ in holds] == [(20.0, 21.0)]
    assert held.midi_to_audio(20.0) == pytest.approx(20.0)      # before the hold: as written
    assert held.midi_to_audio(21.0) == pytest.approx(23.0)      # the chord takes 1 + 2 s
    assert held.midi_to_audio(30.0) == pytest.approx(32.0)      # after it: the written tempo again
