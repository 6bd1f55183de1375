"""The lock policy on made-up score sequences: no audio, no bundle, no index.

A small simulator stands in for the engine: it feeds the policy one update every
50 ms and applies the returned actions to its state, piece and tracker position
the way :meth:`follower.engine.Engine._apply` does.
"""

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from follower.confidence import FEATURES, Calibration, features
from follower.engine import EngineConfig
from follower.policy import (FOLLOWING, JUMP, LOCK, LOSE, LOST, NOTHING, RESUME, SEARCH, SEARCHING, SWITCH,
                             LockPolicy, Scores, Timer)

C = EngineConfig()
ALONE = EngineConfig(calibration=None)  # the other rules each on their own (the calibrated one reads them all)
DT = 0.05              # one update per spectrogram frame
NOTHING_HEARD = (None, 0.0, 0.0)
CLEAR = {1: 2.0, 2: 1.0}            # piece 1 leads by 1.0 >= lock_margin, above lock_score
CLOSE = {1: 1.2, 2: 1.1}            # above lock_score but the margin never suffices


class Sim:
    """The engine's side of the contract: state, piece, tracker position, audio time."""

    def __init__(self, config=C):
        self.policy = LockPolicy(config)
        self.n = 0
        self.state, self.piece, self.tracker_s = SEARCHING, None, None
        self.last_sound_s = None
        self.votes_forgotten = 0

    @property
    def t(self) -> float:
        return self.n * DT  # as the engine counts: frames / frame rate

    def step(self, support, *, where=None, history_s=4.0, sound=True, tracker_score=None,
             evidence=NOTHING_HEARD, reranked=(), same_as=None):
        self.n += 1
        if sound:
            self.last_sound_s = self.t
        ranked = sorted(support, key=support.get, reverse=True)
        where = {p: (30.0 + p, 1.0) for p in support} if where is None else where
        tracking = self.tracker_s is not None
        scores = Scores(state=self.state, piece=self.piece, ranked=ranked, support=support, where=where,
                        history_s=history_s, last_sound_t_s=self.last_sound_s,
                        tracker_score=tracker_score if tracking else None,
                        tracker_position_s=self.tracker_s, reranked=reranked, same_as=same_as or {})
        a = self.policy.step(scores, evidence, self.t)
        if a.kind in (LOCK, SWITCH):
            self.state, self.piece, self.tracker_s = FOLLOWING, a.piece, a.position_s
        elif a.kind == LOSE:
            self.state = LOST
        elif a.kind == RESUME:
            self.state = FOLLOWING
            if a.position_s is not None:
                self.tracker_s = a.position_s
        elif a.kind == JUMP:
            self.tracker_s = a.position_s
        elif a.kind == SEARCH:
            self.state, self.piece, self.tracker_s = SEARCHING, None, None
            self.votes_forgotten += 1
        return a

    def run(self, seconds, support, **kw):
        """Step for ``seconds``; the (time, action) of every action that is not NOTHING."""
        out = []
        for _ in range(round(seconds / DT)):
            a = self.step(support, **kw)
            if a.kind != NOTHING:
                out.append((self.t, a))
        return out

    def follow(self, piece=1, position_s=31.0):
        """Lock ``piece`` on a clear path (the quickest way to FOLLOWING)."""
        support = {piece: 2.0, piece + 1: 1.0}
        acts = self.run(C.lock_s + DT, support, where={piece: (position_s, 1.0), piece + 1: (5.0, 1.0)})
        assert [a.kind for _, a in acts] == [LOCK] and self.state == FOLLOWING and self.piece == piece


# -- Timer ----------------------------------------------------------------------------

def test_timer_fires_once_the_condition_held_for_its_duration():
    t = Timer(1.0)
    assert not t.held(True, 3 * DT)
    assert not t.held(True, 22 * DT)
    # 23 * 0.05 - 3 * 0.05 = 0.9999999999999999: update times are sums of frame periods
    assert t.held(True, 23 * DT)
    assert t.held(True, 40 * DT)  # and keeps firing while the condition holds


def test_timer_restarts_when_the_condition_fails_or_on_reset():
    t = Timer(1.0)
    t.held(True, 0.0)
    assert not t.held(False, 0.5) and t.since_s is None
    assert not t.held(True, 1.0)           # counts from 1.0 now
    assert t.held(True, 2.0)
    t.reset()
    assert not t.held(True, 2.5) and t.since_s == 2.5


def test_timer_of_zero_duration_fires_at_once():
    assert Timer(0.0).held(True, 7.0)


# -- searching: the path lock -----------------------------------------------------------

def test_a_clear_leader_held_for_lock_s_locks_at_its_path():
    sim = Sim()
    acts = sim.run(3.0, CLEAR, where={1: (42.5, 1.1), 2: (3.0, 1.0)})
    assert len(acts) == 1
    t, a = acts[0]
    assert (a.kind, a.piece, a.position_s, a.tempo) == (LOCK, 1, 42.5, 1.1)
    assert t == pytest.approx(DT + C.lock_s)  # first seen at the first update, held for lock_s
    assert sim.state == FOLLOWING


