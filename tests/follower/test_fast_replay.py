"""`replay --fast` embeds windows in batches ahead of the updates; its outputs are the paced run's."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO


def jsonl_rows(path):
    # the engine's outputs: not the time they took, nor how late they went out
    return [{k: v for k, v in json.loads(line).items() if k not in ("latency_ms", "lag_ms")} for line in open(path)]


def test_fast_replay_writes_the_paced_runs_json_lines(tmp_path):
    """The shipped bundle and index on the example recording (a real render of a chorale)."""
    bundle = REPO / "exported" / "default"
    if not (bundle / "chorales.index.npz").is_file():
        pytest.skip("the shipped bundle and index (exported/default/chorales.index.npz) are not there yet")
    logs = {}
    for mode in ("paced", "fast"):
        logs[mode] = tmp_path / f"{mode}.jsonl"
        r = subprocess.run([sys.executable, "-m", "follower.cli", "replay", str(REPO / "examples" / "chorale_excerpt.ogg"),
                            "--duration", "7", "--quiet", "--osc", "127.0.0.1:9", "--jsonl", str(logs[mode]),
                            "--max-lag", "inf"]  # a busy machine must not make the paced run skip updates
                           + (["--fast"] if mode == "fast" else []), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    paced, fast = jsonl_rows(logs["paced"]), jsonl_rows(logs["fast"])
    assert len(paced) == 140 and any(row["state"] == "following" for row in paced)  # it locks within 7 s
    assert fast == paced


def test_fast_replay_of_music_off_440_writes_the_paced_runs_json_lines(tmp_path):
    """The example recording 35 cents flat: the front end hears it at 440 from about a second in
    (follower.tuning), at the same frame whether the audio comes in 1024- or 131072-sample blocks."""
    import librosa

    bundle = REPO / "exported" / "default"
    if not (bundle / "chorales.index.npz").is_file():
        pytest.skip("the shipped bundle and index (exported/default/chorales.index.npz) are not there yet")
    audio, rate = sf.read(REPO / "examples" / "chorale_excerpt.ogg", dtype="float32", always_2d=True)
    flat = librosa.resample(audio.mean(axis=1)[: rate * 8], orig_sr=rate, target_sr=rate / 2 ** (-35 / 1200),
                            res_type="soxr_hq")
    path = tmp_path / "flat.flac"
    sf.write(path, flat, rate)
    logs = {}
    for mode in ("paced", "fast"):
        logs[mode] = tmp_path / f"{mode}.jsonl"
        r = subprocess.run([sys.executable, "-m", "follower.cli", "replay", str(path), "--duration", "7", "--quiet",
                            "--osc", "127.0.0.1:9", "--jsonl", str(logs[mode]), "--max-lag", "inf"]
                           + (["--fast"] if mode == "fast" else []), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "tuning: " in r.stderr and "heard as if at 440" in r.stderr, r.stderr
    paced, fast = jsonl_rows(logs["paced"]), jsonl_rows(logs["fast"])
    assert any(row["state"] == "following" for row in paced)
    assert fast == paced


class CountingEncoder:
    """Wraps the bundle's audio encoder and records the batch size of every call."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.batches: list = []

    def __call__(self, x):
        self.batches.append(len(x))
        return self.encoder(x)


def run_engine(bundle, index, audio, rate, block, stride=1):
    from follower.engine import Engine, EngineConfig

    engine = Engine(bundle, index, input_rate_hz=rate, config=EngineConfig(stride_frames=stride))
    out = []
    for i in range(0, len(audio), block):
        out += engine.push(audio[i:i + block], last=i + block >= len(audio))
    return [(u.t, u.piece, u.position_s, u.tempo, u.confidence, u.state, tuple(u.candidates)) for u in out]


def shipped():
    from follower.bundle import load_bundle
    from follower.index import load_index

    bundle = REPO / "exported" / "default"
    if not (bundle / "chorales.index.npz").is_file():
        pytest.skip("the shipped bundle and index (exported/default/chorales.index.npz) are not there yet")
    return load_bundle(bundle), load_index(bundle / "chorales.index.npz")


@pytest.mark.parametrize("stride", [1, 3])
def test_long_blocks_embed_in_batches_and_change_nothing(stride, monkeypatch):
    """The example recording as 44.1 kHz stereo (resampled inside), with silence before and after; the
    windows embedded ahead are searched together too."""
    import soxr

    from follower import knn
    from follower.ahead import batches_exact

    alone, together = [], []  # queries searched one by one, and together
    one, many = knn.topk, knn.topk_many
    monkeypatch.setattr(knn, "topk", lambda e, q, k: (alone.append(1), one(e, q, k))[1])
    monkeypatch.setattr(knn, "topk_many", lambda e, q, k: (together.append(len(q)), many(e, q, k))[1])

    bundle, index = shipped()
    audio, rate = sf.read(REPO / "examples" / "chorale_excerpt.ogg", dtype="float32")
    audio = soxr.resample(audio[: 10 * rate], rate, 44100).astype(np.float32)
    rate = 44100
    audio = np.concatenate([np.zeros(rate, np.float32), audio, np.zeros(2 * rate, np.float32)])
    audio = np.stack([audio, 0.7 * audio], axis=1)
    assert batches_exact(bundle.audio, bundle.config.snippets.audio_frames, bundle.config.features.n_bins)
    counting = CountingEncoder(bundle.audio)
    bundle.audio = counting
    live = run_engine(bundle, index, audio, rate, 1024, stride)  # as paced replay reads it
    assert set(counting.batches) == {1} and not together
    n_live, n_searched = len(counting.batches), len(alone)
    counting.batches.clear()
    alone.clear()
    fast = run_engine(bundle, index, audio, rate, 128 * 1024, stride)  # as replay --fast reads it
    assert max(counting.batches) > 1 and sum(counting.batches) == n_live + 16  # the same windows + the check (8 alone, 8 in a batch)
    # (the check that the two kernels agree here searches 4 queries alone and together, once per engine)
    assert len(alone) == 4 and sum(together) == n_searched + 4 and max(together) > 8
    assert fast == live
    assert any(u[5] == "following" for u in live)


def test_an_encoder_whose_batches_differ_is_called_window_by_window(chroma_bundle, corpus_index, rendered):
    """The test bundle's MatMul encoder sums a batch in another order than one row: no batches then."""
    from follower.ahead import batches_exact
    from follower.bundle import load_bundle
    from follower.index import load_index

    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    audio, rate = sf.read(rendered["path"], dtype="float32")
    audio = audio[: 12 * rate]
    exact = batches_exact(bundle.audio, bundle.config.snippets.audio_frames, bundle.config.features.n_bins)
    counting = CountingEncoder(bundle.audio)
    bundle.audio = counting
    live = run_engine(bundle, index, audio, rate, 1024)
    fast = run_engine(bundle, index, audio, rate, 128 * 1024)
    assert fast == live
    assert (max(counting.batches) > 1) == exact  # batches (of up to follower.ahead.BATCH) only where exact
