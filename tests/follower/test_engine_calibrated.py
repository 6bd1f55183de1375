"""The calibrated lock on a real render: the engine, and the study that fits the rule.

``studies.lock_calibration`` chooses the rule's threshold by replaying the policy's
recorded inputs (the engine held searching) instead of re-running the engine for every
setting. That is only sound if the replay locks exactly when and where the engine does;
this checks it on a render, with the calibration the engine ships.
"""

import dataclasses

import pytest

from follower.bundle import load_bundle
from follower.engine import FOLLOWING, Engine, EngineConfig
from follower.index import load_index
from studies.lock_calibration import first_lock, record_item


def engine_lock(bundle, index, path, config):
    from studies.decoders import read_audio

    signal, rate = read_audio(path)
    engine = Engine(bundle, index, input_rate_hz=rate, config=config)
    for start in range(0, len(signal), 1024):
        for u in engine.push(signal[start:start + 1024], last=start + 1024 >= len(signal)):
            if u.state == FOLLOWING:
                return u.t, u.piece
    return float("inf"), None


@pytest.mark.parametrize("config", [EngineConfig(), EngineConfig(calibration=None)], ids=["shipped", "no calibrated rule"])
def test_the_replayed_inputs_lock_when_and_where_the_engine_does(chroma_bundle, corpus_index, rendered, config):
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    steps = record_item(bundle, index, rendered["path"])
    piece = [str(p) for p in index.piece_ids].index(rendered["piece"])
    t_replay, right, rule = first_lock({"piece": piece, "steps": steps,
                                        "partial_encoder": bundle.audio_partial is not None}, config)
    t_engine, engine_piece = engine_lock(bundle, index, rendered["path"], config)
    assert t_replay == pytest.approx(t_engine) and right and engine_piece == rendered["piece"]
    assert rule in ("path", "votes", "rerank", "calibrated")


def test_a_calibration_that_is_never_sure_leaves_the_other_rules_as_they_were(chroma_bundle, corpus_index, rendered):
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    steps = record_item(bundle, index, rendered["path"])
    piece = [str(p) for p in index.piece_ids].index(rendered["piece"])
    trace = {"piece": piece, "steps": steps}
    # (nor asked to back the re-rank rule's leader: rerank_min_p 0, as without a calibration)
    never = dataclasses.replace(EngineConfig(), calibrated_p=1.01, rerank_min_p=0.0)
    assert first_lock(trace, never)[:2] == first_lock(trace, EngineConfig(calibration=None))[:2]
