"""Model v2: shipped ONNX encoders read back into torch (evaluate / warm start), and dataset v2's
renders: piano corpora on one grand with the sustain pedal, excerpts, concert acoustics."""

import csv

import mido
import numpy as np
import pytest
import torch

from follower.errors import BundleError, ConfigError, MissingToolError
from follower.features import FeatureConfig
from follower.midi import NOTE_DTYPE, Score, load_midi
from follower.snippets import SnippetConfig
from training.augment.room import RoomConfig, apply_room
from training.cli import main as training_main
from training.data import synth
from training.data.build import CorpusSpec, DatasetConfig, plan_renders, v2_settings
from training.data.corpus import Piece
from training.data.pedal import crop_pedal, sustain_events
from training.data.render import Augmentation, RenderSpec, excerpt_window, render_one
from training.data.toy import ToySplit
from training.export import export_bundle
from training.fit.loop import TrainConfig, train
from training.model.encoders import DualEncoder, ModelConfig
from training.model.from_onnx import model_from_bundle

# ---------------------------------------------------------------- ONNX -> torch


def _trained_looking_model(seed=0) -> DualEncoder:
    """A model whose BatchNorms are far from identity, as after training."""
    torch.manual_seed(seed)
    model = DualEncoder(ModelConfig())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.2, 5.0)
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    model = _trained_looking_model()
    out = tmp_path_factory.mktemp("bundle")
    export_bundle(model, out, training_info={"note": "test"})
    return model, out


def _embed(model, x, view):
    with torch.no_grad():
        return getattr(model, view)(torch.from_numpy(x)).numpy()


def test_bundle_reads_back_to_the_same_functions(bundle):
    model, path = bundle
    toy = ToySplit(24, seed=3)
    back, snip, feat, info = model_from_bundle(path)
    assert snip == SnippetConfig() and feat == FeatureConfig() and back.config == model.config
    for view, x in (("audio", toy.audio_batch(np.arange(24))), ("score", toy.roll_batch(np.arange(24)))):
        np.testing.assert_allclose(_embed(back, x, view), _embed(model, x, view), atol=1e-4)
    # weights at a trained network's scale (He norm per output channel), not the folded ones
    conv = back.audio.features[0]
    np.testing.assert_allclose(conv.weight.detach().flatten(1).norm(dim=1).numpy(), np.sqrt(2), rtol=1e-5)
    assert info["from_bundle"]["max_abs_diff_vs_onnx"]["audio"] < 1e-4


def test_calibrated_batchnorm_keeps_eval_and_matches_train_mode_on_its_batch(bundle):
    model, path = bundle
    toy = ToySplit(64, seed=4)
    cal = {"audio": toy.audio_batch(np.arange(64)), "roll": toy.roll_batch(np.arange(64))}
    back, *_ = model_from_bundle(path, calibration=cal)
    np.testing.assert_allclose(_embed(back, cal["audio"], "audio"), _embed(model, cal["audio"], "audio"), atol=1e-4)
    # train mode normalises by the batch's own statistics: on the calibration batch they are the
    # running ones, so fine-tuning starts from the bundle's function, not from a perturbed one
    back.train()
    np.testing.assert_allclose(_embed(back, cal["roll"], "score"), _embed(model, cal["roll"], "score"), atol=1e-3)


