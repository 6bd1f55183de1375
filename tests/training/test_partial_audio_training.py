"""`training partial-audio`: a copy of the audio encoder trained on partly filled windows against the
bundle's fixed score embeddings, resumable, joining the bundle beside its other encoders."""

from pathlib import Path

import numpy as np
import pytest

from follower.bundle import AUDIO_PARTIAL_FLOAT_ONNX, AUDIO_PARTIAL_ONNX, load_bundle, read_config
from follower.errors import ConfigError

pytest.importorskip("onnx")
from training.augment.partial import PartialWindowConfig, silence_start  # noqa: E402
from training.data.toy import ToySplit  # noqa: E402
from training.fit.partial_audio import PartialAudioConfig, add_to_bundle, fixed_partial, train_partial_audio  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "default"


@pytest.fixture(scope="module")
def splits():
    snip = read_config(SHIPPED).snippets
    return ToySplit(120, seed=0, snippet_config=snip), ToySplit(40, seed=1, snippet_config=snip)


def test_fixed_partial_keeps_the_last_share_of_each_window():
    x = np.ones((3, 1, 4, 10), np.float32)
    y = fixed_partial(x, np.array([1.0, 0.5, 0.3]))
    assert [int((row[0].max(axis=0) > 0).sum()) for row in y] == [10, 5, 3]
    assert (y[1, ..., 5:] == 1).all() and not y[1, ..., :5].any() and (x == 1).all()


def test_training_resumes_and_the_encoder_joins_the_bundle(splits, tmp_path):
    train, valid = splits
    ckpt = tmp_path / "ckpt.pt"
    cfg = PartialAudioConfig(epochs=1, batch=40, lr=1e-3)
    logs = []
    first = train_partial_audio(cfg, SHIPPED, train, valid, ckpt, log=logs.append, progress=False)
    assert ckpt.is_file() and first["measured"]["curve"][0]["epoch"] == 0 and len(first["measured"]["curve"]) == 2
    # the same settings resume (nothing left to do); another learning rate is another run
    logs.clear()
    again = train_partial_audio(cfg, SHIPPED, train, valid, ckpt, log=logs.append, progress=False)
    assert logs[0].startswith("resuming after epoch 1") and len(again["measured"]["curve"]) == 2
    with pytest.raises(ConfigError, match="other settings"):
        train_partial_audio(PartialAudioConfig(epochs=1, batch=40, lr=2e-3), SHIPPED, train, valid, ckpt,
                            log=logs.append, progress=False)

    info = add_to_bundle(SHIPPED, tmp_path / "b", first)
    old, new = read_config(SHIPPED), read_config(tmp_path / "b")
    assert new.fingerprint == info["fingerprint"] != old.fingerprint
    assert new.index_fingerprint == old.index_fingerprint          # the shipped indexes stay valid
    assert info["max_abs_diff_onnx_vs_torch"] < 1e-4
    assert new.training["audio_partial"]["source_bundle"] == old.fingerprint
    bundle = load_bundle(tmp_path / "b")
    assert bundle.audio_partial is not None and (tmp_path / "b" / AUDIO_PARTIAL_ONNX).is_file()
    # a quantised bundle's float original of its old encoder is gone: training quantize would start from it
    assert not (tmp_path / "b" / AUDIO_PARTIAL_FLOAT_ONNX).exists() and AUDIO_PARTIAL_FLOAT_ONNX not in new.sha256
    x = silence_start(valid.audio_batch(np.arange(4)), np.random.default_rng(0), PartialWindowConfig(p_partial=1))
    e = bundle.audio_partial(x)
    assert e.shape == (4, new.embed_dim) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    # a stopped run given more epochs goes on from its checkpoint
    logs.clear()
    more = train_partial_audio(PartialAudioConfig(epochs=2, batch=40, lr=1e-3), SHIPPED, train, valid, ckpt,
                               log=logs.append, progress=False)
    assert logs[0].startswith("resuming after epoch 1") and len(more["measured"]["curve"]) == 3


def test_too_few_pairs_is_one_clear_error(splits, tmp_path):
    train, valid = splits
    with pytest.raises(ConfigError, match="need at least 500"):
        train_partial_audio(PartialAudioConfig(batch=500), SHIPPED, train, valid, tmp_path / "c.pt",
                            log=lambda s: None, progress=False)


def test_tempo_and_room_augmentation_wrap_the_training_split_only():
    from test_improvements import ramp_split
    from training.augment.acoustic import AugmentedSplit
    from training.augment.tempo import TempoStretchedSplit

    with pytest.raises(ConfigError, match="tempo_range"):
        PartialAudioConfig(tempo_range=(1.2, 0.6))
    cfg = PartialAudioConfig(tempo_range=[0.5, 1.6], augment_audio=True)
    assert cfg.tempo_range == (0.5, 1.6)
    assert PartialAudioConfig.from_dict(cfg.to_dict()) == cfg      # as the checkpoint compares it
    base = ramp_split()
    split = cfg.augmented(base, frame_rate_hz=20.0)
    # stretched first, then the room: the acoustic effects act on the stretched snippet
    assert isinstance(split, AugmentedSplit) and isinstance(split._split, TempoStretchedSplit)
    assert split._split.tempo_config.scale_range == (0.5, 1.6) and split.pairs is base.pairs
    x = split.audio_batch([0, 2])
    assert x.shape == base.audio_batch([0, 2]).shape and not np.allclose(x, base.audio_batch([0, 2]))
    np.testing.assert_array_equal(split.roll_batch([0, 2]), base.roll_batch([0, 2]))  # targets untouched
    assert PartialAudioConfig().augmented(base, 20.0) is base                          # the defaults: as rendered
