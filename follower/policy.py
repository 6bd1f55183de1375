"""When the follower locks onto a piece, switches, loses it, or searches again.

:class:`LockPolicy` is the engine's state machine, on plain numbers: each update the
engine hands it :class:`Scores` (the verified paths of the candidate pieces and what
it knows of the locked piece) and the accumulated piece votes
(:meth:`follower.votes.PieceEvidence.leader`), and gets one :class:`Action` back to
apply. The policy keeps only its timers; the state and the locked piece are the
engine's and come in with the scores. Every rule below must hold continuously
(a :class:`Timer`) before it acts; all thresholds are :class:`follower.engine.EngineConfig`'s.

States: ``searching`` (no piece; also during silence before anything is found),
``following`` (a piece is locked), ``lost`` (the locked piece lost its margin, or the
player paused; the last piece is still reported until ``lost_timeout_s``).

searching
    * **path lock**: the best piece's path reaches ``lock_score`` and beats every
      other piece's by ``lock_margin``, after ``min_history_s`` of queries the
      verification can walk back over, for ``lock_s`` -> LOCK it at its path's
      position and tempo;
    * **evidence lock**: on real recordings the per-window similarities are low:
      several pieces' best paths pass ``lock_score`` and the true one rarely leads
      them by ``lock_margin``, while its share of all votes heard keeps growing. So
      after ``evidence_min_s`` of voting audio, a piece that leads the accumulated
      votes by ``evidence_ratio`` over the runner-up *and* is the path leader *and*
      whose path reaches half ``lock_score`` (the level below which a followed piece
      counts as weak, so a chance path never locks), for ``lock_s`` -> LOCK it
      without the path margin (two independent views, order-free and temporal,
      agree). The position is always the path's: the votes name the piece, never
      the position. ``evidence_ratio = inf`` turns the rule off.
      The votes defer to the re-ranking (below), while searching: a piece it ranks
      ``evidence_rerank_margin_zs`` or more below its own leader, or not at all while
      it has candidates, is not locked by the votes (they are order-free, and a wrong
      piece can gather them for seconds while the note templates already name the
      right one; ``inf``: the votes never ask).

    * **re-rank lock**: the re-ranking of the candidates over everything heard
      (:mod:`follower.rerank`) has a leader whose alignment score reaches
      ``rerank_min_zs`` and beats the runner-up's by ``rerank_margin_zs``, the same
      leader for ``rerank_lock_s`` -> LOCK it at its alignment's position and tempo.
      With ``rerank_min_p`` > 0 the calibrated P of that leader (below) must reach it
      too: a large score is not enough where the other views disagree (without a
      calibration, ``calibration = None``, the rule does not ask).
      On real recordings this is what names a piece first: the evidence of the whole
      performance adds up where a few seconds' paths stay close.

      The re-ranking names the piece only while searching (and in the recheck shortly
      after a lock, below): its scores remember the whole performance, so once a piece
      is locked the paths of the last seconds say better whether the music still is
      that piece.

    * **calibrated lock**: the rules above each wait until one view alone is sure; a
      logistic model (:mod:`follower.confidence`, ``calibration``) fitted on
      validation renders turns all the views at once (re-ranking score and margin,
      path z and margin, vote ratio, seconds heard) into P(the re-ranking's leader is
      the piece being played). P reaches ``calibrated_p``, the same leader for
      ``calibrated_s`` -> LOCK it, at its verified path's position if it has one, else
      at its alignment's. ``calibration = None`` turns the rule off.

following or lost
    * **switch**: another piece's path reaches ``lock_score``, beats ours by
      ``switch_margin`` and every third piece's by ``switch_rival_margin``, for
      ``switch_s`` -> SWITCH to it.
    * **recheck** (following, within ``calibrated_recheck_s`` of a lock, or of a switch
      while ``recheck_after_switch``): the calibrated
      confidence names another piece at ``calibrated_p`` for ``calibrated_s``, or (with
      ``recheck_rerank``) the re-rank rule, backed by the calibrated P at ``rerank_min_p``,
      names another piece -> SWITCH to it. An early lock can be wrong; the evidence that
      would have locked the right piece then undoes it at once, instead of the path
      switch's ``switch_s``. Only
      shortly after a lock: later, the re-ranking's memory of the whole performance
      would resist a real change of piece rather than follow it.

following
    * **lost**: our path's margin over the others stays below ``lost_margin`` (or
      our path below half ``lock_score``) for ``lost_s``, or no sound for more than
      ``pause_hold_s`` -> LOSE. The margin alone does not lose the piece while the
      re-ranking still *holds* it (``lost_rerank_hold``, :meth:`LockPolicy.rerank_holds`):
      our piece leads the alignment of everything heard by ``rerank_margin_zs``, its
      score grew over the last ``lost_s``, and our path led every other piece's at some
      update within the last ``lost_timeout_s``. On real recordings, the best of
      thousands of other pieces' few-second paths beats ours for seconds at a time while
      the player plays on (the more pieces, the higher that best chance path), where the
      alignment of everything heard still separates them. Music that is no longer our
      piece makes our alignment score fall (a path drifts down by ``rerank_offset_z`` a
      second); where the re-ranking was fooled as well (music outside the corpus that it
      aligns with our piece), the path that no longer leads ends the hold within
      ``lost_timeout_s``, the time a lost piece is kept anyway;
    * **jump**: a path in our piece more than ``relock_distance_s`` from the
      tracker's position beats the tracker's own path by ``lock_margin`` for
      ``relock_s`` (a jump or a repeat the HMM has not caught) -> JUMP the tracker
      there.

lost
    * **back**: not paused, and a clear path again (the path lock's score and
      margin), the evidence rule still naming our piece, or the re-ranking holding it
      again with our path above half ``lock_score``, for ``lock_s`` -> RESUME
      following (the tracker restarts at the path's position if that is more than
      ``relock_distance_s`` from its own);
    * otherwise after ``lost_timeout_s`` -> SEARCH again, from nothing (the engine
      forgets the accumulated votes too).

Timers run across states: a LOCK or SWITCH restarts them all, RESUME restarts the
"weak" one; a timer's condition is only looked at where the rules above reach it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import confidence

SEARCHING, FOLLOWING, LOST = "searching", "following", "lost"

# what the engine is to do (Action.kind)
NOTHING = "nothing"
LOCK = "lock"        # lock onto piece at (position_s, tempo): a fresh tracker, following
SWITCH = "switch"    # the same, from following or lost, onto another piece
LOSE = "lose"        # state -> lost; the piece and tracker stay
RESUME = "resume"    # state -> following; restart the tracker at (position_s, tempo) unless position_s is None
JUMP = "jump"        # restart the tracker at (position_s, tempo) inside the locked piece
SEARCH = "search"    # state -> searching: forget the piece, the tracker and the accumulated votes

_TOLERANCE_S = 1e-9  # update times are sums of frame periods: 1.0 s may arrive as 0.9999999999


class Timer:
    """Whether a condition has held continuously for ``duration_s``."""

    def __init__(self, duration_s: float):
        self.duration_s = duration_s
        self.since_s: float | None = None   # when the condition last became true; None while false

    def held(self, condition: bool, t_s: float) -> bool:
        """Note ``condition`` at time ``t_s``; True once it has held for ``duration_s``."""
        if not condition:
            self.since_s = None
            return False
        if self.since_s is None:
            self.since_s = t_s
        return t_s - self.since_s >= self.duration_s - _TOLERANCE_S

    def reset(self) -> None:
        self.since_s = None


@dataclass(frozen=True)
class Scores:
    """What the engine knows this update; pieces are index piece numbers."""

    state: str                                  # SEARCHING, FOLLOWING or LOST
    piece: int | None                           # the locked piece (None while searching)
    ranked: Sequence[int]                       # candidate pieces, best verified path first
    support: Mapping[int, float]                # piece -> z-score of its best path
    where: Mapping[int, tuple[float, float]]    # piece -> (position_s, tempo) of that path
    history_s: float                            # audio queries the verification walked back over, s
    last_sound_t_s: float | None                # audio time of the last sounding frame; None: none yet
    tracker_score: float | None = None          # z-score of the tracker's own path (None without one)
    tracker_position_s: float | None = None     # the tracker's position (None without one)
    # (piece, alignment score z-s, position_s, tempo) of the re-ranked candidates, best first
    reranked: Sequence[tuple[int, float, float, float]] = ()
    # piece -> the piece whose music it duplicates (the same notes under two names in the
    # corpus, follower.rerank): neither is a rival of the other, or their tie would never end
    same_as: Mapping[int, int] = field(default_factory=dict)
    # mean best cosine of the audio against the whole index over the last 2 s (None: nothing sounding yet):
    # how well the music matches anything indexed, the one absolute view (follower.engine.MATCH_WINDOW_S)
    match_cos: float | None = None

    def same(self, a, b) -> bool:
        """Are pieces ``a`` and ``b`` the same music (the same piece, or duplicates)?"""
        if a is None or b is None:
            return a is b
        ra, rb = self.same_as.get(a, a), self.same_as.get(b, b)
        return a == b or ra == b or rb == a or ra == rb


@dataclass(frozen=True)
class Action:
    kind: str = NOTHING
    piece: int | None = None
    position_s: float | None = None
    tempo: float | None = None


NO_ACTION = Action()


class LockPolicy:
    """The state machine of the module docstring; ``config`` is an EngineConfig."""

    def __init__(self, config):
        c = self.config = config
        self.lock = Timer(c.lock_s)          # clear path (searching), or back (lost)
        self.evidence = Timer(c.lock_s)      # the evidence rule names a piece (searching)
        self.low = Timer(c.lost_s)           # our margin is weak (following)
        self.switch = Timer(c.switch_s)      # a rival beats us (following, lost)
        self.relock = Timer(c.relock_s)      # a far better path in our piece (following)
        self.rerank = Timer(c.rerank_lock_s)  # one piece leads the re-ranking clearly (searching)
        self._rerank_leader = None            # the piece that timer is running for
        self.calibrated = Timer(c.calibrated_s)  # P(right piece) high (searching)
        self._calibrated_leader = None        # the piece that timer is running for
        self.probability = 0.0                # the calibrated P of the last searching update
        self.last_rule: str | None = None     # which rule took the last LOCK (path, votes, rerank, calibrated)
        self.locked_at_s: float | None = None  # when the last LOCK or SWITCH was taken
        self.lost_since_s: float | None = None
        self._held: list[tuple[float, float]] = []  # (t_s, re-ranking score) of our piece, oldest first
        self._path_led_s: float | None = None  # when our path last led every other piece's (or the lock)

    @property
    def evidence_on(self) -> bool:
        return math.isfinite(self.config.evidence_ratio)

    def reset(self) -> None:
        for timer in (self.lock, self.evidence, self.low, self.switch, self.relock, self.rerank, self.calibrated):
            timer.reset()
        self.lost_since_s = None
        self._held = []
        self._path_led_s = None
        self._rerank_leader = None
        self._calibrated_leader = None
        self.locked_at_s = None

    def step(self, s: Scores, evidence, t_s: float) -> Action:
        """The action for this update; ``evidence`` = (leader, ratio, heard_s) of the piece votes."""
        c = self.config
        ranked, support = s.ranked, s.support
        if s.state == SEARCHING:
            best = ranked[0] if ranked else None
            s1 = support[best] if ranked else 0.0
            s2 = max((support[p] for p in ranked[1:] if not s.same(p, best)), default=0.0)
            enough = s.history_s >= c.min_history_s
            lead = self.evidence_lead(ranked, support, evidence)
            sure = self.calibrated_lead(s, evidence)  # (sets self.probability, which the other rules may read)
            if best is not None and self.lock.held(enough and s1 >= c.lock_score and s1 - s2 >= c.lock_margin
                                                   and self.backed(s, best), t_s):
                return self._locked(LOCK, best, s.where[best], t_s, "path")
            if lead is not None and self.rerank_below(s, lead):
                lead = None  # the re-ranking, over everything heard, names another piece clearly
            if self.evidence.held(lead is not None and self.backed(s, lead), t_s):  # the votes name it clearly
                return self._locked(LOCK, lead, s.where[lead], t_s, "votes")
            clear = self.rerank_lead(s.reranked)
            if self.rerank.held(clear is not None, t_s):  # everything heard names it clearly
                return self._locked(LOCK, clear[0], s.where.get(clear[0], clear[2:]), t_s, "rerank")
            if self.calibrated.held(sure is not None, t_s):  # all views together name it
                return self._locked(LOCK, sure, self._where(s, sure), t_s, "calibrated")
            return NO_ACTION
        mine = support.get(s.piece, 0.0)
        others = max((support[p] for p in ranked if not s.same(p, s.piece)), default=0.0)
        rival = next((p for p in ranked if not s.same(p, s.piece)), None)
        rest = max((support[p] for p in ranked if not s.same(p, s.piece) and not s.same(p, rival)), default=0.0)
        clear = support[rival] - rest >= c.switch_rival_margin if rival is not None else False
        if rival is not None and self.switch.held(support[rival] >= c.lock_score
                                                  and support[rival] - mine >= c.switch_margin and clear, t_s):
            return self._locked(SWITCH, rival, s.where[rival], t_s)
        if (s.state == FOLLOWING and self.locked_at_s is not None
                and t_s - self.locked_at_s <= c.calibrated_recheck_s + _TOLERANCE_S):
            other = self.calibrated_lead(s, evidence)
            if self.calibrated.held(other is not None and not s.same(other, s.piece), t_s):
                return self._locked(SWITCH, other, self._where(s, other), t_s, "recheck")
            # the re-rank rule's evidence too, where the calibrated P backs it (unbacked, a leader
            # this early could take the piece back and forth)
            backed = c.recheck_rerank and c.calibration is not None and c.rerank_min_p > 0
            clear = self.rerank_lead(s.reranked) if backed else None
            if self.rerank.held(clear is not None and not s.same(clear[0], s.piece), t_s):
                return self._locked(SWITCH, clear[0], s.where.get(clear[0], clear[2:]), t_s, "recheck")
        paused = s.last_sound_t_s is None or t_s - s.last_sound_t_s > c.pause_hold_s
        held = self.rerank_holds(s, t_s)
        if s.state == FOLLOWING:
            weak = self.low.held((mine - others < c.lost_margin and not held) or mine < 0.5 * c.lock_score, t_s)
            if weak or paused:
                self.lost_since_s = t_s
                return Action(LOSE, s.piece)
            if s.piece in s.where and s.tracker_score is not None:
                pos, tempo = s.where[s.piece]
                far = abs(pos - s.tracker_position_s) > c.relock_distance_s
                if self.relock.held(far and mine - s.tracker_score >= c.lock_margin, t_s):
                    return Action(JUMP, s.piece, pos, tempo)
            return NO_ACTION
        if s.state == LOST:
            back = ((mine >= c.lock_score and mine - others >= c.lock_margin)
                    or self.evidence_lead(ranked, support, evidence) == s.piece
                    or (held and mine >= 0.5 * c.lock_score))
            if not paused and self.lock.held(back, t_s):
                self.low.reset()
                pos, tempo = s.where[s.piece]
                if abs(pos - s.tracker_position_s) > c.relock_distance_s:
                    return Action(RESUME, s.piece, pos, tempo)
                return Action(RESUME, s.piece)
            if t_s - self.lost_since_s >= c.lost_timeout_s:
                return Action(SEARCH)
        return NO_ACTION

    def evidence_lead(self, ranked: Sequence[int], support: Mapping[int, float], evidence) -> int | None:
        """The piece the accumulated votes name clearly, if it also has the best verified path.

        On real recordings every piece's best path scores well above ``lock_score`` and the
        path margin is what stays small; the votes stand in for that margin, not for the
        path: the piece must still be the path leader, and above half the lock score (the
        level below which a followed piece counts as weak), so a chance path never locks.
        """
        c = self.config
        if not self.evidence_on or not ranked:
            return None
        lead, ratio, heard_s = evidence
        if lead != ranked[0] or heard_s < c.evidence_min_s - _TOLERANCE_S or ratio < c.evidence_ratio:
            return None
        return lead if support[lead] >= 0.5 * c.lock_score else None

    def rerank_below(self, s: Scores, piece: int) -> bool:
        """Does the re-ranking rank ``piece`` clearly below another piece: its alignment score
        ``evidence_rerank_margin_zs`` or more under the leader's, or not among the candidates at
        all while there are some? (False without a re-ranking, or with the setting inf.)"""
        margin = self.config.evidence_rerank_margin_zs
        if not s.reranked or not math.isfinite(margin):
            return False
        top, top_zs = s.reranked[0][0], s.reranked[0][1]
        if s.same(top, piece):
            return False
        mine = max((r[1] for r in s.reranked if s.same(r[0], piece)), default=-math.inf)
        return top_zs - mine >= margin

    def rerank_holds(self, s: Scores, t_s: float) -> bool:
        """Does the re-ranking still hold our piece: does it lead the alignment of everything
        heard (no other music within ``rerank_margin_zs``), with a score higher now than
        ``lost_s`` ago, while our path led every other piece's within ``lost_timeout_s``?
        Called once per update while following or lost, it keeps that window of our
        piece's scores. (False with ``lost_rerank_hold`` off, or while our piece is not
        re-ranked.)"""
        c = self.config
        window_s = c.lost_s
        if self._path_led_s is None or (s.ranked and s.same(s.ranked[0], s.piece)):
            self._path_led_s = t_s  # from the lock on, and each time our path leads
        mine = next((r[1] for r in s.reranked if s.same(r[0], s.piece)), None)
        if not c.lost_rerank_hold or mine is None:
            self._held = []
            return False
        self._held.append((t_s, mine))
        while len(self._held) > 1 and self._held[1][0] <= t_s - window_s + _TOLERANCE_S:
            self._held.pop(0)  # keep one sample at or before the window's start
        then_s, then = self._held[0]
        second = max((r[1] for r in s.reranked if not s.same(r[0], s.piece)), default=-math.inf)
        return (t_s - then_s >= window_s - _TOLERANCE_S and mine > then
                and mine - second >= c.rerank_margin_zs
                and t_s - self._path_led_s <= c.lost_timeout_s + _TOLERANCE_S)

    def rerank_lead(self, reranked):
        """(piece, score, position_s, tempo) of the re-ranking's leader if it leads clearly:
        its alignment score reaches ``rerank_min_zs`` and beats the runner-up's by
        ``rerank_margin_zs``. A change of leader restarts the re-ranking timer."""
        c = self.config
        lead = reranked[0] if reranked else None
        if lead is None or lead[0] != self._rerank_leader:
            self.rerank.reset()
            self._rerank_leader = None if lead is None else lead[0]
        if lead is None:
            return None
        second = reranked[1][1] if len(reranked) > 1 else 0.0
        if (c.rerank_min_p > 0 and c.calibration is not None
                and self.probability < c.rerank_min_p):
            return None  # the other views do not back the leader enough (P is of the same leader)
        return lead if lead[1] >= c.rerank_min_zs and lead[1] - second >= c.rerank_margin_zs else None

    def backed(self, s: Scores, piece: int) -> bool:
        """May the path or votes rule lock ``piece``: with ``rules_min_p`` > 0 (and a calibration) only
        where the calibrated P names the same piece at that level or above."""
        c = self.config
        if c.rules_min_p <= 0 or c.calibration is None:
            return True
        return self.probability >= c.rules_min_p and s.same(self._calibrated_leader, piece)

    def calibrated_lead(self, s: Scores, evidence) -> int | None:
        """The piece the calibrated confidence names, if its P reaches ``calibrated_p``
        (:mod:`follower.confidence`); a change of piece restarts the rule's timer."""
        c = self.config
        model = c.calibration
        if model is None:
            return None
        piece, x = confidence.features(s, evidence)
        if piece != self._calibrated_leader:
            self.calibrated.reset()
            self._calibrated_leader = piece
        if piece is None:
            self.probability = 0.0
            return None
        self.probability = model.probability(x)
        if piece not in s.where and not any(r[0] == piece for r in s.reranked):
            return None  # no position to lock it at (cannot happen with the engine's inputs)
        return piece if self.probability >= c.calibrated_p else None

    @staticmethod
    def _where(s: Scores, piece: int) -> tuple[float, float]:
        """The verified path's (position, tempo) of ``piece``, else its alignment's."""
        if piece in s.where:
            return s.where[piece]
        r = next(r for r in s.reranked if r[0] == piece)
        return r[2], r[3]

    def _locked(self, kind: str, piece: int, where: tuple[float, float], t_s: float,
                rule: str | None = None) -> Action:
        self.reset()  # a new lock starts every rule afresh
        self.last_rule = rule or kind
        # the recheck window opens at a lock from searching, and at a switch unless recheck_after_switch is off
        if kind != SWITCH or self.config.recheck_after_switch:
            self.locked_at_s = t_s
        position_s, tempo = where
        return Action(kind, piece, position_s, tempo)