def test_import_cli_and_bad_bundle_one_line(bundle, tmp_path, capsys):
    _, path = bundle
    assert training_main(["import", str(path), "-o", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "best.pt").is_file()
    assert training_main(["import", str(tmp_path / "nothing"), "-o", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a model bundle" in err


def test_a_bundle_of_another_architecture_is_refused(tmp_path):
    small = DualEncoder(ModelConfig(base_filters=8)).eval()
    export_bundle(small, tmp_path / "b", training_info={})
    # config.json records base_filters, so this one reads back; a graph that disagrees with it does not
    cfg = (tmp_path / "b" / "config.json")
    cfg.write_text(cfg.read_text().replace('"base_filters": 8', '"base_filters": 24'))
    with pytest.raises(BundleError, match="do not fit"):
        model_from_bundle(tmp_path / "b")


def test_warm_start_counts_as_epoch_zero_and_is_kept_until_beaten(bundle, tmp_path, monkeypatch, capsys):
    import training.fit.loop as loop

    model, path = bundle
    toy_train, toy_valid = ToySplit(16, seed=0), ToySplit(8, seed=1)
    init, *_ = model_from_bundle(path, calibration={"audio": toy_train.audio_batch(np.arange(16)),
                                                    "roll": toy_train.roll_batch(np.arange(16))})
    scripted = iter([0.7, 0.5, 0.6])  # epoch 0 (the bundle), then two worse epochs
    monkeypatch.setattr(loop, "validate", lambda *a, **k: {"valid_loss": 1.0, "valid_mrr": next(scripted),
                                                          "valid_r@1": 0.0})
    cfg = TrainConfig(batch_size=8, epoch_pairs=16, valid_pairs=8, patience=5, max_epochs=2, lr=1e-4)
    summary = train(toy_train, toy_valid, tmp_path / "run", cfg, model_config=ModelConfig(),
                    snippet_config=SnippetConfig(), feature_config=FeatureConfig(), progress=False,
                    init_model=init)
    assert "epoch   0  (starting weights)" in capsys.readouterr().out
    assert summary["best_epoch"] == 0 and summary["best_valid_mrr"] == 0.7
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["model_state"]
    for key, value in init.state_dict().items():
        torch.testing.assert_close(best[key], value)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # the warm start is a one-off: resuming reads the checkpoint, never the bundle again
    summary = train(toy_train, toy_valid, tmp_path / "run", TrainConfig(**{**cfg.to_dict(), "max_epochs": 2}),
                    model_config=ModelConfig(), snippet_config=SnippetConfig(), feature_config=FeatureConfig(),
                    progress=False, init_model=init)
    assert summary["epochs"] == 2


def test_warm_start_of_another_model_is_refused(tmp_path):
    cfg = TrainConfig(batch_size=8, epoch_pairs=16, valid_pairs=8, max_epochs=1)
    with pytest.raises(ConfigError, match="must match"):
        train(ToySplit(16), ToySplit(8, seed=1), tmp_path / "run", cfg, model_config=ModelConfig(),
              snippet_config=SnippetConfig(), feature_config=FeatureConfig(), progress=False,
              init_model=DualEncoder(ModelConfig(base_filters=8)))


# ---------------------------------------------------------------- dataset v2 renders


def _piano_midi(path, *, pedal=True):
    """Two staves (tracks) of a piano piece at 120 bpm; the pedal down 0.5-1.0 s (ticks 480-960)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    for k, pitch in enumerate((72, 48)):
        tr = mido.MidiTrack()
        mid.tracks.append(tr)
        if k == 0:
            tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
        tr.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        if k == 1 and pedal:
            tr.append(mido.Message("control_change", control=64, value=127, time=480))
            tr.append(mido.Message("control_change", control=64, value=0, time=480))
            tr.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
        else:
            tr.append(mido.Message("note_off", note=pitch, velocity=0, time=1200))
    mid.save(path)
    return path


def test_sustain_pedal_is_read_on_the_score_timeline_and_cropped(tmp_path):
    path = _piano_midi(tmp_path / "p.mid")
    score = load_midi(path)
    events = sustain_events(path, score)
    np.testing.assert_allclose(events, [[0.5, 127], [1.0, 0]])
    np.testing.assert_allclose(crop_pedal(events, 0.7, 2.0), [[0.0, 127], [0.3, 0]])  # down at the cut
    assert len(sustain_events(_piano_midi(tmp_path / "q.mid", pedal=False), score)) == 0


def _need(soundfont):
    try:
        synth.require_fluidsynth()
        synth.find_soundfont(soundfont)
    except MissingToolError as e:
        pytest.skip(str(e))


def test_the_pedal_holds_piano_notes_in_the_real_synthesizer():
    _need("FluidR3_GM.sf2")
    renderer = synth.Renderer()
    notes = np.zeros(1, dtype=NOTE_DTYPE)
    notes[0] = (0.0, 0.3, 60, 100, 0, 0, 0, False)
    sr = renderer.settings.sample_rate_hz
    dry = renderer.render(notes, {0: 0}, "FluidR3_GM.sf2")
    held = renderer.render(notes, {0: 0}, "FluidR3_GM.sf2", pedal=np.array([[0.0, 127], [0.3, 127]]))
    again = renderer.render(notes, {0: 0}, "FluidR3_GM.sf2")  # the pedal does not leak into the next render
    renderer.close()
    late = slice(int(0.6 * sr), int(1.2 * sr))
    rms = lambda a: float(np.sqrt(np.mean(a[late] ** 2)))  # noqa: E731
    assert rms(held) > 4 * rms(dry)
    assert rms(again) < 1.5 * rms(dry)


def test_piano_corpora_render_one_grand_with_the_pedal_and_tests_share_the_excerpt(tmp_path):
    cfg = DatasetConfig(corpora=(CorpusSpec(str(tmp_path / "piano-midi"), ensemble="piano"),
                                 CorpusSpec(str(tmp_path / "chorales"))), excerpt_s=20.0, test_tempi=(1.0, 0.8))
    piano = plan_renders(Piece("piano-midi/x", "piano-midi", "x.mid", "test", "x"), cfg)
    assert [s.split for s in piano] == ["test", "test_slow"]  # test_fast not asked for
    assert all(s.pedal and s.one_instrument and s.families == synth.PIANO_FAMILIES for s in piano)
    chorale = plan_renders(Piece("chorales/y", "chorales", "y.mid", "train", "y"), cfg)
    assert not chorale[0].pedal and chorale[0].families == synth.DEFAULT_FAMILY_WEIGHTS
    notes = np.zeros(200, dtype=NOTE_DTYPE)
    notes["start_s"] = np.arange(200) * 0.5
    notes["end_s"] = notes["start_s"] + 0.4
    notes["pitch"] = 60
    score = Score("<long>", notes, 480, np.array([0]), np.array([500000.0]), np.array([0.0]))
    windows = {excerpt_window(score, s) for s in piano}
    assert len(windows) == 1  # the test renders differ only in tempo
    start, end = windows.pop()
    assert end - start == 20.0 and start in set(notes["start_s"])
    with pytest.raises(ConfigError, match="ensemble"):
        CorpusSpec("x", ensemble="orchestra")
    with pytest.raises(ConfigError, match="test_tempi"):
        DatasetConfig(test_tempi=(0.5,))


def test_v2_preset_names_the_repertoire():
    kw = v2_settings("/data")
    names = [(c.name, c.ensemble, c.max_pieces) for c in kw["corpora"]]
    assert names == [("bach-chorales", "mixed", None), ("nottingham", "mixed", 300),
                     ("piano-midi", "piano", None), ("MuseData", "mixed", 300)]
    assert synth.TEST_SOUNDFONT not in kw["train_soundfonts"] and len(kw["train_soundfonts"]) == 5
    assert kw["tempo_range"] == (0.5, 1.6)


def test_an_excerpt_render_is_aligned_and_bounded():
    _need("FluidR3_GM.sf2")
    notes = np.zeros(120, dtype=NOTE_DTYPE)
    notes["start_s"] = np.arange(120) * 0.5
    notes["end_s"] = notes["start_s"] + 0.45
    notes["pitch"] = 60 + (np.arange(120) % 12)
    notes["velocity"] = 90
    score = Score("<long>", notes, 480, np.array([0]), np.array([500000.0]), np.array([0.0]))
    spec = RenderSpec("p@train:0", "p", "train", synth.find_soundfont("FluidR3_GM.sf2"), 1.0, 3,
                      Augmentation(transpose_semitones=0, room=RoomConfig(p_room=1.0, p_mic=1.0, p_noise=1.0)),
                      synth.DEFAULT_FAMILY_WEIGHTS, excerpt_s=10.0)
    renderer = synth.Renderer()
    out = render_one(renderer, score, spec, FeatureConfig())
    renderer.close()
    fps = FeatureConfig().frame_rate_hz
    assert abs(len(out["roll"]) / fps - 10.0) < 0.6          # ~10 s of score, not 60
    assert abs(out["meta"]["audio_s"] - len(out["roll"]) / fps - synth.TAIL_S) < 0.2
    assert set(out["meta"]["acoustics"]) == {"room", "mic", "noise_snr_db"}
    assert out["meta"]["excerpt_s"][1] - out["meta"]["excerpt_s"][0] == pytest.approx(10.0)


# ---------------------------------------------------------------- acoustics


def test_room_is_reproducible_keeps_length_and_adds_a_tail():
    sr = 22050
    x = np.zeros(sr, np.float32)
    x[100] = 1.0
    cfg = RoomConfig(p_room=1.0, rt60_s=(0.8, 0.8), drr_db=(0.0, 0.0))
    a, info = apply_room(x, sr, cfg, np.random.default_rng(1))
    b, _ = apply_room(x, sr, cfg, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert len(a) == sr and info["room"]["rt60_s"] == 0.8
    tail = np.sum(a[100 + sr // 10:] ** 2)
    assert tail > 0.05 * np.sum(a ** 2)                     # energy after 100 ms: a room, not a click
    dry, applied = apply_room(x, sr, RoomConfig(), np.random.default_rng(1))
    np.testing.assert_array_equal(dry, x) and not applied


def test_noise_lands_at_the_asked_snr():
    sr = 22050
    x = np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr).astype(np.float32)
    y, info = apply_room(x, sr, RoomConfig(p_noise=1.0, snr_db=(30.0, 30.0)), np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x) ** 2))
    assert abs(snr - 30.0) < 0.5 and info["noise_snr_db"] == 30.0


def test_room_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="p_room=2"):
        RoomConfig(p_room=2)
    with pytest.raises(ConfigError, match="rt60_s"):
        RoomConfig(rt60_s=(1.0, 0.5))


# ---------------------------------------------------------------- packing for a GPU machine


def _fake_dataset(root, n_renders=6, frames=400, seed=0):
    """A dataset folder with the layout `training dataset build` writes (train + valid)."""
    import json

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        specs = rng.gamma(1.0, 0.6, (n_renders * frames, 92)).astype(np.float16)
        rolls = (rng.random((n_renders * frames, 2, 88)) < 0.03).astype(np.uint8)
        offsets = np.arange(n_renders + 1, dtype=np.int64) * frames
        pairs = np.array([(r, c, c) for r in range(n_renders) for c in range(30, frames - 30, 25)], np.int64)
        np.savez(root / f"{split}.npz", spectrograms=specs, spec_offsets=offsets, rolls=rolls, roll_offsets=offsets,
                 roll_channels=np.array(["sustain", "onset"]), render_piece=np.arange(n_renders, dtype=np.int32),
                 render_ids=np.array([f"p{r}@{split}:0" for r in range(n_renders)]),
                 tempo_ratio=np.ones(n_renders, np.float32), transpose=np.zeros(n_renders, np.int8),
                 soundfont=np.array(["FluidR3_GM.sf2"] * n_renders), piece_ids=np.array([f"p{r}" for r in range(n_renders)]),
                 piece_names=np.array([f"p{r}" for r in range(n_renders)]), pairs=pairs,
                 frame_rate_hz=np.array(FeatureConfig().frame_rate_hz))
    (root / "dataset.json").write_text(json.dumps({"config": {"features": FeatureConfig().to_dict()}}))
    return root


def test_pack_unpack_round_trip_trains_from_the_restored_folder(tmp_path):
    from training.data.split import load_split

    src = _fake_dataset(tmp_path / "ds")
    assert training_main(["dataset", "pack", str(src), "-o", str(tmp_path / "p.npz")]) == 0
    assert training_main(["dataset", "unpack", str(tmp_path / "p.npz"), "-o", str(tmp_path / "back")]) == 0
    a, b = load_split(src, "train"), load_split(tmp_path / "back", "train")
    np.testing.assert_array_equal(a.pairs, b.pairs)
    idx = np.arange(0, len(a.pairs), 7)
    np.testing.assert_array_equal(a.roll_batch(idx), b.roll_batch(idx))          # rolls: lossless
    step = float(np.max(a.spectrograms.astype(np.float32))) / 255
    assert np.abs(a.audio_batch(idx) - b.audio_batch(idx)).max() <= step        # spectrograms: one step
    run = tmp_path / "run"
    assert training_main(["train", str(tmp_path / "back"), "-o", str(run), "--batch-size", "8", "--epoch-pairs", "16",
                          "--valid-pairs", "16", "--max-epochs", "1", "--no-progress", "--device", "cpu"]) == 0
    assert (run / "best.pt").is_file()


def test_model_size_options_train_a_wider_model_and_refuse_to_resume_another(tmp_path, capsys):
    import json

    src = _fake_dataset(tmp_path / "ds")
    run = tmp_path / "run"
    base = ["train", str(src), "-o", str(run), "--batch-size", "8", "--epoch-pairs", "16", "--valid-pairs", "16",
            "--max-epochs", "1", "--no-progress", "--device", "cpu"]
    assert training_main(base + ["--base-filters", "8", "--embed-dim", "16"]) == 0
    assert json.loads((run / "run.json").read_text())["model_config"]["base_filters"] == 8
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model_state"]
    assert state["audio.features.0.weight"].shape[0] == 8                 # first block: N filters
    assert state["audio.features.28.weight"].shape[0] == 16               # 1x1 conv to D dimensions
    capsys.readouterr()
    assert training_main(base + ["--max-epochs", "2", "--base-filters", "12", "--embed-dim", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "other settings" in err


def test_pack_leaves_out_training_renders_to_fit_and_keeps_validation_whole(tmp_path):
    from training.data.pack import pack

    src = _fake_dataset(tmp_path / "ds", n_renders=12, frames=3000)
    full = pack(src, tmp_path / "full.npz", max_mb=100)
    limit = full["bytes"] / 2 ** 20 * 0.6
    small = pack(src, tmp_path / "small.npz", max_mb=limit)
    assert small["bytes"] <= limit * 2 ** 20
    assert 0 < small["renders"]["train"][0] < 12 and small["renders"]["valid"] == (12, 12)
    with pytest.raises(ConfigError, match="even the validation split"):
        pack(src, tmp_path / "tiny.npz", max_mb=0.01)


def test_a_second_pack_holds_the_training_renders_the_first_left_out(tmp_path):
    from training.data.pack import pack, unpack

    src = _fake_dataset(tmp_path / "ds", n_renders=12, frames=3000)
    full = pack(src, tmp_path / "full.npz", max_mb=100)
    first = pack(src, tmp_path / "a.npz", max_mb=full["bytes"] / 2 ** 20 * 0.6)
    kept = first["renders"]["train"][0]
    second = pack(src, tmp_path / "b.npz", max_mb=100, skip_renders=kept)
    assert second["renders"]["train"] == (12 - kept, 12 - kept) and second["renders"]["valid"] == (12, 12)
    ids = {}
    for name in ("a", "b"):
        unpack(tmp_path / f"{name}.npz", tmp_path / name)
        with np.load(tmp_path / name / "train.npz", allow_pickle=False) as z:
            ids[name] = set(z["render_ids"].tolist())
    assert not ids["a"] & ids["b"] and len(ids["a"] | ids["b"]) == 12   # every render once
    with pytest.raises(ConfigError, match="--skip-renders 12"):
        pack(src, tmp_path / "c.npz", skip_renders=12)


def test_an_unusable_device_is_one_line(tmp_path, capsys):
    src = _fake_dataset(tmp_path / "ds")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: cuda is usable")
    assert training_main(["train", str(src), "-o", str(tmp_path / "run"), "--batch-size", "8", "--epoch-pairs", "16",
                          "--max-epochs", "1", "--no-progress", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "device 'cuda' is not usable" in err


def test_pairs_per_training_render_can_be_capped_evenly(tmp_path):
    from training.data.build import consolidate
    from training.data.render import save_atomic

    roll = np.zeros((400, 2, 88), np.uint8)
    roll[::4, 1, 40] = 1                                     # 100 onsets
    cache = tmp_path / "r.npz"
    save_atomic(str(cache), {"spectrogram": np.zeros((420, 92), np.float16), "roll": roll,
                             "meta": {"transpose": 0, "soundfont": "x.sf2", "programs": {}, "duration_s": 20.0,
                                      "audio_frames": 420, "roll_frames": 400}})
    piece = Piece("c/p", "c", "p.mid", "train", "p")
    spec = RenderSpec("c/p@train:0", "c/p", "train", "x.sf2", 1.0, 0, Augmentation(), ())
    cfg = DatasetConfig(corpora=(CorpusSpec("c"),), max_pairs_per_render=30)
    counts = consolidate(cfg, tmp_path, [piece], [(piece, spec, str(cache))], progress=False)
    assert counts["splits"]["train"]["pairs"] == 30
    with np.load(tmp_path / "train.npz", allow_pickle=False) as z:
        centres = z["pairs"][:, 2]
    assert centres[0] == 0 and centres[-1] == 396 and np.all(np.diff(centres) >= 12)  # spread over the render


def test_validation_pairs_can_be_capped_per_render_and_test_pairs_stay_whole(tmp_path):
    from training.data.build import consolidate
    from training.data.render import save_atomic

    plan = []
    for split, onsets in (("valid", 100), ("valid", 40), ("test", 100)):  # a dense and a sparse valid piece
        roll = np.zeros((400, 2, 88), np.uint8)
        roll[:onsets * 4:4, 1, 40] = 1
        cache = tmp_path / f"{split}{onsets}.npz"
        save_atomic(str(cache), {"spectrogram": np.zeros((420, 92), np.float16), "roll": roll,
                                 "meta": {"transpose": 0, "soundfont": "x.sf2", "programs": {}, "duration_s": 20.0,
                                          "audio_frames": 420, "roll_frames": 400}})
        piece = Piece(f"c/{split}{onsets}", "c", f"{split}{onsets}.mid", split, f"{split}{onsets}")
        plan.append((piece, RenderSpec(f"c/{split}{onsets}@{split}:0", piece.piece_id, split, "x.sf2", 1.0, 0,
                                       Augmentation(), ()), str(cache)))
    cfg = DatasetConfig(corpora=(CorpusSpec("c"),), max_pairs_per_render=10, max_valid_pairs_per_render=50)
    counts = consolidate(cfg, tmp_path, [p for p, _, _ in plan], plan, progress=False)
    assert counts["splits"]["valid"]["pairs"] == 50 + 40    # the dense render is cut to 50, the sparse one kept
    assert counts["splits"]["test"]["pairs"] == 100         # test pairs are never capped
    with pytest.raises(ConfigError, match="max_valid_pairs_per_render"):
        DatasetConfig(corpora=(CorpusSpec("c"),), max_valid_pairs_per_render=-1)


def test_the_validation_cap_is_a_build_option():
    import argparse

    from training.cli import dataset as dataset_cli

    parser = argparse.ArgumentParser()
    dataset_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dataset", "build", "--preset", "v2", "--only", "piano-midi",
                              "--max-pairs-per-render", "100", "--max-valid-pairs-per-render", "64"])
    cfg = dataset_cli.config_from_args(args)
    assert (cfg.max_pairs_per_render, cfg.max_valid_pairs_per_render) == (100, 64)
    assert dataset_cli.config_from_args(parser.parse_args(["dataset", "build"])).max_valid_pairs_per_render == 0


def test_a_quantised_bundle_reads_back_from_its_float_audio_encoder():
    # the shipped bundle carries an int8 audio encoder (no float weights to read) and the float
    # one it was made from: import and --init-from must start from the float one
    from pathlib import Path

    from follower.bundle import Encoder

    shipped = Path(__file__).resolve().parents[2] / "exported" / "default"
    if not (shipped / "audio_encoder.float.onnx").is_file():
        pytest.skip("the shipped bundle is not quantised")
    model, *_ = model_from_bundle(shipped)
    x = ToySplit(8, seed=1).audio_batch(np.arange(8))
    want = Encoder(shipped / "audio_encoder.float.onnx")(x)
    assert np.abs(_embed(model, x, "audio") - want).max() < 1e-4


def _test_dataset(root, empty=()):
    """A dataset whose only pairs are in ``test`` (as a ``--max-per-split 0,0,N`` or ``--test-tempi``
    build writes it), the splits in ``empty`` written with no renders."""
    ds = _fake_dataset(root, n_renders=4)
    (ds / "valid.npz").rename(ds / "test.npz")
    with np.load(ds / "test.npz", allow_pickle=False) as z:
        none = {k: z[k][:0] if z[k].ndim else z[k] for k in z.files}
    none.update(spec_offsets=np.zeros(1, np.int64), roll_offsets=np.zeros(1, np.int64),
                roll_channels=np.array(["sustain", "onset"]), frame_rate_hz=np.array(FeatureConfig().frame_rate_hz))
    for split in empty:
        np.savez(ds / f"{split}.npz", **none)
    return ds


def test_comparing_runs_leaves_out_test_tempi_the_dataset_did_not_render(bundle, tmp_path):
    # `training dataset build --test-tempi 1.0` writes empty test_slow / test_fast splits
    from training.evaluate.compare import evaluate_runs

    ds = _test_dataset(tmp_path / "ds", empty=("test_slow", "test_fast"))
    run = tmp_path / "run"
    assert training_main(["import", str(bundle[1]), "-o", str(run)]) == 0
    m = evaluate_runs([run], dataset=ds, bach10=None, chorales=None, n_pairs=40, seed=0, progress=False)[str(run)]
    assert set(m["snippet"]) == {"test"} and 0 < m["snippet"]["test"]["audio2score"]["mrr"] <= 1


def test_the_full_evaluation_of_a_test_only_build_leaves_out_the_cca(bundle, tmp_path, capsys):
    # `training dataset build --max-per-split 0,0,N` (the v2 test sets) has no training pairs to fit
    # the post-hoc CCA on: the evaluation says so and measures everything else
    from training.evaluate.run import evaluate_run

    ds = _test_dataset(tmp_path / "ds", empty=("train", "test_slow", "test_fast"))
    run = tmp_path / "run"
    assert training_main(["import", str(bundle[1]), "-o", str(run)]) == 0
    m = evaluate_run(run, dataset=ds, n_pairs=40, piece_eval=False, progress=False)
    assert "cca_posthoc" not in m and 0 < m["snippet"]["test"]["audio2score"]["mrr"] <= 1
    assert "post-hoc CCA left out" in capsys.readouterr().out


def test_test_renders_are_identified_against_every_piece_of_a_follower_index(bundle, tmp_path):
    # --piece-index: the test renders against a whole corpus's index (e.g. all of piano-midi.de).
    # Here the index rows of each test piece are its own audio excerpts' embeddings, in another
    # order than the dataset's and among distractors: every render must be found at rank 1,
    # which holds only if each render is matched to its own index piece.
    import json

    from follower.index import FORMAT, FORMAT_VERSION, Index, save_index
    from training.data.split import load_split
    from training.evaluate import protocols as ev
    from training.evaluate.compare import comparison_table, evaluate_runs

    ds = _test_dataset(tmp_path / "ds", empty=("test_slow", "test_fast"))
    with np.load(ds / "test.npz", allow_pickle=False) as z:   # datasets name pieces by corpus folder + path
        arrays = {k: z[k] for k in z.files}
    arrays["piece_ids"] = np.array([f"piano-midi/sub/{p}" for p in arrays["piece_ids"]])
    np.savez(ds / "test.npz", **arrays)
    run = tmp_path / "run"
    assert training_main(["import", str(bundle[1]), "-o", str(run)]) == 0
    split = load_split(ds, "test")
    emb = ev.TorchEmbedder(bundle[0])
    own = {str(split.piece_ids[split.render_piece[r]]): ev.embed_audio_at(
        emb, split.spectrogram(r), ev.excerpt_centres(len(split.spectrogram(r)), 42), 42) for r in range(4)}
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(300, 32)).astype(np.float32)
    rows = [("x/other", noise[:150])] + [(pid.split("/", 1)[1], e) for pid, e in reversed(own.items())] + \
        [("x/more", noise[150:])]
    counts = [len(e) for _, e in rows]
    index = Index(header={"format": FORMAT, "format_version": FORMAT_VERSION, "hop_frames": 4, "frame_rate_hz": 20.0},
                  embeddings=np.concatenate([e / np.linalg.norm(e, axis=1, keepdims=True) for _, e in rows]),
                  piece=np.repeat(np.arange(len(rows), dtype=np.int32), counts),
                  position_s=np.zeros(sum(counts), np.float32), position_beats=np.zeros(sum(counts), np.float32),
                  piece_ids=np.array([p for p, _ in rows]), titles=np.array([p for p, _ in rows]),
                  piece_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                  duration_s=np.ones(len(rows), np.float32))
    save_index(index, tmp_path / "all.index.npz")
    got = evaluate_runs([run], dataset=ds, bach10=None, chorales=None, n_pairs=40, seed=0, progress=False,
                        piece_index=tmp_path / "all.index.npz")
    pid = got[str(run)]["piece_identification"]["test_vs_index"]
    assert pid["n"] == 4 and pid["rank_1"]["count"] == 4 and pid["index_pieces"] == 6
    assert "4/4 of 6" in comparison_table(got) and "test pieces @1 vs index" in comparison_table(got)
    json.dumps(got)                                                     # what -o writes
    index.piece_ids[1] = "x/renamed"
    save_index(index, tmp_path / "short.index.npz")
    with pytest.raises(ConfigError, match="is not in the index"):
        evaluate_runs([run], dataset=ds, bach10=None, chorales=None, n_pairs=40, seed=0, progress=False,
                      piece_index=tmp_path / "short.index.npz")