def test_a_leader_held_for_less_than_lock_s_does_not_lock_and_starts_over():
    sim = Sim()
    assert sim.run(C.lock_s - DT, CLEAR) == []
    assert sim.step({1: 2.0, 2: 1.7}).kind == NOTHING   # margin 0.3 < lock_margin for one update
    assert sim.run(C.lock_s, CLEAR) == []                # the lock_s count restarted ...
    assert sim.step(CLEAR).kind == LOCK                  # ... and ends lock_s after it


@pytest.mark.parametrize("support", [{1: 0.9, 2: -0.5}, {1: 2.0, 2: 1.6}])
def test_no_path_lock_below_lock_score_or_margin(support):
    assert Sim(EngineConfig(evidence_ratio=float("inf"))).run(5.0, support) == []


def test_too_little_history_gates_the_path_lock():
    sim = Sim()
    assert sim.run(3.0, CLEAR, history_s=C.min_history_s - 0.05) == []
    start = sim.t
    acts = sim.run(3.0, CLEAR, history_s=C.min_history_s)
    assert [a.kind for _, a in acts] == [LOCK]
    assert acts[0][0] - start == pytest.approx(DT + C.lock_s)


# -- searching: the evidence lock -------------------------------------------------------

def test_the_votes_lock_the_path_leader_when_the_margin_never_suffices():
    evidence = (1, C.evidence_ratio, C.evidence_min_s)       # exactly at both thresholds
    assert Sim().run(5.0, CLOSE) == []                      # the path margin alone: never
    acts = Sim().run(2.0, CLOSE, where={1: (12.0, 0.9), 2: (1.0, 1.0)}, evidence=evidence)
    assert len(acts) == 1
    t, a = acts[0]
    assert (a.kind, a.piece, a.position_s, a.tempo) == (LOCK, 1, 12.0, 0.9)  # the path's position
    assert t == pytest.approx(DT + C.lock_s)


@pytest.mark.parametrize("why, support, evidence, config", [
    ("too little heard", CLOSE, (1, 3.0, C.evidence_min_s - 0.05), ALONE),
    ("ratio too small", CLOSE, (1, C.evidence_ratio - 0.01, 20.0), ALONE),
    ("not the path leader", CLOSE, (2, 3.0, 20.0), ALONE),
    ("path below half lock_score", {1: 0.49 * C.lock_score, 2: 0.1}, (1, 3.0, 20.0), ALONE),
    ("rule off", CLOSE, (1, 3.0, 20.0), EngineConfig(evidence_ratio=float("inf"), calibration=None)),
])
def test_the_votes_do_not_lock(why, support, evidence, config):
    assert Sim(config).run(5.0, support, evidence=evidence) == [], why


def test_exact_ties_in_the_votes_never_lock():
    # the votes rule on its own, as its siblings above (the calibrated rule reads the votes as one view among many)
    assert Sim(ALONE).run(5.0, CLOSE, evidence=(1, 1.0, 20.0)) == []


# the re-ranking below rerank_min_zs, so its own rule never locks: only whether it backs the votes matters
LOW_ZS = C.rerank_min_zs - 3.0
VOTES_FOR_1 = (1, 3.0, 20.0)


@pytest.mark.parametrize("why, reranked", [
    ("another leads by the margin", ((2, LOW_ZS, 5.0, 1.0), (1, LOW_ZS - C.evidence_rerank_margin_zs, 6.0, 1.0))),
    ("ours not re-ranked at all", ((2, LOW_ZS, 5.0, 1.0), (3, LOW_ZS - 4.0, 6.0, 1.0))),
])
def test_the_votes_defer_to_a_re_ranking_that_ranks_their_piece_clearly_below_another(why, reranked):
    # the votes are order-free: a wrong piece can gather them while the re-ranking names the right one
    assert Sim(ALONE).run(5.0, CLOSE, evidence=VOTES_FOR_1, reranked=reranked) == [], why


@pytest.mark.parametrize("why, reranked, same_as, config", [
    ("ours leads the re-ranking", ((1, LOW_ZS, 5.0, 1.0), (2, LOW_ZS - 4.0, 6.0, 1.0)), None, ALONE),
    ("ours within the margin", ((2, LOW_ZS, 5.0, 1.0), (1, LOW_ZS - 0.9 * C.evidence_rerank_margin_zs, 6.0, 1.0)),
     None, ALONE),
    ("a duplicate of ours leads", ((2, LOW_ZS, 5.0, 1.0), (3, LOW_ZS - 4.0, 6.0, 1.0)), {2: 1}, ALONE),
    ("nothing re-ranked yet", (), None, ALONE),
    ("the check off", ((2, LOW_ZS, 5.0, 1.0), (1, LOW_ZS - 4.0, 6.0, 1.0)), None,
     dataclasses.replace(ALONE, evidence_rerank_margin_zs=math.inf)),
])
def test_the_votes_still_lock_where_the_re_ranking_does_not_rank_their_piece_clearly_below(why, reranked, same_as,
                                                                                          config):
    acts = Sim(config).run(2.0, CLOSE, evidence=VOTES_FOR_1, reranked=reranked, same_as=same_as)
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 1)], why
    assert acts[0][0] == pytest.approx(DT + C.lock_s), why


