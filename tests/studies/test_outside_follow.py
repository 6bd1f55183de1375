"""The outside-follow study (studies/outside_follow.py): its figures on made-up records, and its variants."""

from benchmarks.soak import Segment
from follower import policy as P
from studies import outside_follow as study


def records(spans):
    """One update every 0.05 s; ``spans`` = [(seconds, state, piece), ...]."""
    out, t = [], 0.0
    for seconds, state, piece in spans:
        for _ in range(round(seconds / 0.05)):
            t += 0.05
            out.append({"t": round(t, 2), "state": state, "piece": piece})
    return out


def test_figures_of_a_programme(monkeypatch):
    monkeypatch.setattr(study, "TAKEN", [(1.0, "lock", "rerank", 0), (21.0, "switch", "switch", 1),
                                         (21.3, "switch", "recheck", 0)])
    segments = [Segment("piece", "a", 0.0, 20.0), Segment("piece", "b", 20.0, 20.0),
                Segment("pause", None, 40.0, 5.0), Segment("outside", "tune", 45.0, 20.0)]
    recs = records([(1, "searching", None), (20, "following", "a"), (0.3, "following", "b"),
                    (2.7, "following", "a"), (16, "following", "b"), (5, "lost", "b"),
                    (5, "searching", None), (5, "following", "x"), (10, "searching", None)])
    f = study.programme_figures(recs, segments)
    assert f["outside_following"] == {"tune": 0.25} and f["outside_following_mean"] == 0.25
    assert f["piece_right_after_10s"] == {"a": 1.0, "b": 1.0}
    assert f["flips_12s_after_change"] == [3]  # in 20-32 s: a -> b at 21, b -> a at 21.3, a -> b at 24
    assert f["rules"] == {"lock:rerank": 1, "switch:switch": 1, "switch:recheck": 1}


def test_the_recheck_variant_ends_the_recheck_window_at_a_switch(monkeypatch):
    monkeypatch.setattr(P.LockPolicy, "_locked", P.LockPolicy._locked)  # restored after the test
    monkeypatch.setattr(study, "TAKEN", [])
    study.patch()
    from dataclasses import replace

    from follower.engine import EngineConfig

    policy = P.LockPolicy(replace(EngineConfig(), **study.SETTINGS["recheck-after-lock"]))
    policy._locked(P.LOCK, 3, (1.0, 1.0), 5.0, "rerank")
    assert policy.locked_at_s == 5.0  # a lock from searching may still be rechecked
    policy._locked(P.SWITCH, 4, (1.0, 1.0), 9.0)
    assert policy.locked_at_s is None  # after a switch, not
    assert study.TAKEN == [(5.0, "lock", "rerank", 3), (9.0, "switch", "switch", 4)]
    before = P.LockPolicy(replace(EngineConfig(), **study.SETTINGS["before"]))
    before._locked(P.SWITCH, 4, (1.0, 1.0), 9.0)
    assert before.locked_at_s == 9.0  # the engine before rechecked after a switch too
