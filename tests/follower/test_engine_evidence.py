"""The engine's evidence rule: accumulated order-free piece votes may lock the path leader.

The path rule is switched off here with an unreachable ``lock_margin`` (what happens on
real recordings, where every piece's best path is well above ``lock_score`` and the
margin stays small), so any lock comes from the accumulated votes.
"""

import numpy as np
import pytest

from conftest import have_fluidsynth, render
from follower.bundle import load_bundle
from follower.engine import FOLLOWING, LOST, SEARCHING, Engine, EngineConfig
from follower.index import load_index

pytestmark = pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or the TimGM6mb soundfont is absent")

# the path rule never locks, and the re-ranking and the calibrated rule (which would name the piece too) are off
NO_PATH_LOCK = dict(lock_margin=1e9, rerank_candidates=0, calibration=None)


def replay(engine, audio, block=700):
    out = []
    for i in range(0, len(audio), block):
        out += engine.push(audio[i:i + block])
    return out


@pytest.fixture(scope="module")
def piece3(corpus):
    return render(corpus / "piece3.mid")  # 20 s at the written tempo, 22.05 kHz


def test_votes_lock_the_piece_when_the_path_margin_is_never_enough(chroma_bundle, corpus_index, piece3):
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    off = replay(Engine(bundle, index, input_rate_hz=22050,
                        config=EngineConfig(evidence_ratio=float("inf"), **NO_PATH_LOCK)), piece3)
    assert {u.state for u in off} == {SEARCHING}

    c = EngineConfig(**NO_PATH_LOCK)
    engine = Engine(bundle, index, input_rate_hz=22050, config=c)
    on = replay(engine, piece3)
    locked = [u for u in on if u.state == FOLLOWING]
    assert locked, f"never locked; last candidates {on[-1].candidates}"
    assert {u.piece for u in locked} == {"piece3"}
    # not before the votes of evidence_min_s of sounding audio (plus the first window) are in
    assert locked[0].t >= c.evidence_min_s
    assert locked[0].candidates[0][0] == "piece3"  # the votes' leader is also the path leader
    # the position is the verified path's, then the HMM's: it follows the render
    late = [u for u in locked if u.t >= locked[0].t + 1.0 and u.t < 19.5]
    err = np.array([u.position_s - u.t for u in late])
    assert len(err) > 20 and np.mean(np.abs(err) < 0.5) >= 0.9, np.round(err[::10], 2)
    lead, ratio, heard_s = engine.evidence()
    assert index.piece_ids[lead] == "piece3" and ratio >= c.evidence_ratio and heard_s > c.evidence_min_s


def test_votes_are_forgotten_when_the_engine_searches_again(chroma_bundle, corpus, corpus_index, piece3):
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    engine = Engine(bundle, index, input_rate_hz=22050, config=EngineConfig(**NO_PATH_LOCK))
    first = replay(engine, np.concatenate([piece3, np.zeros(22050 * 16, np.float32)]))
    assert first[-1].state == SEARCHING and any(u.state == LOST for u in first)
    assert engine.evidence() == (None, 0.0, 0.0)  # the search starts from nothing
    # a new piece after the pause is named from its own votes only
    piece6 = render(corpus / "piece6.mid")
    second = replay(engine, piece6)
    locked = [u for u in second if u.state == FOLLOWING]
    assert locked and {u.piece for u in locked} == {"piece6"}
    assert index.piece_ids[engine.evidence()[0]] == "piece6"

    engine.reset()
    assert engine.evidence() == (None, 0.0, 0.0)