def test_a_votes_lead_the_re_ranking_stops_contradicting_locks_after_lock_s():
    against = ((2, LOW_ZS, 5.0, 1.0), (1, LOW_ZS - 2.0, 6.0, 1.0))
    sim = Sim(ALONE)
    assert sim.run(3.0, CLOSE, evidence=VOTES_FOR_1, reranked=against) == []
    acts = sim.run(2.0, CLOSE, evidence=VOTES_FOR_1, reranked=((1, LOW_ZS, 5.0, 1.0),))
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 1)]
    assert acts[0][0] == pytest.approx(3.0 + DT + C.lock_s)


# -- following -------------------------------------------------------------------------

def test_a_rival_beating_ours_by_switch_margin_for_switch_s_is_switched_to():
    sim = Sim()
    sim.follow(piece=1)
    start = sim.t
    rival = {1: 1.0, 2: 1.0 + C.switch_margin + 0.05}
    acts = sim.run(5.0, rival, where={1: (31.0, 1.0), 2: (7.5, 0.8)})
    t, a = acts[0]
    assert (a.kind, a.piece, a.position_s, a.tempo) == (SWITCH, 2, 7.5, 0.8)
    assert t - start == pytest.approx(DT + C.switch_s)  # before lost_s, though our margin is weak too
    assert sim.piece == 2


def test_with_switch_rival_margin_a_rival_must_also_lead_every_third_piece():
    config = dataclasses.replace(C, switch_rival_margin=0.5)
    rival = {1: 0.1, 2: 1.3, 3: 1.1}  # beats ours (an ended piece) by far, but not piece 3 by 0.5
    where = {1: (31.0, 1.0), 2: (7.5, 0.8), 3: (2.0, 1.0)}
    sim = Sim(config)
    sim.follow(piece=1)
    assert SWITCH not in [a.kind for _, a in sim.run(C.switch_s + 0.5, rival, where=where)]
    assert sim.piece == 1
    clear = {1: 0.1, 2: 1.7, 3: 1.1}
    sim = Sim(config)
    sim.follow(piece=1)
    acts = sim.run(C.switch_s + 0.5, clear, where=where)
    assert (acts[0][1].kind, acts[0][1].piece) == (SWITCH, 2)


def test_a_rival_below_lock_score_is_not_switched_to():
    sim = Sim()
    sim.follow(piece=1)
    # beats ours by 0.75 for longer than switch_s, but is no clear path itself
    assert sim.run(C.switch_s + 0.5, {1: 0.2, 2: 0.95}) == []


def test_a_weak_margin_for_lost_s_goes_lost():
    sim = Sim()
    sim.follow()
    start = sim.t
    acts = sim.run(5.0, {1: 1.5, 2: 1.5 - C.lost_margin / 2})
    assert [a.kind for _, a in acts] == [LOSE]
    assert acts[0][0] - start == pytest.approx(DT + C.lost_s)
    assert sim.state == LOST and sim.piece == 1


def test_our_path_below_half_lock_score_goes_lost_even_unrivalled():
    sim = Sim()
    sim.follow()
    acts = sim.run(5.0, {1: 0.45 * C.lock_score})
    assert [a.kind for _, a in acts] == [LOSE]


def run_reranked(sim, seconds, support, gain_zs_per_s, *, rival_below_zs=10.0, start_zs=40.0):
    """Step ``seconds`` with the re-ranking leading on our piece 1, its score changing by
    ``gain_zs_per_s``, piece 2 ``rival_below_zs`` below it; the actions taken."""
    out = []
    for _ in range(round(seconds / DT)):
        mine = start_zs + gain_zs_per_s * (sim.t - sim.t0)
        second = mine - rival_below_zs
        a = sim.step(support, reranked=((1, mine, 31.0, 1.0), (2, second, 5.0, 1.0)))
        if a.kind != NOTHING:
            out.append((sim.t, a))
    return out


CROWDED = {1: 1.5, 2: 1.5 - C.lost_margin / 2}  # a near-copy's path as good as ours


def test_a_weak_margin_does_not_lose_a_piece_the_rerank_holds():
    # a transposed copy crowds our few-second path while the whole-history alignment
    # (note templates) keeps growing on our piece: the player plays on, we follow on
    sim = Sim()
    sim.follow()
    sim.t0 = sim.t
    assert run_reranked(sim, 8.0, CROWDED, gain_zs_per_s=1.5) == []
    assert sim.state == FOLLOWING


@pytest.mark.parametrize("why, gain, rival_below", [
    ("our alignment falls: the music is no longer ours", -1.0, 10.0),
    ("our alignment is flat", 0.0, 10.0),
    ("another piece's alignment is as good", 1.5, C.rerank_margin_zs / 2),
])
def test_the_rerank_holds_only_a_growing_clear_lead(why, gain, rival_below):
    sim = Sim()
    sim.follow()
    sim.t0 = start = sim.t
    acts = run_reranked(sim, 8.0, CROWDED, gain, rival_below_zs=rival_below)
    assert [a.kind for _, a in acts] == [LOSE], why
    assert acts[0][0] - start <= DT + 2 * C.lost_s


