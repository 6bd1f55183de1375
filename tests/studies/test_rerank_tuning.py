"""The threshold study of the re-rank lock (studies/rerank_tuning.py), on made-up records."""

from studies.rerank_tuning import choose, evaluate_rule, first_lock


def record(piece, leads):
    """One update every 0.05 s; ``leads`` = [(leader, score, runner-up score), ...]."""
    return {"piece": piece, "t": [0.05 * (i + 1) for i in range(len(leads))],
            "top": [[(p, s1), ("other", s2)] for p, s1, s2 in leads]}


def test_a_lock_needs_the_score_the_margin_and_the_same_leader_for_the_hold():
    r = record("a", [("a", 9.0, 8.0)] * 4 + [("b", 9.0, 8.0)] * 3 + [("a", 9.0, 8.0)] * 10)
    t, right = first_lock(r, min_zs=8.0, margin_zs=0.5, hold_s=0.25)
    assert right and t == r["t"][7 + 5]  # the leader changed at update 4: counted again from update 7
    assert first_lock(r, min_zs=10.0, margin_zs=0.5, hold_s=0.25) is None
    assert first_lock(r, min_zs=8.0, margin_zs=1.5, hold_s=0.25) is None


def test_rules_that_lock_a_wrong_piece_are_never_chosen():
    records = {"x": record("a", [("b", 5.0, 3.0)] * 10 + [("a", 20.0, 5.0)] * 40),
               "y": record("c", [("c", 12.0, 2.0)] * 40)}
    assert evaluate_rule(records, min_zs=4.0, margin_zs=1.0, hold_s=0.25)["wrong"] == 1
    best, rows = choose(records)
    assert best["wrong"] == 0
    rule = {k: best[k] for k in ("min_zs", "margin_zs", "hold_s")}
    assert first_lock(records["x"], **rule)[1]  # the chosen rule waits for the right piece
    assert best["min_zs"] > 5.0 or best["margin_zs"] > 2.0
    assert len(rows) == 7 * 5 * 3
