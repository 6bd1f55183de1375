"""A bundle's encoder for partly filled windows: which windows it embeds, and how."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO
from follower.bundle import AUDIO_FLOAT_ONNX, AUDIO_ONNX, AUDIO_PARTIAL_ONNX, load_bundle, read_config, sha256_file, \
    write_config
from follower.errors import BundleError
from follower.index import load_index


def with_partial(bundle_dir, out_dir, encoder_file):
    """``bundle_dir`` copied to ``out_dir`` with ``encoder_file`` as its encoder for partly filled windows."""
    shutil.copytree(bundle_dir, out_dir, ignore=shutil.ignore_patterns("*.index.npz"))
    shutil.copyfile(encoder_file, out_dir / AUDIO_PARTIAL_ONNX)
    cfg = read_config(out_dir)
    write_config(out_dir, type(cfg).from_dict({**cfg.to_dict(), "sha256": {
        **cfg.sha256, AUDIO_PARTIAL_ONNX: sha256_file(out_dir / AUDIO_PARTIAL_ONNX)}}))
    return out_dir


class Recording:
    """Wraps an encoder, keeping every window it embeds."""

    def __init__(self, encoder):
        self.encoder, self.windows = encoder, []

    def __call__(self, x):
        self.windows += list(x[:, 0].transpose(0, 2, 1))      # (frames, bins) each
        return self.encoder(x)

    def embed_window(self, window):
        self.windows.append(window.copy())
        return self.encoder.embed_window(window)


def run(bundle, index, audio, rate, block, config=None):
    from follower.engine import Engine

    engine = Engine(bundle, index, input_rate_hz=rate, config=config)
    out = []
    for i in range(0, len(audio), block):
        out += engine.push(audio[i:i + block], last=i + block >= len(audio))
    return [(u.t, u.piece, u.position_s, u.tempo, u.confidence, u.state, tuple(u.candidates)) for u in out]


def test_windows_that_start_in_silence_go_to_the_partial_encoder_with_that_silence_zeroed(
        chroma_bundle, corpus_index, rendered, tmp_path):
    from follower.engine import EngineConfig

    b = with_partial(chroma_bundle, tmp_path / "b", chroma_bundle / AUDIO_ONNX)
    bundle, index = load_bundle(b), load_index(corpus_index)
    assert bundle.audio_partial is not None
    audio, rate = sf.read(rendered["path"], dtype="float32", always_2d=True)
    audio = np.concatenate([np.zeros(rate, np.float32), audio[: 8 * rate].mean(axis=1)])  # a second of silence, then music
    full, partial = Recording(bundle.audio), Recording(bundle.audio_partial)
    bundle.audio, bundle.audio_partial = full, partial
    config = EngineConfig()
    run(bundle, index, audio, rate, 1024, config)
    min_frames = round(config.partial_min_silent_s * bundle.config.features.frame_rate_hz)
    assert len(partial.windows) >= 10 and len(full.windows) >= 50
    for w in partial.windows:                                   # silence first, then music
        lead = int(np.argmax(w.max(axis=1) > 0))
        assert lead >= min_frames and not w[:lead].any() and w[lead:].any()
    # the music fills the window: from then on the full-window encoder
    leads = [int(np.argmax(w.max(axis=1) >= config.silence_level)) for w in full.windows]
    assert max(leads) < min_frames


def test_a_bundle_without_it_embeds_every_window_with_the_full_encoder(chroma_bundle, corpus_index, rendered):
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    assert bundle.audio_partial is None
    audio, rate = sf.read(rendered["path"], dtype="float32")
    full = Recording(bundle.audio)
    bundle.audio = full
    n = sum(1 for u in run(bundle, index, audio[: 6 * rate], rate, 1024) if u)
    assert len(full.windows) > 0 and n > 0


def test_the_blend_ranks_by_the_weighted_mean_of_the_two_cosines():
    from follower.ahead import blend

    rng = np.random.default_rng(0)
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    p, f, scores = unit(rng.normal(size=16)), unit(rng.normal(size=16)), unit(rng.normal(size=(200, 16)))
    q = blend(p, f, 0.6)
    assert q.dtype == np.float32 and abs(np.linalg.norm(q) - 1) < 1e-6
    np.testing.assert_array_equal(np.argsort(-(scores @ q)), np.argsort(-(0.6 * scores @ p + 0.4 * scores @ f)))
    np.testing.assert_allclose(blend(p, f, 1.0), p, atol=1e-7)


def test_a_blended_query_joins_the_full_encoders_view_of_the_window_as_it_is(
        chroma_bundle, corpus_index, rendered, tmp_path):
    from dataclasses import replace

    from follower.ahead import blend
    from follower.engine import Engine, EngineConfig

    b = with_partial(chroma_bundle, tmp_path / "b", chroma_bundle / AUDIO_ONNX)
    bundle, index = load_bundle(b), load_index(corpus_index)
    audio, rate = sf.read(rendered["path"], dtype="float32", always_2d=True)
    audio = np.concatenate([np.zeros(rate, np.float32), audio[: 4 * rate].mean(axis=1)])
    full, partial = Recording(bundle.audio), Recording(bundle.audio_partial)
    bundle.audio, bundle.audio_partial = full, partial
    engine = Engine(bundle, index, input_rate_hz=rate, config=replace(EngineConfig(), partial_blend=0.5))
    for i in range(0, len(audio), 1024):
        engine.push(audio[i:i + 1024])
        if partial.windows:
            break
    window, loud = engine._window()
    full.windows.clear(), partial.windows.clear()
    q = engine._embed(window, loud)
    lead = int(np.argmax(loud))
    assert lead > 0 and not partial.windows[0][:lead].any()          # the partial encoder: the silence zeroed
    np.testing.assert_array_equal(full.windows[0], window)            # the full one: the window as it is
    np.testing.assert_array_equal(q, blend(bundle.audio_partial.encoder.embed_window(partial.windows[0]),
                                           bundle.audio.encoder.embed_window(window), 0.5))


@pytest.mark.parametrize("partial_blend", [1.0, 0.5])
def test_fast_replay_embeds_partly_filled_windows_in_batches_and_changes_nothing(tmp_path, partial_blend):
    """The shipped bundle with its float audio encoder standing in as the partial one (a real convolutional
    net, whose batches are exact): replay --fast's batched windows equal the paced run's."""
    import soxr

    shipped = REPO / "exported" / "default"
    if not (shipped / "chorales.index.npz").is_file():
        pytest.skip("the shipped bundle and index (exported/default/chorales.index.npz) are not there yet")
    b = with_partial(shipped, tmp_path / "b", shipped / AUDIO_FLOAT_ONNX)
    bundle, index = load_bundle(b), load_index(shipped / "chorales.index.npz")
    audio, rate = sf.read(REPO / "examples" / "chorale_excerpt.ogg", dtype="float32")
    audio = soxr.resample(audio[: 8 * rate], rate, 44100).astype(np.float32)
    rate = 44100
    # silence, music, a pause, music again: two starts
    audio = np.concatenate([np.zeros(rate, np.float32), audio[: 4 * rate], np.zeros(2 * rate, np.float32),
                            audio[4 * rate:]])
    partial = Recording(bundle.audio_partial)
    bundle.audio_partial = partial
    from dataclasses import replace

    from follower.engine import EngineConfig

    config = replace(EngineConfig(), partial_blend=partial_blend)
    live = run(bundle, index, audio, rate, 1024, config)
    n_live = len(partial.windows)
    partial.windows.clear()
    fast = run(bundle, index, audio, rate, 128 * 1024, config)
    assert fast == live
    assert n_live >= 20 and len(partial.windows) >= n_live  # (+ the batch check's windows)


def test_the_partial_encoder_names_another_bundle_but_keeps_its_indexes(chroma_bundle, tmp_path):
    b = with_partial(chroma_bundle, tmp_path / "b", chroma_bundle / AUDIO_ONNX)
    old, new = read_config(chroma_bundle), read_config(b)
    assert new.fingerprint != old.fingerprint              # the follower's first windows change
    assert new.index_fingerprint == old.index_fingerprint  # the score side does not
    (b / AUDIO_PARTIAL_ONNX).write_bytes(b"tampered")
    with pytest.raises(BundleError, match="audio_encoder.partial.onnx: checksum differs"):
        load_bundle(b)
    (b / AUDIO_PARTIAL_ONNX).unlink()
    with pytest.raises(BundleError, match="missing audio_encoder.partial.onnx"):
        load_bundle(b)
    assert json.loads((b / "config.json").read_text())["sha256"][AUDIO_PARTIAL_ONNX]