def test_the_rerank_holds_only_while_our_path_led_within_lost_timeout_s():
    # music outside the corpus that the re-ranking keeps aligning with our piece: some other
    # piece's path beats ours from the lock on, so the hold ends lost_timeout_s after the lock
    sim = Sim()
    sim.follow()
    sim.t0 = start = sim.t
    acts = run_reranked(sim, 20.0, {1: 1.4, 2: 1.5}, gain_zs_per_s=1.5)
    assert [a.kind for _, a in acts] == [LOSE]
    assert acts[0][0] - start == pytest.approx(C.lost_timeout_s + C.lost_s, abs=2 * DT)


def test_the_rerank_does_not_hold_a_path_below_half_lock_score():
    sim = Sim()
    sim.follow()
    sim.t0 = sim.t
    acts = run_reranked(sim, 5.0, {1: 0.45 * C.lock_score}, gain_zs_per_s=1.5)
    assert [a.kind for _, a in acts] == [LOSE]


def test_without_the_window_the_margin_alone_loses_the_piece():
    sim = Sim(dataclasses.replace(C, lost_rerank_hold=False))
    sim.follow()
    sim.t0 = start = sim.t
    acts = run_reranked(sim, 5.0, CROWDED, gain_zs_per_s=1.5)
    assert [a.kind for _, a in acts] == [LOSE]
    assert acts[0][0] - start == pytest.approx(DT + C.lost_s)


def test_back_from_lost_when_the_rerank_holds_our_piece_again():
    sim = Sim()
    sim.follow()
    sim.t0 = sim.t
    run_reranked(sim, C.lost_s + DT, CROWDED, gain_zs_per_s=-1.0)  # unknown music: lost
    assert sim.state == LOST
    sim.t0 = sim.t
    acts = run_reranked(sim, 6.0, CROWDED, gain_zs_per_s=1.5, start_zs=37.0)  # our piece again
    assert [a.kind for _, a in acts] == [RESUME]
    assert sim.state == FOLLOWING


def test_a_pause_longer_than_pause_hold_s_goes_lost():
    sim = Sim()
    sim.follow()
    last_sound = sim.t
    acts = sim.run(6.0, CLEAR, sound=False)
    t, a = acts[0]
    assert a.kind == LOSE
    assert t - last_sound > C.pause_hold_s and t - last_sound <= C.pause_hold_s + DT + 1e-9


def test_a_far_better_path_in_our_piece_moves_the_tracker_after_relock_s():
    sim = Sim()
    sim.follow(position_s=31.0)
    start = sim.t
    where = {1: (55.0, 1.1), 2: (5.0, 1.0)}
    acts = sim.run(3.0, CLEAR, where=where, tracker_score=CLEAR[1] - C.lock_margin)
    t, a = acts[0]
    assert (a.kind, a.piece, a.position_s, a.tempo) == (JUMP, 1, 55.0, 1.1)
    assert t - start == pytest.approx(DT + C.relock_s)
    assert sim.tracker_s == 55.0 and sim.state == FOLLOWING


@pytest.mark.parametrize("where, tracker_score", [
    ({1: (31.0 + C.relock_distance_s - 0.1, 1.0), 2: (5.0, 1.0)}, 0.0),   # near: the HMM's business
    ({1: (55.0, 1.0), 2: (5.0, 1.0)}, CLEAR[1] - C.lock_margin + 0.1),   # far, but not better enough
])
def test_no_jump_for_a_near_or_not_better_path(where, tracker_score):
    sim = Sim()
    sim.follow(position_s=31.0)
    assert sim.run(3.0, CLEAR, where=where, tracker_score=tracker_score) == []


def test_a_lock_restarts_every_timer():
    sim = Sim()
    sim.follow(piece=1)
    # our margin is weak while the rival wins: switch after switch_s, lost_s not yet reached
    acts = sim.run(C.switch_s + DT, {1: 1.0, 2: 1.0 + C.switch_margin})
    assert [a.kind for _, a in acts] == [SWITCH]
    # the weak margin now counts from the switch: the full lost_s again
    start = sim.t
    acts = sim.run(5.0, {2: 1.5, 3: 1.45})
    assert [a.kind for _, a in acts] == [LOSE]
    assert acts[0][0] - start == pytest.approx(DT + C.lost_s)


# -- lost ------------------------------------------------------------------------------

def lost_sim(position_s=31.0):
    sim = Sim()
    sim.follow(position_s=position_s)
    sim.run(C.lost_s + DT, {1: 1.5, 2: 1.45})
    assert sim.state == LOST
    return sim


def test_back_from_lost_on_a_clear_path_near_the_tracker_keeps_the_tracker():
    sim = lost_sim(position_s=31.0)
    start = sim.t
    acts = sim.run(3.0, CLEAR, where={1: (32.0, 1.0), 2: (5.0, 1.0)})
    t, a = acts[0]
    assert (a.kind, a.piece, a.position_s) == (RESUME, 1, None)
    assert t - start == pytest.approx(DT + C.lock_s)
    assert sim.state == FOLLOWING and sim.tracker_s == 31.0


def test_back_from_lost_on_a_clear_path_elsewhere_restarts_the_tracker_there():
    sim = lost_sim(position_s=31.0)
    acts = sim.run(3.0, CLEAR, where={1: (60.0, 0.9), 2: (5.0, 1.0)})
    a = acts[0][1]
    assert (a.kind, a.position_s, a.tempo) == (RESUME, 60.0, 0.9)
    assert sim.tracker_s == 60.0


