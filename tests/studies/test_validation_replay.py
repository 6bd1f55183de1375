import math

from follower.confidence import FITTED_OPEN
from follower.engine import EngineConfig
from studies.validation_replay import engine_config, held_updates, merge, report


def test_a_named_configuration_replaces_engine_fields_and_may_open_the_programme():
    assert engine_config({}) == EngineConfig()
    assert engine_config({"rerank_min_zs": 5.0}).rerank_min_zs == 5.0
    nested = engine_config({"tracker.jump_local_s": 0.0, "k": 30})
    assert (nested.tracker.jump_local_s, nested.k, nested.tracker.kappa) == (0.0, 30, EngineConfig().tracker.kappa)
    opened = engine_config({"open": True, "rerank_min_zs": 5.0})
    assert (opened.calibration, opened.rerank_min_zs) == (FITTED_OPEN, 5.0) and opened.rules_min_p > 0
    # the pair of engines' own settings ("pair.<field>", follower.two_speeds) are not the engine's
    assert engine_config({"two_speeds": True, "pair.disagree_handover": False}) == EngineConfig()


def row(kind, stable_s, wrong_s=0.0, end=True):
    return {"kind": kind, "stable_s": stable_s, "end": end, "wrong_s": wrong_s, "updates": 10,
            "within_0.25": 8, "within_0.5": 9}


def test_the_report_counts_wrong_follows_and_pairs_every_configuration_with_the_first(tmp_path):
    a = {"base": {"x": row("chorale", 3.0), "y": row("piano", 2.5)}}
    b = {"base": {"z": row("chorale", 4.0, wrong_s=1.5)},
         "new": {"x": row("chorale", 2.5), "y": row("piano", 2.5), "z": row("chorale", math.inf, end=False)}}
    (tmp_path / "a.json").write_text(__import__("json").dumps(a))
    (tmp_path / "b.json").write_text(__import__("json").dumps(b))
    merged = merge([tmp_path / "a.json", tmp_path / "b.json"])
    assert sorted(merged["base"]) == ["x", "y", "z"]
    text = report(merged)
    assert "| base | all (3) | 3.00 / 4.00 s | 3 / 3 | 80.0 / 90.0 % | - | - | 1 [('z', 1.5)] |" in text
    assert "| new | chorale (2) | " in text and "| 1 / 2 |" in text
    # the seconds until the position is back after each jump of the jump renditions (none elsewhere)
    merged["new"]["x"]["recovery_s"] = [1.0, 3.0]
    merged["new"]["z"]["recovery_s"] = [math.inf]
    assert "| 1 / 2 | 80.0 / 90.0 % | - | 3.00 / inf s (3) | 0  |" in report(merged)
    # the paired change leaves out the item the new configuration never named
    assert "median -0.25 s; sooner on 1, later on 0 of 2" in text


def test_the_report_pairs_each_item_s_closeness_with_the_first_configuration():
    base = {"x": row("chorale", 2.0), "y": row("chorale", 2.0), "z": row("piano", 2.0)}
    new = {"x": {**row("chorale", 2.0), "within_0.25": 10}, "y": {**row("chorale", 2.0), "within_0.25": 5},
           "z": row("piano", 2.0)}
    text = report({"base": base, "new": new})
    assert ("new against base, updates within 0.25 s per item: closer on 1, further on 1, the same on 1 of 3; "
            "most gained: x +2; most lost: y -3") in text


def test_updates_in_a_hold_are_those_where_the_truth_slows_far_below_its_usual_speed():
    import numpy as np

    from benchmarks.metrics import score_item
    from benchmarks.warp import hold_spans, warp_from_ratio

    truth = hold_spans(warp_from_ratio(np.full(1001, 1.0), 0.0), [(4.0, 5.0, 3.0)])  # 1 s held 3 s
    t = np.arange(0.05, 11.0, 0.05)
    records = [{"t": float(x), "piece": "p", "state": "following", "position_s": float(truth.audio_to_midi(x))}
               for x in t]
    records[0]["state"] = "searching"  # not scored for position, so not counted either
    held = held_updates(score_item(records, "p", truth), truth)
    assert len(held) == len(t) - 1
    in_hold = t[1:][held]
    assert 3.9 < in_hold.min() and in_hold.max() < 7.1 and held.sum() >= 55  # the audio's 4-7 s


def test_the_report_counts_misses_at_another_statement_as_right_where_they_were_counted():
    counted = {"x": {**row("chorale", 2.0), "at_copy": 1}, "y": {**row("chorale", 2.0), "at_copy": 0}}
    assert "| 0  | 95.0 % |" in report({"base": counted})          # (18 + 1) of 20 updates
    assert "| 0  | - |" in report({"base": {"x": row("chorale", 2.0)}})  # results written before


def test_the_report_gives_the_updates_in_holds_where_there_are_any():
    with_holds = {**row("chorale", 2.0), "held": 4, "held_within_0.25": 1, "held_within_0.5": 3}
    text = report({"base": {"x": with_holds, "y": row("chorale", 2.0)}})
    assert "| 4, 25.0 / 75.0 % |" in text
