"""The template re-ranking study's pieces, on made-up frames, scores and updates."""

import numpy as np
import pytest

from studies.template_rerank import (cell_means, fused_leaders, item_summary, main, running_scores,
                                     template_cells)


def test_cell_means_leave_out_silent_frames_and_unit_normalise():
    frames = np.zeros((9, 3), np.float32)
    frames[0:4, 0] = 1.0
    frames[3, 1] = 5.0              # a silent frame's content must not enter its cell
    frames[4, 2] = 2.0              # one sounding frame of four: the cell does not step
    loud = np.array([1, 1, 1, 0, 1, 0, 0, 0, 1], bool)
    cells, steps = cell_means(frames, loud)
    assert cells.shape == (2, 3)    # the trailing partial cell is left for the next update
    np.testing.assert_allclose(cells[0], [1.0, 0.0, 0.0])
    assert steps.tolist() == [True, False]


def test_template_cells_keep_a_partial_cell_and_silent_cells_zero():
    t = np.zeros((9, 2), np.float32)
    t[0:4, 1] = 1.0
    t[8, 0] = 1.0
    c = template_cells(t)
    assert c.shape == (3, 2)
    np.testing.assert_allclose(c, [[0, 1], [0, 0], [1, 0]])


def test_running_scores_grow_along_a_matching_diagonal_and_hold_on_pauses():
    z = np.zeros((6, 6))
    for i in range(6):
        z[i, i] = 3.0
    steps = np.array([1, 1, 0, 1, 1, 1], bool)
    s = running_scores(z, steps, offset=1.0, step_s=0.2)
    assert s[0] == pytest.approx(0.4) and s[1] == pytest.approx(0.8)
    assert s[2] == s[1]             # a cell that does not step holds the score
    assert np.all(np.diff(s) >= 0) and s[-1] > s[1]
    # chance-level evidence drifts down: the local alignment floors it at nothing
    assert running_scores(np.zeros((5, 4)), np.ones(5, bool), offset=1.0)[-1] == 0.0


def test_fused_leaders_reorder_the_candidates_by_the_template_score():
    ups = [{"t": 0.1, "reranked": []},
           {"t": 0.4, "reranked": [["b", 3.0], ["a", 2.5]]},
           {"t": 0.8, "reranked": [["b", 3.0], ["a", 2.5]]}]
    tmpl = {"a": np.array([0.0, 1.0, 2.0, 3.0]), "b": np.zeros(4)}
    fps = 20.0                       # 4 frames a cell: t=0.4 -> cell 1, t=0.8 -> cell 3
    assert [x[1] for x in fused_leaders(ups, tmpl, fps, 0.0)] == [None, "b", "b"]
    lead = fused_leaders(ups, tmpl, fps, 1.0)
    assert [x[1] for x in lead] == [None, "a", "a"]
    assert lead[2][2] == pytest.approx(5.5)
    summ = item_summary(lead, "a", grace_s=0.0, min_lead=0.0)
    assert summ["leader_s"] == pytest.approx(0.4) and summ["wrong_lead_s"] == 0.0
    summ = item_summary(fused_leaders(ups, tmpl, fps, 0.0), "a", grace_s=0.0, min_lead=2.0)
    assert summ["leader_s"] == float("inf") and summ["wrong_lead_s"] == pytest.approx(0.6)


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["--material", str(tmp_path), "--index", str(tmp_path / "x.npz"),
                 "--cache", str(tmp_path / "c")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--weights"):
        main(["--material", str(tmp_path), "--index", "x", "--cache", "c", "--weights", "a,b"])
