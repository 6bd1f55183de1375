"""Scores.match_cos: how well the music heard matches anything in the index (the lock's one absolute view)."""

import numpy as np
import pytest

from conftest import have_fluidsynth, render
from follower.bundle import load_bundle
from follower.engine import MATCH_WINDOW_S, Engine
from follower.index import load_index

pytestmark = pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or the TimGM6mb soundfont is absent")


def watched(engine):
    """Every Scores the lock policy reads, and the best cosine of every search, with their audio times."""
    seen, best = [], []
    step, topk = engine._policy.step, engine._topk

    def spy_step(scores, evidence, t_s):
        seen.append((t_s, scores))
        return step(scores, evidence, t_s)

    def spy_topk(q, k):
        rows, sims = topk(q, k)
        best.append((engine._n / engine.fps, float(sims.max())))
        return rows, sims

    engine._policy.step, engine._topk = spy_step, spy_topk
    return seen, best


def test_match_cos_is_the_mean_best_cosine_of_the_last_two_seconds_and_none_in_silence(
        chroma_bundle, corpus, corpus_index):
    engine = Engine(load_bundle(chroma_bundle), load_index(corpus_index), input_rate_hz=22050)
    seen, best = watched(engine)
    audio = np.concatenate([np.zeros(22050 * 3, np.float32), render(corpus / "piece3.mid")[: 22050 * 12]])
    for i in range(0, len(audio), 2048):
        engine.push(audio[i:i + 2048])
    assert all(s.match_cos is None for t, s in seen if t < 2.5)  # nothing sounding yet: no view
    checked = 0
    for t, s in seen:
        recent = [m for tb, m in best if t - MATCH_WINDOW_S <= tb <= t]
        if recent:
            assert s.match_cos == pytest.approx(np.mean(recent), abs=1e-6)
            checked += 1
    assert checked > 100 and all(0.0 < s.match_cos <= 1.0 for _, s in seen if s.match_cos is not None)
