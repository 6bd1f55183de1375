import json

import mido
import numpy as np
import pytest
import torch

from follower.bundle import AUDIO_ONNX, SCORE_ONNX, load_bundle, read_config, sha256_file
from follower.errors import ConfigError
from follower.features import FeatureConfig, spectrogram
from follower.midi import load_midi
from follower.snippets import SnippetConfig, audio_input, cut, roll_input, score_roll
from training.export import export_bundle, untrained_bundle
from training.model.encoders import ModelConfig, build_model
from training.paths import data_root

ATOL = 1e-4


def three_note_midi(path):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    for pitch in (60, 64, 67):
        tr.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        tr.append(mido.Message("note_off", note=pitch, velocity=0, time=480))
    mid.save(path)
    return path


def real_inputs(tmp_path, snip=SnippetConfig(), feat=FeatureConfig()):
    """Encoder inputs from a sine-bank signal and a three-note MIDI built here."""
    rate = feat.sample_rate_hz
    t = np.arange(2 * rate) / rate
    signal = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((261.6, 329.6, 392.0), 1)).astype(np.float32)
    spec = spectrogram(signal, rate, feat)
    roll = score_roll(load_midi(three_note_midi(tmp_path / "three.mid")), snip, feat.frame_rate_hz)
    centres = [5, 20, 30]
    return audio_input(cut(spec, centres, snip.audio_frames)), roll_input(cut(roll, centres, snip.roll_frames), snip)


def trained_bn_model(cfg=ModelConfig()):
    """A model whose BatchNorm statistics are not the defaults (as after training)."""
    model = build_model(cfg, seed=1).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, *cfg.audio_shape) * 3, (torch.rand(8, *cfg.roll_shape) < 0.1).float())
    return model.eval()


def torch_embed(enc, x):
    with torch.no_grad():
        return enc(torch.from_numpy(x)).numpy()


def test_onnxruntime_reproduces_torch_random_and_real(tmp_path):
    model = trained_bn_model()
    audio, roll = real_inputs(tmp_path)
    config = export_bundle(model, tmp_path / "b", check_inputs={"audio": audio, "roll": roll},
                           metrics={"snippet": {"test": {"audio2score": {"r@1": 0.5}}}})
    bundle = load_bundle(tmp_path / "b")
    rng = np.random.default_rng(0)
    for n in (1, 7):  # dynamic batch axis
        xa = rng.gamma(1.0, 0.5, (n, 1, 92, 42)).astype(np.float32)
        xr = (rng.random((n, 2, 88, 42)) < 0.05).astype(np.float32)
        np.testing.assert_allclose(bundle.audio(xa), torch_embed(model.audio, xa), atol=ATOL)
        np.testing.assert_allclose(bundle.score(xr), torch_embed(model.score, xr), atol=ATOL)
    ea, er = bundle.audio(audio), bundle.score(roll)
    np.testing.assert_allclose(ea, torch_embed(model.audio, audio), atol=ATOL)
    np.testing.assert_allclose(er, torch_embed(model.score, roll), atol=ATOL)
    np.testing.assert_allclose(np.linalg.norm(ea, axis=1), 1.0, atol=1e-5)  # normalised in the graph
    assert {i.name for i in bundle.audio.session.get_inputs()} == {"audio"}
    assert {i.name for i in bundle.score.session.get_inputs()} == {"roll"}
    assert bundle.audio.session.get_outputs()[0].name == "embedding"
    assert config.training["onnx_max_abs_diff"]["audio_real"] <= ATOL
    on_disk = read_config(tmp_path / "b")
    assert on_disk.sha256[AUDIO_ONNX] == sha256_file(tmp_path / "b" / AUDIO_ONNX)
    assert on_disk.embed_dim == 32 and on_disk.snippets == SnippetConfig()
    assert {"torch", "onnxruntime"} <= set(on_disk.versions)
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["snippet"]["test"]["audio2score"]["r@1"] == 0.5


def test_untrained_bundle_is_seeded(tmp_path):
    a = untrained_bundle(tmp_path / "a", seed=0)
    b = untrained_bundle(tmp_path / "b", seed=0)
    x = np.random.default_rng(2).random((2, 1, 92, 42), dtype=np.float32)
    np.testing.assert_array_equal(load_bundle(tmp_path / "a").audio(x), load_bundle(tmp_path / "b").audio(x))
    assert a.training["untrained"] is True


def test_one_roll_channel(tmp_path):
    snip = SnippetConfig(roll_channels=("sustain",))
    model = trained_bn_model(ModelConfig.for_snippets(snip, FeatureConfig()))
    export_bundle(model, tmp_path / "b", snippet_config=snip)
    assert load_bundle(tmp_path / "b").score(np.zeros((3, 1, 88, 42), np.float32)).shape == (3, 32)


def test_mismatched_snippet_config_one_line(tmp_path):
    with pytest.raises(ConfigError, match="do not match the snippet settings"):
        export_bundle(build_model(seed=0), tmp_path / "b", snippet_config=SnippetConfig(audio_frames=40))


@pytest.mark.skipif(not (data_root() / "real" / "bach10").is_dir(), reason="Bach10 recordings absent (../shared/data)")
def test_onnxruntime_on_a_real_recording(tmp_path):
    import soundfile as sf

    folder = sorted((data_root() / "real" / "bach10").iterdir())[0]
    signal, rate = sf.read(folder / f"{folder.name}.flac", frames=44100 * 6, dtype="float32")
    spec = spectrogram(signal, rate)
    audio = audio_input(cut(spec, [30, 60, 90], 42))
    model = trained_bn_model()
    export_bundle(model, tmp_path / "b")
    np.testing.assert_allclose(load_bundle(tmp_path / "b").audio(audio), torch_embed(model.audio, audio), atol=ATOL)


def test_cca_layer_is_in_the_graph(tmp_path):
    cfg = ModelConfig(cca=True)
    model = trained_bn_model(cfg)
    with torch.no_grad():
        for enc in (model.audio, model.score):
            enc.proj_mean.copy_(torch.randn(32) * 0.1)
            enc.proj_matrix.copy_(torch.randn(32, 32))
    export_bundle(model, tmp_path / "b")
    bundle = load_bundle(tmp_path / "b")
    x = (np.random.default_rng(3).random((4, 2, 88, 42)) < 0.05).astype(np.float32)
    np.testing.assert_allclose(bundle.score(x), torch_embed(model.score, x), atol=ATOL)


def test_shipped_default_bundle_loads_and_reports_metrics():
    from follower.paths import REPO_ROOT

    folder = REPO_ROOT / "exported" / "default"
    if not (folder / "config.json").is_file():
        pytest.skip("no exported/default bundle in this checkout")
    bundle = load_bundle(folder)
    snip = bundle.config.snippets
    out = bundle.score(np.zeros((2, len(snip.roll_channels), snip.n_pitches, snip.roll_frames), np.float32))
    assert out.shape == (2, bundle.config.embed_dim)
    metrics = json.loads((folder / "metrics.json").read_text())
    for split in ("test", "test_slow", "test_fast", "bach10"):
        assert {"r@1", "r@5", "r@10", "r@25", "mrr", "median_rank"} <= set(metrics["snippet"][split]["audio2score"])
    assert "bach10" in metrics["piece_identification"] and "baseline_chroma" in metrics
