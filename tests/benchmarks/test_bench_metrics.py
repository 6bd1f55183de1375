"""Metric definitions of benchmarks/metrics.py on hand-made logs with known answers."""


import numpy as np
import pytest


from benchmarks.metrics import accuracy_curve, load_jsonl, percentile_or_inf, score_item, summarise
from benchmarks.warp import TimeMap

# audio t -> MIDI 10 + t (a rendition at the written tempo, starting 10 s into the piece)
TRUTH = TimeMap(np.array([0.0, 20.0]), np.array([10.0, 30.0]))


def rec(t, piece, position_s=None, state="following", latency_ms=2.0):
    return {"t": t, "piece": piece, "title": piece, "position_s": position_s, "position_beats": None,
            "tempo": None, "confidence": 0.5, "state": state, "latency_ms": latency_ms}


def test_accuracy_stability_and_position_once_locked():
    records = [rec(0.5, None, state="searching"), rec(1.5, "b", 11.5, "following"),
               rec(3.0, "a", 13.1, "following"), rec(4.0, "a", 14.6, "following"),
               rec(6.0, "a", None, "lost"), rec(8.0, "a", 17.9, "following")]
    s = score_item(records, "a", TRUTH)
    assert s.correct_at == {"2": False, "5": True, "10": True, "end": True}
    assert s.time_to_stable_s == 3.0
    # locked = following on the true piece with a position: errors 0.1, 0.6, 0.1
    np.testing.assert_allclose(np.sort(s.position_errors_s), [0.1, 0.1, 0.6], atol=1e-9)
    assert s.coverage == pytest.approx(3 / 4)  # the 'lost' update after the first lock counts against it


def test_wrong_at_the_end_is_never_stable_and_empty_log_scores_zero():
    s = score_item([rec(1.0, "a", 11.0), rec(2.0, "b", 5.0)], "a", TRUTH)
    assert s.time_to_stable_s == np.inf and s.correct_at["end"] is False
    empty = score_item([], "a", TRUTH)
    assert empty.time_to_stable_s == np.inf and not any(empty.correct_at.values())


def test_positions_outside_the_truth_are_not_scored():
    s = score_item([rec(25.0, "a", 35.0)], "a", TRUTH)  # the truth ends at audio 20 s
    assert s.position_errors_s.size == 0


def test_piece_ids_compare_across_path_separators():
    s = score_item([rec(1.0, "midis\\Chopin\\op66", 11.0)], "midis/Chopin/op66", TRUTH)
    assert s.correct_at["end"]


def test_percentile_stays_infinite_when_too_many_never_identify():
    assert percentile_or_inf([1.0, 2.0, np.inf], 50) == 2.0
    assert percentile_or_inf([1.0, 2.0, np.inf], 90) == np.inf
    assert percentile_or_inf([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == 9.0


def test_summary_and_curve():
    a = score_item([rec(1.0, "x", 11.0), rec(2.0, "a", 12.0), rec(3.0, "a", 13.0)], "a", TRUTH)
    b = score_item([rec(1.0, "a", 11.3), rec(2.0, "a", 12.3)], "a", TRUTH)
    row = summarise([a, b])
    assert row["acc_2"] == 1.0 and row["identified"] == 2
    assert row["stable_median_s"] == 1.0 and row["stable_p90_s"] == 2.0
    assert row["locked_updates"] == 4  # the wrong-piece update does not count
    assert row["within_0.25"] == pytest.approx(2 / 4) and row["within_0.5"] == 1.0
    curve = accuracy_curve([a, b], [3.0, 2.0], np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(curve[:3], [0.5, 1.0, 1.0])
    assert np.isnan(curve[3])  # no item lasts 4 s


def test_load_jsonl_names_the_bad_line(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text('{"t": 1}\n\nnot json\n')
    with pytest.raises(ValueError, match=r"log.jsonl:3"):
        load_jsonl(p)


def test_recovery_after_each_jump_of_a_rendition():
    from benchmarks.warp import JumpMap

    # 0-10 s plays MIDI 10-20 s, then a jump back: 10-20 s plays MIDI 2-12 s; at 20 s a pause,
    # 22-30 s plays MIDI 40-48 s
    truth = JumpMap((TimeMap(np.array([0.0, 10.0]), np.array([10.0, 20.0])),
                     TimeMap(np.array([10.01, 20.0]), np.array([2.0, 12.0])),
                     TimeMap(np.array([22.0, 30.0]), np.array([40.0, 48.0]))))
    assert truth.jumps_s == [10.01, 22.0]
    assert np.isnan(truth.audio_to_midi(21.0)) and truth.audio_to_midi(12.0) == pytest.approx(4.0, abs=0.01)
    records = [rec(9.0, "a", 19.0), rec(11.0, "a", 21.0), rec(12.0, "a", 5.0),   # 12 s: 1.0 off
               rec(13.5, "a", 5.5), rec(21.0, "a", 12.0), rec(29.0, "a", 30.0)]  # never back on the last
    s = score_item(records, "a", truth)
    assert s.recovery_s == [pytest.approx(13.5 - 10.01), np.inf]
    row = summarise([s])
    assert row["jumps"] == 2 and row["recovery_median_s"] == pytest.approx(3.49) and row["recovery_p90_s"] == np.inf
    assert summarise([score_item(records, "a", TRUTH)])["jumps"] == 0


def test_a_jump_map_is_saved_and_loaded_as_the_truth(tmp_path):
    from benchmarks.warp import JumpMap, load_truth

    jm = JumpMap((TimeMap(np.array([0.0, 5.0]), np.array([1.0, 6.0])),
                  TimeMap(np.array([5.5, 9.0]), np.array([0.0, 3.5]))))
    jm.save(tmp_path / "j.json", jump="skip back")
    back = load_truth(tmp_path / "j.json")
    assert isinstance(back, JumpMap) and back.jumps_s == [5.5]
    TIMEMAP = TimeMap(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    TIMEMAP.save(tmp_path / "t.json")
    assert isinstance(load_truth(tmp_path / "t.json"), TimeMap)
    with pytest.raises(ValueError, match="not overlapping"):
        JumpMap((TimeMap(np.array([0.0, 5.0]), np.array([1.0, 6.0])),
                 TimeMap(np.array([4.0, 9.0]), np.array([0.0, 3.5]))))


def test_longest_wrong_follow_counts_only_following_a_wrong_piece():
    records = [rec(0.5, "b", 5.0, "searching"), rec(1.0, "b", 5.0), rec(1.5, "b", 5.5), rec(2.7, "b", 6.0),
               rec(3.0, "a", 13.0), rec(4.0, "c", 1.0), rec(5.0, "c", 1.0, "lost"), rec(6.0, "c", 1.0)]
    s = score_item(records, "a", TRUTH)
    assert s.wrong_follow_s == pytest.approx(1.7)  # 1.0 .. 2.7 on "b"; "c" never follows for long
    row = summarise([s, score_item([rec(1.0, "a", 11.0)], "a", TRUTH)])
    assert row["wrong_follow_max_s"] == pytest.approx(1.7) and row["wrong_follow_items"] == 1
