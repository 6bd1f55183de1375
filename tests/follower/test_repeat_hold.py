"""Literal repeats: the fine aligner keeps its place when the coarse position moves to the other
occurrence, and gives way when the coarse position is where the music is."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from follower.aligner import FineAligner, FineConfig, score_templates
from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.repeat_hold import RepeatHold

FC = FeatureConfig()
FPS = FC.frame_rate_hz
SECTION_S = 10.0


def _a_a_b_templates(cfg: FineConfig) -> np.ndarray:
    """A piece of three 10 s sections, the second a literal copy of the first: chords every 0.5 s."""
    rng = np.random.default_rng(7)
    a = rng.integers(48, 80, size=(20, 3))
    b = rng.integers(48, 80, size=(20, 3))
    onsets, pitches = [], []
    for k, chords in enumerate((a, a, b)):
        for i, chord in enumerate(chords):
            onsets += [k * SECTION_S + 0.5 * i] * 3
            pitches += list(chord)
    onsets = np.array(onsets)
    return score_templates(onsets, onsets + 0.5, np.array(pitches), FC, cfg)


def test_hold_accumulates_only_a_lasting_advantage():
    hold = RepeatHold(margin=0.02, evidence=1.0, leak_s=5.0, fps=FPS)
    assert hold.enabled and not hold.active
    hold.open()
    assert not any(hold.observe(0.9, 0.9) for _ in range(1000))  # equal matches: a literal repeat
    assert hold.against == 0.0 and hold.active
    wins = [hold.observe(0.9, 0.7) for _ in range(20)]             # the coarse place matches clearly better
    assert wins[-1] and not wins[0] and wins.index(True) == 5      # 0.18 per frame: the 6th frame passes 1.0
    hold.clear()
    assert hold.against == 0.0 and not hold.active
    assert not RepeatHold(margin=0.02, evidence=0.0, leak_s=5.0, fps=FPS).enabled


def test_bad_hold_settings_are_one_clear_error():
    with pytest.raises(ConfigError, match="hold_leak_s"):
        FineConfig(hold_leak_s=0.0)
    assert FineConfig.from_dict(FineConfig(hold_evidence=2.5).to_dict()).hold_evidence == 2.5


def test_match_is_even_between_the_two_occurrences_of_a_repeat():
    cfg = FineConfig()
    t = _a_a_b_templates(cfg)
    al = FineAligner(t, FPS, cfg)
    frame = t[int(3.2 * FPS)] * 2.0  # the level does not matter
    assert al.match(frame, 3.2) == pytest.approx(al.match(frame, 13.2), abs=1e-6)
    assert al.match(frame, 3.2) == pytest.approx(1.0, abs=1e-5)
    assert al.match(frame, 23.2) < al.match(frame, 3.2) - 0.05
    assert al.match(frame, 99.0) == 0.0  # outside the piece


def _engine_fine(cfg: FineConfig):
    """The engine's fine step alone: its aligner on the A-A-B templates, a tracker stub, one frame per update."""
    from follower.engine import Engine

    engine = Engine.__new__(Engine)  # the fine step reads only these attributes
    engine.config = SimpleNamespace(fine=cfg, stride_frames=1)
    engine.fps = FPS
    engine._frame_lag_s = 0.0
    engine.aligner = FineAligner(_a_a_b_templates(cfg), FPS, cfg)
    engine.tracker = SimpleNamespace(jumped=False, tempo=1.0)
    engine._hold = RepeatHold(margin=cfg.hold_margin, evidence=cfg.hold_evidence, leak_s=cfg.hold_leak_s, fps=FPS)
    engine._settle_hold = RepeatHold(margin=cfg.hold_margin, evidence=cfg.hold_evidence, leak_s=cfg.hold_leak_s, fps=FPS)
    engine._fine_fresh, engine._fine_moved = True, False
    engine.watch, engine._provisional_n, engine._settle_n, engine._n = None, -1, -1, 0  # no jump watch
    engine._own_from_n = -1
    engine.width = 42
    engine._kept = max(engine.width, int(round(cfg.settle_backfill_s * FPS)) + 1)
    return engine


def _follow(engine, audio_s, coarse_s, *, move_at: int | None = None, moves=()):
    """Frames of the templates at ``audio_s`` (score seconds), the coarse path at ``coarse_s``, which jumps at
    update ``move_at`` (or at each of ``moves``); reported positions."""
    t = engine.aligner.templates
    out, heard = [], []
    for k, (a, c) in enumerate(zip(audio_s, coarse_s)):
        heard = (heard + [t[min(int(a * FPS), len(t) - 1)]])[-engine._kept:]  # the window: the newest 42 frames
        kept = np.array(heard)
        engine._heard = lambda kept=kept: (kept, np.ones(len(kept), bool))
        engine._window = lambda kept=kept: (kept[-engine.width:], np.ones(len(kept[-engine.width:]), bool))
        engine._n = k
        engine.tracker.jumped = k == move_at or k in moves
        out.append(engine._fine(float(c), 1.0))
    return np.array(out)