def test_back_from_lost_on_the_votes_alone():
    sim = lost_sim()
    acts = sim.run(3.0, CLOSE, evidence=(1, 3.0, 20.0))
    assert acts[0][1].kind == RESUME


def test_after_coming_back_a_weak_margin_needs_lost_s_again():
    sim = lost_sim()
    sim.run(C.lock_s + DT, CLEAR, where={1: (32.0, 1.0), 2: (5.0, 1.0)})
    assert sim.state == FOLLOWING
    start = sim.t
    acts = sim.run(5.0, {1: 1.5, 2: 1.45})
    assert [a.kind for _, a in acts] == [LOSE]
    assert acts[0][0] - start == pytest.approx(DT + C.lost_s)


def test_no_way_back_while_paused():
    sim = Sim()
    sim.follow()
    acts = sim.run(C.pause_hold_s + 0.5, CLEAR, sound=False)
    assert [a.kind for _, a in acts] == [LOSE]
    assert sim.run(2.0, CLEAR, sound=False) == []        # a clear path, but nobody plays
    start = sim.t
    acts = sim.run(2.0, CLEAR, where={1: (31.0, 1.0), 2: (5.0, 1.0)})
    assert acts[0][1].kind == RESUME and acts[0][0] - start == pytest.approx(DT + C.lock_s)


def test_lost_for_lost_timeout_s_searches_again_from_nothing():
    sim = lost_sim()
    lost_at = sim.t
    acts = sim.run(C.lost_timeout_s + 1.0, {1: 1.0, 2: 1.0})
    t, a = acts[0]
    assert a.kind == SEARCH and len(acts) == 1
    assert C.lost_timeout_s - 1e-9 <= t - lost_at <= C.lost_timeout_s + DT
    assert (sim.state, sim.piece, sim.tracker_s, sim.votes_forgotten) == (SEARCHING, None, None, 1)


def test_a_rival_is_switched_to_from_lost_too():
    sim = lost_sim()
    acts = sim.run(3.0, {1: 0.5, 2: 0.5 + C.switch_margin + 0.5})
    assert acts[0][1].kind == SWITCH and acts[0][1].piece == 2 and sim.state == FOLLOWING


# -- the contract ----------------------------------------------------------------------

def test_reset_forgets_every_timer():
    sim = Sim()
    sim.run(C.lock_s - DT, CLEAR)
    sim.policy.reset()
    assert sim.run(C.lock_s - DT, CLEAR) == []   # a fresh lock_s count after the reset


def test_the_policy_needs_neither_numpy_nor_the_engine():
    code = ("import sys, follower.policy; "
            "bad = [m for m in ('numpy', 'onnxruntime', 'numba', 'follower.engine', 'follower.index') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stdout + r.stderr


# -- searching: the re-rank lock ---------------------------------------------------------

# the re-rank rule on its own terms (whether the calibrated P backs its leader: tested below)
RERANK = EngineConfig(rerank_min_p=0.0)


def rerank(leader, score, margin, position_s=12.0, tempo=0.8):
    """A re-ranking whose leader scores ``score`` z-s, ``margin`` above the runner-up."""
    return ((leader, score, position_s, tempo), (9, score - margin, 3.0, 1.0))


def test_a_clear_rerank_leader_held_locks_at_its_alignment():
    sim = Sim(RERANK)
    lead = rerank(7, C.rerank_min_zs + 1, C.rerank_margin_zs + 0.1)
    # the path rule never locks on CLOSE; 7 has no verified path (so, left alone this long, the
    # path switch would move to piece 1 after switch_s: in the engine the tracker's path is 7's)
    acts = sim.run(C.rerank_lock_s + 1.0, CLOSE, reranked=lead)
    assert len(acts) == 1
    t, a = acts[0]
    assert (a.kind, a.piece, a.position_s, a.tempo) == (LOCK, 7, 12.0, 0.8)
    assert t == pytest.approx(DT + C.rerank_lock_s)


def test_a_rerank_lock_starts_at_the_verified_path_where_there_is_one():
    sim = Sim(RERANK)
    acts = sim.run(3.0, CLOSE, where={1: (42.5, 1.1), 2: (3.0, 1.0)},
                   reranked=rerank(2, C.rerank_min_zs + 1, C.rerank_margin_zs + 0.1))
    assert [(a.kind, a.piece, a.position_s, a.tempo) for _, a in acts] == [(LOCK, 2, 3.0, 1.0)]


@pytest.mark.parametrize("score, margin", [(C.rerank_min_zs - 0.5, 5.0), (C.rerank_min_zs + 5, C.rerank_margin_zs - 0.1)])
def test_a_rerank_leader_below_the_score_or_the_margin_never_locks(score, margin):
    # the re-rank rule alone: the calibrated rule reads a 5 z-s lead as sure (its own tests are below)
    alone = dataclasses.replace(RERANK, calibration=None)
    assert Sim(alone).run(10.0, CLOSE, reranked=rerank(2, score, margin)) == []


def test_a_new_rerank_leader_restarts_the_timer():
    held = dataclasses.replace(RERANK, rerank_lock_s=0.25)  # (the shipped rule holds for no time)
    sim = Sim(held)
    high = C.rerank_min_zs + 1
    almost = held.rerank_lock_s - DT  # one update short of a lock
    assert sim.run(almost, CLOSE, reranked=rerank(2, high, 1.0)) == []
    acts = sim.run(held.rerank_lock_s + 1.0, CLOSE, reranked=rerank(4, high, 1.0))
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 4)]
    assert acts[0][0] == pytest.approx(almost + DT + held.rerank_lock_s, abs=DT / 2)


