"""The calibration study's fitting and bookkeeping, on made-up samples."""

import json

import numpy as np
import pytest

from follower.confidence import FEATURES, Calibration
from studies.lock_calibration import _item_weights, fit_logistic, main, reliability, summary_of


def test_the_logistic_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 3)) * [1.0, 5.0, 0.5] + [0.0, 10.0, 1.0]
    bias, w = -1.0, np.array([2.0, -0.3, 4.0])
    y = rng.random(len(x)) < 1 / (1 + np.exp(-(bias + x @ w)))
    b, fitted = fit_logistic(x, y, l2=0.0)
    assert b == pytest.approx(bias, abs=0.3) and np.allclose(fitted, w, atol=0.15)
    # the fitted numbers are those of the shipped model's formula
    cal = Calibration(b, tuple(fitted) + (0.0,) * (len(FEATURES) - 3))
    row = (0.5, 9.0, 1.2) + (0.0,) * (len(FEATURES) - 3)
    assert cal.probability(row) == pytest.approx(1 / (1 + np.exp(-(b + np.dot(fitted, row[:3])))))


def test_every_item_weighs_the_same():
    w = _item_weights(np.array([3, 3, 3, 3, 7]))
    assert np.allclose(w, [0.25] * 4 + [1.0])


def test_a_piece_outside_the_corpus_weighs_its_share():
    groups = np.array(["bwv1", "bwv1", "jig", "jig", "reel"])
    outside = np.array([False, False, True, True, True])
    w = _item_weights(groups, outside, 0.1)
    assert np.allclose(w, [0.5, 0.5, 0.05, 0.05, 0.1])
    assert np.allclose(_item_weights(groups, outside), _item_weights(groups))  # weight 1: as any piece


def test_reliability_bins_predicted_against_observed():
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.995])
    y = np.array([False, True, True, True, True])
    rows = {r["bin"]: r for r in reliability(p, y)}
    assert rows["[0.00, 0.10)"]["observed"] == 0.5 and rows["[0.00, 0.10)"]["updates"] == 2
    assert rows["[0.90, 0.97)"]["predicted"] == pytest.approx(0.95) and rows["[0.99, 1.00)"]["updates"] == 1


def test_lock_summary_counts_wrong_locks_and_never_as_not_identified():
    s = summary_of([(3.0, True, "calibrated"), (4.0, False, "path"), (float("inf"), False, "")])
    assert s["wrong"] == 1 and s["never"] == 1 and s["median_s"] == float("inf") and s["rules"] == ["calibrated", "path"]


def test_it_refuses_the_benchmark_material(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text(json.dumps([{"name": "chorale_00_x", "kind": "chorale"}]))
    assert main(["--material", str(tmp_path), "--index", "x", "--traces", str(tmp_path / "t.json")]) != 0
    assert "never fitted on the benchmark" in capsys.readouterr().err


def test_traces_round_trip_through_json(tmp_path):
    import numpy as np

    from follower.policy import Scores
    from studies.lock_calibration import load_traces, save_traces

    s = Scores(state="searching", piece=None, ranked=(np.int64(3), 7), support={3: np.float64(2.5), 7: 1.0},
               where={3: (12.0, 0.9), 7: (1.5, 1.1)}, history_s=2.2, last_sound_t_s=4.0,
               reranked=((3, 9.1, 12.0, 0.9),), same_as={7: 3})
    traces = {"item": {"piece": 3, "piece_id": "bwv1", "steps": [(4.05, s, (np.int64(3), 1.7, 5.0))]}}
    save_traces(traces, tmp_path / "t.json")
    back = load_traces(tmp_path / "t.json")
    t_s, s2, ev = back["item"]["steps"][0]
    assert t_s == 4.05 and ev == (3, 1.7, 5.0) and back["item"]["piece"] == 3
    assert s2 == Scores(state="searching", piece=None, ranked=(3, 7), support={3: 2.5, 7: 1.0},
                        where={3: (12.0, 0.9), 7: (1.5, 1.1)}, history_s=2.2, last_sound_t_s=4.0,
                        reranked=((3, 9.1, 12.0, 0.9),), same_as={7: 3})


def test_music_outside_the_corpus_is_a_wrong_piece_in_every_update_and_its_locks_are_counted_apart():
    from follower.policy import Scores
    from studies.lock_calibration import _summary, samples

    s = Scores(state="searching", piece=None, ranked=(3, 7), support={3: 2.5, 7: 1.0},
               where={3: (12.0, 0.9), 7: (1.5, 1.1)}, history_s=2.2, last_sound_t_s=4.0,
               reranked=((3, 9.1, 12.0, 0.9),), same_as={})
    outside = {"piece": None, "piece_id": "nottingham/jigs1", "steps": [(t, s, (3, 2.0, t)) for t in (4.0, 4.05)]}
    inside = {"piece": 3, "piece_id": "bwv1", "steps": outside["steps"]}
    assert list(samples(outside)[2]) == [False, False]
    assert list(samples(inside)[2]) == [True, True]
    traces = {"a": inside, "b": outside, "c": dict(outside, piece_id="nottingham/jigs2")}
    locks = [(4.0, True, "calibrated"), (6.0, False, "rerank"), (float("inf"), False, "")]
    row = _summary(traces, ["a", "b", "c"], locks)
    # the outside items neither count as wrong corpus locks nor as corpus items never locked
    assert row["wrong"] == 0 and row["never"] == 0 and row["median_s"] == 4.0
    assert row["outside_items"] == 2 and row["outside_locked"] == 1 and row["rules"] == ["calibrated", "rerank"]


def test_first_locks_are_summed_up_per_tempo_band():
    from studies.lock_calibration import by_tempo, tempo_band

    assert tempo_band("tune_t0.35-0.5_s21_00_bach_bwv123.6") == "0.35-0.5"
    assert tempo_band("tune_s8_00_bach_bwv123.6") == tempo_band("tune_start_s8_00_x") == "usual"
    names = ["tune_s8_00_a", "tune_s8_01_b", "tune_t0.35-0.5_s21_00_a", "tune_t0.35-0.5_s21_01_b"]
    traces = {n: {"piece": 1} for n in names}
    locks = [(2.0, True, "rerank"), (3.0, True, "rerank"), (2.5, False, "rerank"), (6.0, True, "rerank")]
    rows = by_tempo(traces, names, locks)
    assert list(rows) == ["usual", "0.35-0.5"]  # the renders at the usual tempi first
    assert rows["usual"]["items"] == 2 and rows["usual"]["wrong"] == 0 and rows["usual"]["median_s"] == 2.5
    assert rows["0.35-0.5"]["wrong"] == 1 and rows["0.35-0.5"]["median_s"] == float("inf")  # (a wrong lock: never right)


def test_a_re_rank_threshold_that_is_not_a_number_is_refused(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text(json.dumps([]))
    assert main(["--material", str(tmp_path), "--index", "x", "--traces", str(tmp_path / "t.json"),
                 "--evaluate", "--rerank-min-p", "0.9,high"]) != 0
    assert "--rerank-min-p" in capsys.readouterr().err