@pytest.mark.parametrize("evidence", [1.0, 0.0])
def test_the_engine_keeps_its_place_when_the_coarse_path_moves_to_the_repeat(evidence):
    cfg = dataclasses.replace(FineConfig(), hold_evidence=evidence)
    engine = _engine_fine(cfg)
    truth = np.arange(2 * FPS, 9.5 * FPS) / FPS + 0.5 / FPS  # the first A, at the written tempo
    coarse = truth.copy()
    move = int(2 * FPS)
    coarse[move:] += SECTION_S                                # after 2 s the coarse path says: the second A
    reported = _follow(engine, truth, coarse, move_at=move)
    late = np.abs(reported[move:] - truth[move:])
    if evidence > 0:  # held: the reported position stays on the music heard
        assert np.mean(late <= 0.25) >= 0.95, np.percentile(late, [50, 90])
        assert engine._hold.active
    else:             # the rule off: the engine before it, which took the coarse move at once
        assert np.mean(late >= SECTION_S - 1) >= 0.95


def test_the_engine_follows_the_coarse_path_to_where_the_music_really_went():
    engine = _engine_fine(FineConfig())
    before = np.arange(2 * FPS, 5 * FPS) / FPS + 0.5 / FPS     # the first A ...
    after = 21.0 + np.arange(5 * FPS) / FPS                    # ... then a skip to 1 s into B (B begins at 20 s)
    truth = np.concatenate([before, after])
    coarse = truth.copy()
    reported = _follow(engine, truth, coarse, move_at=len(before))
    err = np.abs(reported - truth)[len(before):]
    first_good = int(np.argmax(err <= 0.25))
    assert err[first_good:].max() <= 0.25
    assert first_good / FPS <= 1.0, first_good / FPS  # the templates' evidence moves it within a second


def _late_jump(engine, late_s: float):
    """The first A, then a skip into B that the coarse path follows ``late_s`` later; errors after the skip."""
    before = np.arange(2 * FPS, 5 * FPS) / FPS + 0.5 / FPS
    after = 21.0 + np.arange(3 * FPS) / FPS
    truth = np.concatenate([before, after])
    coarse = truth.copy()
    late = int(late_s * FPS)
    coarse[len(before):len(before) + late] = before[-1] + np.arange(1, late + 1) / FPS  # still on the old course
    reported = _follow(engine, truth, coarse, move_at=len(before) + late)
    return np.abs(reported - truth)[len(before) + late:]


@pytest.mark.parametrize("backfill_s", [2.0, 0.0])
def test_the_frames_heard_before_a_late_coarse_move_count_at_once(backfill_s):
    cfg = dataclasses.replace(FineConfig(), hold_backfill_s=backfill_s)
    err = _late_jump(_engine_fine(cfg), 1.0)
    if backfill_s > 0:  # the second of B already heard proves the move at its first update
        assert err.max() <= 0.25, err[:5]
    else:               # only the frames after the move count: some frames on the old place
        assert err[0] > 2.0


def test_the_frames_heard_before_a_move_to_the_repeat_do_not_move_the_aligner():
    engine = _engine_fine(FineConfig())  # the shipped settings weigh the frames heard before the move
    assert engine.config.fine.hold_backfill_s > 0
    truth = np.arange(2 * FPS, 9.5 * FPS) / FPS + 0.5 / FPS
    coarse = truth.copy()
    move = int(3 * FPS)  # the window is full of the first A when the coarse path moves to the second
    coarse[move:] += SECTION_S
    reported = _follow(engine, truth, coarse, move_at=move)
    assert np.mean(np.abs(reported[move:] - truth[move:]) <= 0.25) >= 0.95
    assert engine._hold.active


def test_a_negative_backfill_is_one_clear_error():
    with pytest.raises(ConfigError, match="hold_backfill_s"):
        FineConfig(hold_backfill_s=-1.0)


