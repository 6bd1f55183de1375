"""The fine-position study's error split and its one-line errors."""

from __future__ import annotations

import numpy as np

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