def test_the_shipped_rerank_rule_locks_at_the_first_backed_clear_lead():
    # the calibrated P that backs the rule already stands for a lasting lead: no hold on top
    assert C.rerank_lock_s == 0.0
    acts = Sim(RERANK).run(1.0, CLOSE, reranked=rerank(7, C.rerank_min_zs + 1, C.rerank_margin_zs + 0.1))
    assert [(t, a.kind, a.piece) for t, a in acts] == [(pytest.approx(DT), LOCK, 7)]


def test_the_rerank_names_a_piece_only_while_searching():
    sim = Sim(ALONE)  # (the calibrated rule's recheck may, shortly after a lock: tested below)
    sim.follow(piece=1)
    # another piece leading the re-ranking does not move a followed piece: the paths decide
    acts = sim.run(5.0, {1: 2.0, 2: 1.0}, reranked=rerank(2, 50.0, 20.0))
    assert acts == [] and sim.piece == 1 and sim.state == FOLLOWING


def test_a_rerank_leader_the_calibrated_p_does_not_back_never_locks_with_rerank_min_p():
    # P = sigmoid(margin - 5) (ON_MARGIN below): a 3 z-s margin clears rerank_margin_zs but gives P 0.12
    gated = dataclasses.replace(C, calibration=ON_MARGIN, rerank_min_p=0.5, calibrated_p=0.99)
    assert Sim(gated).run(5.0, CLOSE, reranked=rerank(2, C.rerank_min_zs + 5, 3.0)) == []
    ungated = dataclasses.replace(gated, rerank_min_p=0.0)
    assert [(a.kind, a.piece) for _, a in Sim(ungated).run(C.rerank_lock_s + 1.0, CLOSE, reranked=rerank(2, C.rerank_min_zs + 5, 3.0))] \
        == [(LOCK, 2)]
    # backed (margin 6: P 0.73 >= 0.5, below calibrated_p), the re-rank rule locks after rerank_lock_s
    sim = Sim(gated)
    acts = sim.run(C.rerank_lock_s + 1.0, CLOSE, reranked=rerank(2, C.rerank_min_zs + 5, 6.0))
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 2)] and sim.policy.last_rule == "rerank"
    assert acts[0][0] == pytest.approx(DT + C.rerank_lock_s)


def test_a_duplicate_of_the_leader_is_not_its_rival():
    tie = {1: 2.0, 2: 2.0, 3: 1.0}  # pieces 1 and 2 are the same music: their paths tie for ever
    assert Sim().run(3.0, tie) == []  # as two pieces, neither ever leads
    sim = Sim()
    acts = sim.run(3.0, tie, same_as={2: 1})
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 1)]
    # followed, the twin's equal path neither makes ours weak nor switches to it
    assert sim.run(8.0, tie, same_as={2: 1}) == [] and sim.state == FOLLOWING and sim.piece == 1


# -- searching: the calibrated lock; following: its recheck -------------------------------

# P = sigmoid(re-ranking margin - 5): 0.5 at a margin of 5 z-s, 0.993 at 10
ON_MARGIN = Calibration(bias=-5.0, weights=(0.0, 1.0) + (0.0,) * (len(FEATURES) - 2))
CAL = EngineConfig(calibration=ON_MARGIN, calibrated_p=0.99, calibrated_s=0.25, calibrated_recheck_s=10.0,
                   rerank_min_zs=float("inf"), evidence_ratio=float("inf"))
SURE, UNSURE = 10.0, 4.0  # re-ranking margins: P 0.993 >= calibrated_p, P 0.27 below it


def test_a_calibrated_leader_held_for_calibrated_s_locks_at_its_path():
    sim = Sim(CAL)
    acts = sim.run(3.0, CLOSE, where={1: (42.5, 1.1), 2: (3.0, 0.9)}, reranked=rerank(2, 12.0, SURE))
    assert [(a.kind, a.piece, a.position_s, a.tempo) for _, a in acts] == [(LOCK, 2, 3.0, 0.9)]
    assert acts[0][0] == pytest.approx(DT + CAL.calibrated_s)
    assert sim.policy.last_rule == "calibrated" and sim.policy.probability >= CAL.calibrated_p


def test_a_calibrated_leader_without_a_path_locks_at_its_alignment():
    # (not run longer than switch_s: alone, with no path of 7, the path switch would move to 1)
    acts = Sim(CAL).run(1.0, CLOSE, reranked=rerank(7, 12.0, SURE, position_s=20.0, tempo=1.2))
    assert [(a.kind, a.piece, a.position_s, a.tempo) for _, a in acts] == [(LOCK, 7, 20.0, 1.2)]