@pytest.mark.parametrize("settle_s", [2.1, 0.0])
def test_after_a_jump_the_coarse_path_may_move_on_to_the_other_copy(settle_s):
    """The player skips from B back into the first A; the coarse path, its window still half full of B,
    lands on the second A first and on the first A a second later."""
    engine = _engine_fine(dataclasses.replace(FineConfig(), settle_s=settle_s))
    before = 21.0 + np.arange(3 * FPS) / FPS          # B ...
    after = 2.0 + np.arange(5 * FPS) / FPS             # ... then back to the first A
    truth = np.concatenate([before, after])
    first, second = len(before) + int(FPS), len(before) + int(2 * FPS)
    coarse = truth.copy()
    coarse[len(before):first] = before[-1] + np.arange(1, first - len(before) + 1) / FPS  # not heard yet
    coarse[first:second] += SECTION_S                  # the second A: sounds the same, and nearer to B
    reported = _follow(engine, truth, coarse, moves=(first, second))
    assert np.abs(reported[first:second] - truth[first:second] - SECTION_S).max() <= 0.25  # B is gone: it moves
    err = np.abs(reported[second:] - truth[second:])
    if settle_s > 0:  # settling after its first move, the coarse path's second is followed
        assert err.max() <= 0.25
    else:             # the dispute rule keeps the first landing: the copies never prove one another wrong
        assert np.all(np.abs(err - SECTION_S) <= 0.25)


def test_a_move_to_the_repeat_long_after_the_last_move_is_still_disputed():
    engine = _engine_fine(dataclasses.replace(FineConfig(), settle_s=2.1))
    before = 21.0 + np.arange(3 * FPS) / FPS
    after = 2.0 + np.arange(8 * FPS) / FPS
    truth = np.concatenate([before, after])
    first, second = len(before) + int(FPS), len(before) + int(5 * FPS)  # the second move 4 s after the first
    coarse = truth.copy()
    coarse[len(before):first] = before[-1] + np.arange(1, first - len(before) + 1) / FPS
    coarse[second:] += SECTION_S                       # long after: the other copy, as the dispute rule knows it
    reported = _follow(engine, truth, coarse, moves=(first, second))
    assert np.abs(reported[first:] - truth[first:]).max() <= 0.25
    assert engine._hold.active


def test_a_settling_move_to_where_the_music_is_not_is_still_disputed():
    """Settling after its first move, the coarse path moves on to a place whose notes the frames heard do
    not play: the aligner keeps the place the frames prove."""
    engine = _engine_fine(dataclasses.replace(FineConfig(), settle_s=2.1))
    before = 21.0 + np.arange(3 * FPS) / FPS           # B ...
    after = 2.0 + np.arange(5 * FPS) / FPS              # ... then back to the first A
    truth = np.concatenate([before, after])
    first, second = len(before) + int(FPS), len(before) + int(1.5 * FPS)
    coarse = truth.copy()
    coarse[len(before):first] = before[-1] + np.arange(1, first - len(before) + 1) / FPS
    coarse[second:] += 2 * SECTION_S + 5.0             # half a second later: into B, 25 s on
    reported = _follow(engine, truth, coarse, moves=(first, second))
    assert np.abs(reported[first:] - truth[first:]).max() <= 0.25
    assert engine._hold.active


@pytest.mark.parametrize("settle_backfill_s", [3.0, 2.0])
def test_a_settling_move_to_a_copy_is_weighed_with_the_music_since_the_jump(settle_backfill_s):
    """The player skips from B back to the first A's last chord, just before the second A, and plays on
    into the second A. The coarse path lands there, then, 2.8 s after the jump, with nothing but the
    second A in its window, on the first A (the same notes, 10 s earlier). Only the frames of that last
    chord, 2.3-2.8 s back, tell the two apart: weighed back 3 s they keep the aligner where it is."""
    engine = _engine_fine(dataclasses.replace(FineConfig(), settle_backfill_s=settle_backfill_s))
    before = 25.0 + np.arange(3 * FPS) / FPS           # B ...
    after = 9.5 + np.arange(5 * FPS) / FPS              # ... then the first A's last chord and the second A
    truth = np.concatenate([before, after])
    first, second = len(before) + int(FPS), len(before) + int(2.8 * FPS)
    coarse = truth.copy()
    coarse[len(before):first] = before[-1] + np.arange(1, first - len(before) + 1) / FPS  # not heard yet
    coarse[second:] -= SECTION_S                        # the first A: before it, no chord at all
    reported = _follow(engine, truth, coarse, moves=(first, second))
    assert np.abs(reported[first:second] - truth[first:second]).max() <= 0.25
    err = np.abs(reported[second:] - truth[second:])
    if settle_backfill_s >= 3.0:
        assert err.max() <= 0.25
    else:  # within 2 s back both places play the same notes: the later landing is followed
        assert np.all(np.abs(err - SECTION_S) <= 0.25)