@pytest.mark.parametrize("why, config, margin", [
    ("P below calibrated_p", CAL, UNSURE),
    ("rule off", dataclasses.replace(CAL, calibration=None), SURE),
])
def test_the_calibrated_rule_does_not_lock(why, config, margin):
    assert Sim(config).run(10.0, CLOSE, reranked=rerank(2, 12.0, margin)) == [], why


def test_a_new_calibrated_leader_restarts_the_timer():
    sim = Sim(CAL)
    almost = CAL.calibrated_s - DT  # one update short of a lock
    assert sim.run(almost, CLOSE, reranked=rerank(2, 12.0, SURE)) == []
    acts = sim.run(1.0, CLOSE, reranked=rerank(4, 12.0, SURE))
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 4)]
    assert acts[0][0] == pytest.approx(almost + DT + CAL.calibrated_s, abs=DT / 2)


def test_a_dip_below_calibrated_p_restarts_the_timer():
    sim = Sim(CAL)
    assert sim.run(CAL.calibrated_s - DT, CLOSE, reranked=rerank(2, 12.0, SURE)) == []
    assert sim.step(CLOSE, reranked=rerank(2, 12.0, UNSURE)).kind == NOTHING
    assert sim.run(CAL.calibrated_s, CLOSE, reranked=rerank(2, 12.0, SURE)) == []
    assert sim.step(CLOSE, reranked=rerank(2, 12.0, SURE)).kind == LOCK


def test_a_wrong_lock_is_switched_away_from_when_the_calibrated_rule_names_another_piece():
    sim = Sim(CAL)
    sim.follow(piece=1)  # locked on a clear path: say, wrongly
    start = sim.t
    # our path stays as good as any (no path switch, no lost), but all heard names piece 5 surely
    acts = sim.run(3.0, {1: 2.0, 2: 1.0, 5: 2.0}, where={1: (31.0, 1.0), 2: (5.0, 1.0), 5: (8.0, 0.9)},
                   reranked=rerank(5, 12.0, SURE, position_s=9.0, tempo=1.0))
    assert [(a.kind, a.piece, a.position_s, a.tempo) for _, a in acts] == [(SWITCH, 5, 8.0, 0.9)]
    assert acts[0][0] - start == pytest.approx(DT + CAL.calibrated_s)  # long before switch_s
    assert sim.policy.last_rule == "recheck" and sim.piece == 5


def test_no_recheck_once_calibrated_recheck_s_has_passed_or_for_our_own_piece():
    sim = Sim(CAL)
    sim.follow(piece=1)
    clear = {1: 2.0, 2: 1.0}
    assert sim.run(5.0, clear, reranked=rerank(1, 12.0, SURE)) == []      # it names ours: nothing
    assert sim.run(CAL.calibrated_recheck_s - 5.0, clear) == []
    # past the recheck window, a sure re-ranking of another piece no longer moves us: the paths decide
    assert sim.run(3.0, clear, reranked=rerank(5, 12.0, SURE)) == [] and sim.piece == 1


def test_no_recheck_onto_a_duplicate_of_our_piece():
    sim = Sim(CAL)
    sim.follow(piece=1)
    acts = sim.run(3.0, {1: 2.0, 2: 1.0}, reranked=rerank(5, 12.0, SURE), same_as={5: 1})
    assert acts == [] and sim.piece == 1


# the recheck may also take the re-rank rule's evidence: its leader backed by P >= rerank_min_p (0.9), which
# a margin of 8 z-s gives (P 0.95) while staying below the calibrated rule's own 0.99
CAL_RERANK = dataclasses.replace(CAL, rerank_min_zs=C.rerank_min_zs, rerank_min_p=0.9, recheck_rerank=True)
P95_MARGIN, P73_MARGIN = 8.0, 6.0  # re-ranking margins: P 0.95, P 0.73


def test_a_wrong_lock_is_switched_away_from_when_the_backed_rerank_rule_names_another_piece():
    sim = Sim(CAL_RERANK)
    sim.follow(piece=1)
    start = sim.t
    acts = sim.run(3.0, {1: 2.0, 2: 1.0, 5: 2.0}, where={1: (31.0, 1.0), 2: (5.0, 1.0), 5: (8.0, 0.9)},
                   reranked=rerank(5, C.rerank_min_zs + 1, P95_MARGIN))
    assert [(a.kind, a.piece, a.position_s, a.tempo) for _, a in acts] == [(SWITCH, 5, 8.0, 0.9)]
    assert acts[0][0] - start == pytest.approx(DT + C.rerank_lock_s)  # as soon as it would have locked it
    assert sim.policy.last_rule == "recheck" and sim.piece == 5
    # off, only the calibrated rule rechecks: P 0.95 < 0.99, so nothing moves us before switch_s
    off = Sim(dataclasses.replace(CAL_RERANK, recheck_rerank=False))
    off.follow(piece=1)
    assert off.run(1.0, {1: 2.0, 2: 1.0, 5: 2.0}, reranked=rerank(5, C.rerank_min_zs + 1, P95_MARGIN)) == []


@pytest.mark.parametrize("why, config, score, margin", [
    ("P below rerank_min_p", CAL_RERANK, C.rerank_min_zs + 1, P73_MARGIN),
    ("below rerank_min_zs", CAL_RERANK, C.rerank_min_zs - 0.5, P95_MARGIN),
    ("no calibration to back it", dataclasses.replace(CAL_RERANK, calibration=None), C.rerank_min_zs + 1, P95_MARGIN),
    ("rerank_min_p 0: not backed", dataclasses.replace(CAL_RERANK, rerank_min_p=0.0), C.rerank_min_zs + 1, P95_MARGIN),
])
def test_the_rerank_recheck_needs_the_rule_backed(why, config, score, margin):
    sim = Sim(config)
    sim.follow(piece=1)
    assert sim.run(1.0, {1: 2.0, 2: 1.0, 5: 2.0}, reranked=rerank(5, score, margin)) == [], why


def test_no_rerank_recheck_once_calibrated_recheck_s_has_passed():
    sim = Sim(CAL_RERANK)
    sim.follow(piece=1)
    assert sim.run(CAL_RERANK.calibrated_recheck_s, {1: 2.0, 2: 1.0}) == []
    assert sim.run(1.0, {1: 2.0, 2: 1.0}, reranked=rerank(5, C.rerank_min_zs + 1, P95_MARGIN)) == [] and sim.piece == 1


def test_calibrated_features_read_every_view_of_the_named_piece():
    s = Scores(state=SEARCHING, piece=None, ranked=[2, 3], support={2: 2.5, 3: 2.0},
               where={2: (1.0, 1.0), 3: (2.0, 1.0)}, history_s=3.0, last_sound_t_s=3.0,
               reranked=((2, 8.0, 1.0, 1.0), (3, 6.0, 2.0, 1.0)))
    piece, x = features(s, (2, 2.0, 3.5))
    f = dict(zip(FEATURES, x))
    assert piece == 2
    assert f["rerank_zs"] == 8.0 and f["rerank_margin_zs"] == pytest.approx(2.0)
    assert f["path_z"] == 2.5 and f["path_margin"] == pytest.approx(0.5)
    assert f["votes_log_ratio"] == pytest.approx(math.log(2.0)) and f["heard_s"] == 3.5
    assert f["all_agree"] == 1.0 and f["rerank_margin_share"] == pytest.approx(0.25)
    # the votes naming another piece count against it, and the views no longer agree
    _, x = features(s, (3, 2.0, 3.5))
    assert dict(zip(FEATURES, x))["votes_log_ratio"] == pytest.approx(-math.log(2.0))
    assert dict(zip(FEATURES, x))["all_agree"] == 0.0
    assert features(dataclasses.replace(s, ranked=[], support={}, reranked=()), (None, 0.0, 0.0))[0] is None
    # how well the music matches the index at all: the engine's mean best cosine, 0 before any
    assert dict(zip(FEATURES, x))["match_cos"] == 0.0
    assert dict(zip(FEATURES, features(dataclasses.replace(s, match_cos=0.86), (2, 2.0, 3.5))[1]))["match_cos"] == 0.86


def test_a_fit_made_before_the_last_feature_reads_as_it_was_fitted():
    old = Calibration(bias=-1.0, weights=(0.5,) * (len(FEATURES) - 1))
    x = (1.0,) * (len(FEATURES) - 1)
    assert old.probability(x + (0.9,)) == old.probability(x + (0.1,)) == pytest.approx(1 / (1 + math.exp(-(
        -1.0 + 0.5 * (len(FEATURES) - 1)))))


def test_calibration_probability_is_the_logistic_and_never_overflows():
    cal = Calibration(bias=1.0, weights=(2.0,) + (0.0,) * (len(FEATURES) - 1))
    assert cal.probability((0.5,) + (0.0,) * (len(FEATURES) - 1)) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert cal.probability((1e6,) + (0.0,) * (len(FEATURES) - 1)) == 1.0
    assert cal.probability((-1e6,) + (0.0,) * (len(FEATURES) - 1)) == 0.0


# -- rules_min_p: the path and votes rules backed by the calibrated P (--open-programme) -----------

BACKED = dataclasses.replace(CAL, calibrated_p=1.1, rules_min_p=0.9)  # (the calibrated rule itself never locks)


def test_a_clear_path_waits_for_the_calibrated_p_of_its_piece_when_rules_min_p_asks_it():
    # a clear path of 1, but the re-ranking's leader is 1 only weakly: no lock
    assert Sim(BACKED).run(5.0, CLEAR, reranked=rerank(1, 12.0, UNSURE)) == []
    # ... nor when P is high for another piece
    assert Sim(BACKED).run(5.0, CLEAR, reranked=rerank(2, 12.0, SURE)) == []
    # P high for the path's own piece: the path rule locks as it always did
    acts = Sim(BACKED).run(5.0, CLEAR, reranked=rerank(1, 12.0, SURE))
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 1)]
    # and without the setting (as shipped) the weak re-ranking does not hold the path back
    acts = Sim(dataclasses.replace(BACKED, rules_min_p=0.0)).run(5.0, CLEAR, reranked=rerank(1, 12.0, UNSURE))
    assert [(a.kind, a.piece) for _, a in acts] == [(LOCK, 1)]
