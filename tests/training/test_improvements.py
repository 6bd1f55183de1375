"""The improvement variants (docs/improvements.md): contrastive loss, audio augmentation, their CLI."""

import csv
import json

import mido
import numpy as np
import pytest
import torch

from follower.errors import ConfigError, MissingToolError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig
from training.data import synth
from training.augment.acoustic import AudioAugmentConfig, AugmentedSplit, augment_batch, reverb_smear
from training.model.losses import ranking_hinge_loss
from training.model.losses import info_nce_loss, make_loss
from training.model.encoders import ModelConfig
from training.data.toy import ToySplit
from training.fit.loop import TrainConfig, train

NO_AUG = AudioAugmentConfig(p_eq=0, p_reverb=0, p_noise=0)


def unit(x):
    return torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)


# -- InfoNCE ---------------------------------------------------------------------------

def test_info_nce_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    a, s = unit(torch.randn(6, 8, generator=g)), unit(torch.randn(6, 8, generator=g))
    z = (a @ s.T / 0.1).double()
    want = 0.5 * (-(torch.log_softmax(z, 1).diagonal()).mean() - (torch.log_softmax(z, 0).diagonal()).mean())
    assert float(info_nce_loss(a, s, 0.1)) == pytest.approx(float(want), rel=1e-5)


def test_info_nce_prefers_matching_pairs_and_is_symmetric():
    a = unit(torch.eye(5, 8))
    aligned = info_nce_loss(a, a, 0.1)
    shuffled = info_nce_loss(a, a[[1, 2, 3, 4, 0]], 0.1)
    assert float(aligned) < 0.01 < 5 < float(shuffled)
    g = torch.Generator().manual_seed(1)
    x, y = unit(torch.randn(7, 4, generator=g)), unit(torch.randn(7, 4, generator=g))
    assert float(info_nce_loss(x, y)) == pytest.approx(float(info_nce_loss(y, x)), rel=1e-6)


def test_make_loss_hinge_is_the_papers_loss_and_bad_input_is_one_line():
    g = torch.Generator().manual_seed(2)
    a, s = unit(torch.randn(5, 4, generator=g)), unit(torch.randn(5, 4, generator=g))
    assert float(make_loss("hinge")(a, s)) == pytest.approx(float(ranking_hinge_loss(a, s, 0.7)))
    with pytest.raises(ConfigError, match="loss='cosine'; expected 'hinge' or 'infonce'"):
        make_loss("cosine")
    with pytest.raises(ConfigError, match="temperature=0 must be positive"):
        make_loss("infonce", temperature=0)
    with pytest.raises(ConfigError, match="at least 2"):
        info_nce_loss(a[:1], s[:1])
    with pytest.raises(ConfigError, match="same shape"):
        info_nce_loss(a, s[:3])


# -- audio augmentation ----------------------------------------------------------------

def batch(seed=0, n=16):
    return np.random.default_rng(seed).gamma(1.0, 0.5, (n, 1, 92, 42)).astype(np.float32)


def test_no_effect_is_identity_and_shapes_are_kept():
    x = batch()
    y = augment_batch(x, np.random.default_rng(0), NO_AUG)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_augmentation_is_seeded_and_changes_the_input():
    x = batch()
    y1 = augment_batch(x, np.random.default_rng(3))
    y2 = augment_batch(x, np.random.default_rng(3))
    np.testing.assert_array_equal(y1, y2)
    assert np.abs(y1 - x).mean() > 0.05 and (y1 >= 0).all()


def test_eq_is_a_gain_in_the_linear_domain():
    cfg = AudioAugmentConfig(p_eq=1, tilt_db=0, eq_db=0, gain_db=6, p_reverb=0, p_noise=0)
    x = batch(n=64)
    y = augment_batch(x, np.random.default_rng(0), cfg)
    ratio_db = 20 * np.log10(np.expm1(y[..., 5]) / np.expm1(x[..., 5]))
    # one gain per snippet, the same in every band, within +-6 dB
    assert np.allclose(ratio_db, ratio_db[:, :, :1], atol=1e-3)
    assert np.abs(ratio_db).max() <= 6 + 1e-3 and ratio_db.std() > 1


def test_reverb_smear_is_causal_and_keeps_a_steady_level():
    lin = np.zeros((2, 3, 42))
    lin[0, 1, 10] = 1.0                       # an impulse in band 1 at frame 10
    lin[1] = 2.0                              # a steady tone everywhere
    out = reverb_smear(lin, np.array([0.7, 0.7]), np.array([0.5, 0.5]))
    assert (out[0, :, :10] == 0).all() and (out[0, [0, 2]] == 0).all()
    tail = out[0, 1, 11:20]
    assert (tail > 0).all() and (np.diff(tail) < 0).all()       # a decaying tail after the note
    assert out[0, 1, 10] < 1.0                                   # the dry note is partly replaced
    np.testing.assert_allclose(out[1, :, -1], 2.0, rtol=1e-5)    # a long steady tone keeps its level


def test_noise_floor_fills_silence_below_the_peak():
    cfg = AudioAugmentConfig(p_eq=0, p_reverb=0, p_noise=1, snr_db=(20.0, 20.0))
    x = np.zeros((8, 1, 92, 42), np.float32)
    x[:, 0, 40, :] = np.log1p(10.0)            # one loud band at linear magnitude 10
    y = augment_batch(x, np.random.default_rng(0), cfg)
    floor = np.expm1(y[:, 0, :30])             # bands far below the tone
    assert (floor > 0).mean() > 0.99 and 0.005 < np.median(floor) < 1.0  # ~ 10 * -20 dB = 1, pink slope lowers it


def test_bad_augment_config_is_one_line():
    with pytest.raises(ConfigError, match="p_noise=1.5 must be a probability"):
        AudioAugmentConfig(p_noise=1.5)
    with pytest.raises(ConfigError, match="rt60_s=.* must be a \\(low, high\\) range"):
        AudioAugmentConfig(rt60_s=(2.0, 1.0))
    with pytest.raises(ConfigError, match="expected \\(n, 1, n_bins, frames\\)"):
        augment_batch(np.zeros((2, 92, 42), np.float32), np.random.default_rng(0))


def test_augmented_split_changes_audio_only():
    base = ToySplit(10, seed=0)
    aug = AugmentedSplit(base, seed=0)
    idx = np.arange(10)
    np.testing.assert_array_equal(aug.roll_batch(idx), base.roll_batch(idx))
    assert aug.pairs is base.pairs
    assert np.abs(aug.audio_batch(idx) - base.audio_batch(idx)).max() > 0.01


def test_partial_windows_silence_the_start_and_keep_at_least_the_minimum():
    from training.augment.partial import PartialWindowConfig, PartialWindowSplit, silence_start

    x = np.ones((400, 1, 92, 42), np.float32)
    y = silence_start(x, np.random.default_rng(0), PartialWindowConfig(p_partial=0.5, min_sounding=0.3))
    sounding = (y[:, 0] != 0).any(axis=1).sum(axis=1)          # sounding frames per snippet
    partial = sounding < 42
    assert 0.4 < partial.mean() < 0.6                            # about p_partial of them
    assert sounding.min() >= round(0.3 * 42)                      # never emptier than a window that votes
    for row, n in zip(y[:, 0], sounding):                         # silence first, then the music as it was
        assert not row[:, :42 - n].any() and (row[:, 42 - n:] == 1).all()
    assert (x == 1).all()                                         # the input is not changed in place
    base = ToySplit(10, seed=0)
    split = PartialWindowSplit(base, PartialWindowConfig(p_partial=1.0), seed=0)
    idx = np.arange(10)
    np.testing.assert_array_equal(split.roll_batch(idx), base.roll_batch(idx))
    assert (split.audio_batch(idx)[..., 0] == 0).all()            # every first frame silent at p 1
    with pytest.raises(ConfigError, match="min_sounding"):
        PartialWindowConfig(min_sounding=0.0)


# -- the training loop's loss and `training train`'s variant options -------------------------------------------

def test_train_with_infonce_and_augmentation_learns_the_toy_task(tmp_path):
    cfg = TrainConfig(loss="infonce", batch_size=16, epoch_pairs=64, valid_pairs=32, patience=5, refinements=0,
                      max_epochs=2, lr=0.002)
    snip = SnippetConfig(roll_channels=("sustain",))  # the toy rolls' channels are copies of each other
    summary = train(AugmentedSplit(ToySplit(64, seed=0, snippet_config=snip), seed=0),
                    ToySplit(32, seed=1, snippet_config=snip), tmp_path / "run", cfg,
                    model_config=ModelConfig(roll_channels=1), snippet_config=snip, feature_config=FeatureConfig(),
                    progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert summary["epochs"] == 2 and len(rows) == 2
    assert all(np.isfinite(float(r["train_loss"])) for r in rows)
    # the logged loss is InfoNCE's (log(16) = 2.8 at chance), not the hinge loss' (about 2 * 15 * 0.7 = 21)
    assert float(rows[0]["train_loss"]) < 8 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert summary["best_valid_mrr"] > 2 * np.mean(1 / np.arange(1, 33))  # better than chance


def write_tune(path, seed):
    rng = np.random.default_rng(seed)
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for p in rng.integers(55, 80, 8):
        track.append(mido.Message("note_on", note=int(p), velocity=80, time=0))
        track.append(mido.Message("note_off", note=int(p), velocity=0, time=240))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)


def test_training_train_trains_a_variant_on_a_built_dataset(tmp_path, capsys):
    try:
        synth.require_fluidsynth()
        synth.find_soundfont("FluidR3_GM.sf2")
        synth.find_soundfont("TimGM6mb.sf2")
    except MissingToolError as e:
        pytest.skip(str(e))
    from training.data.build import CorpusSpec, DatasetConfig, build_dataset
    from training.cli import main

    root = tmp_path / "corpus"
    rows = []
    for i, split in enumerate(["train"] * 4 + ["valid"] * 2 + ["test"] * 2):
        write_tune(root / f"t{i}.mid", i)
        rows.append((f"t{i}.mid", split, f"fam{i}"))
    with open(root / "splits.csv", "w", newline="") as f:
        csv.writer(f).writerows([("file", "split", "tune_family"), *rows])
    cfg = DatasetConfig(corpora=(CorpusSpec(str(root)),), train_soundfonts=("FluidR3_GM.sf2",),
                        test_soundfont="TimGM6mb.sf2")
    build_dataset(cfg, tmp_path / "ds", workers=1, progress=False)
    run = tmp_path / "run"
    rc = main(["train", str(tmp_path / "ds"), "-o", str(run), "--loss", "infonce", "--augment-audio", "--augment-tempo",
               "--augment-partial", "--roll-channels", "sustain", "--batch-size", "8", "--epoch-pairs", "16", "--valid-pairs", "8",
               "--max-epochs", "1", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    info = json.loads((run / "run.json").read_text())["info"]
    assert info["variant"]["loss"] == "infonce" and info["variant"]["augment_audio"]["p_noise"] == 0.5
    assert info["variant"]["augment_tempo"]["scale_range"] == [0.6, 1.0]
    assert info["variant"]["augment_partial"] == {"p_partial": 0.3, "min_sounding": 0.3}
    assert json.loads((run / "run.json").read_text())["snippet_config"]["roll_channels"] == ["sustain"]
    assert (run / "best.pt").is_file()
    # the same options resume the run (the recorded variant reads back equal)
    assert main(["train", str(tmp_path / "ds"), "-o", str(run), "--loss", "infonce", "--augment-audio",
                 "--augment-tempo", "--augment-partial", "--roll-channels", "sustain", "--batch-size", "8",
                 "--epoch-pairs", "16", "--valid-pairs", "8", "--max-epochs", "2", "--no-progress"]) == 0, capsys.readouterr().err
    assert "resuming" in capsys.readouterr().out
    # resuming with another variant would mix two losses in one run: refused in one line
    assert main(["train", str(tmp_path / "ds"), "-o", str(run), "--roll-channels", "sustain",
                 "--batch-size", "8", "--epoch-pairs", "16", "--valid-pairs", "8", "--max-epochs", "3",
                 "--no-progress"]) == 2
    assert "variant" in capsys.readouterr().err

    # several runs: one comparison row each, on the same pair subsets, metrics kept per run
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run, other)
    table = tmp_path / "compare.md"
    assert main(["evaluate", str(run), str(other), "--pairs", "8", "--bach10", str(tmp_path / "none"),
                 "-o", str(table)]) == 0, capsys.readouterr().err
    rows = table.read_text().split("\n\n")[0].splitlines()[2:]  # below the header and its rule
    assert [r.split("|")[1].strip() for r in rows] == ["run", "other"]
    assert len(rows) == 2 and rows[0].split("|")[3] == rows[1].split("|")[3]  # same weights, same test MRR
    assert json.loads((run / "compare_metrics.json").read_text())["snippet"]["test"]["audio2score"]["n"] == 8
    assert set(json.loads(table.with_suffix(".json").read_text())) == {str(run), str(other)}
    # ... and the per-pair difference against the first run: the same weights are a tie at zero
    paired = [r for r in table.read_text().splitlines() if r.startswith("| other | test |")]
    assert len(paired) == 2 and all(r.endswith("+0.000 [+0.000, +0.000] tie |") for r in paired)


# -- tempo stretch of the training audio --------------------------------------------------

def ramp_split(n_frames=200, n_bins=4):
    """A one-render split whose spectrogram frame t holds the value t in every band."""
    from training.data.split import SplitData

    spec = np.repeat(np.arange(n_frames, dtype=np.float16)[:, None], n_bins, 1)
    rolls = np.zeros((n_frames, 2, 88), np.uint8)
    pairs = np.array([[0, 100, 100], [0, 5, 5], [0, 150, 150]], np.int64)
    return SplitData(split="train", spectrograms=spec, spec_offsets=np.array([0, n_frames]), rolls=rolls,
                     roll_offsets=np.array([0, n_frames]), roll_channels=("sustain", "onset"),
                     render_piece=np.array([0]), render_ids=np.array(["r0"]), tempo_ratio=np.array([1.0]),
                     transpose=np.array([0]), soundfont=np.array(["sf"]), piece_ids=np.array(["p"]),
                     piece_names=np.array(["p"]), pairs=pairs, frame_rate_hz=20.0,
                     snippet_config=SnippetConfig())


def test_tempo_stretch_keeps_the_centre_and_slows_the_music():
    from training.augment.tempo import TempoAugmentConfig, TempoStretchedSplit

    base = ramp_split()
    always = TempoStretchedSplit(base, TempoAugmentConfig(p_stretch=1.0, scale_range=(0.5, 0.5)), seed=0)
    x = always.audio_batch([0])[0, 0]                      # (bins, 42)
    half = 21
    # frame j shows the music at 100 + (j - 21) * 0.5: the centre stays aligned, the rest is half as fast
    np.testing.assert_allclose(x[0], 100 + (np.arange(42) - half) * 0.5, atol=1e-3)
    np.testing.assert_array_equal(always.roll_batch([0]), base.roll_batch([0]))
    # scale 1 is the identity; p_stretch 0 never touches the batch
    same = TempoStretchedSplit(base, TempoAugmentConfig(p_stretch=1.0, scale_range=(1.0, 1.0)), seed=0)
    np.testing.assert_allclose(same.audio_batch([0, 2]), base.audio_batch([0, 2]), atol=1e-3)
    never = TempoStretchedSplit(base, TempoAugmentConfig(p_stretch=0.0), seed=0)
    np.testing.assert_array_equal(never.audio_batch([0, 1]), base.audio_batch([0, 1]))


def test_tempo_stretch_near_the_start_pads_with_silence_and_faster_reads_wider():
    from training.augment.tempo import TempoAugmentConfig, TempoStretchedSplit

    base = ramp_split()
    x = TempoStretchedSplit(base, TempoAugmentConfig(p_stretch=1.0, scale_range=(0.8, 0.8)),
                            seed=0).audio_batch([1])[0, 0, 0]
    pos = 5 + (np.arange(42) - 21) * 0.8
    np.testing.assert_allclose(x[pos >= 1], pos[pos >= 1], atol=1e-3)   # before frame 0: zero padding
    assert np.all(x[pos <= -1] == 0)
    fast = TempoStretchedSplit(base, TempoAugmentConfig(p_stretch=1.0, scale_range=(1.5, 1.5)), seed=0)
    np.testing.assert_allclose(fast.audio_batch([2])[0, 0, 0], 150 + (np.arange(42) - 21) * 1.5, atol=1e-2)


def test_bad_tempo_config_is_one_line():
    from training.augment.tempo import TempoAugmentConfig

    with pytest.raises(ConfigError, match="p_stretch"):
        TempoAugmentConfig(p_stretch=2.0)
    with pytest.raises(ConfigError, match="scale_range"):
        TempoAugmentConfig(scale_range=(1.0, 0.5))


def test_training_curves_name_the_loss_that_was_used():
    from training.fit.curves import loss_figure

    rows = [{"epoch": e, "round": 0, "train_loss": 3.0 - e / 10, "valid_loss": 3.1 - e / 10, "valid_mrr": e / 10}
            for e in (1, 2, 3)]
    for loss, label in (("infonce", "InfoNCE loss"), ("hinge", "ranking hinge loss")):
        fig = loss_figure(rows, 2, loss=loss, epoch_pairs=2000)
        assert fig.axes[0].get_ylabel() == label
        assert fig.axes[0].get_xlabel() == "epoch (2,000 pairs)"


def test_training_train_help_shows_every_option_of_the_shipped_recipe(capsys):
    from training.cli import main
    from training.cli.train import EPILOG

    recipe = EPILOG.split("trained with:")[1].split("Rerunning")[0]
    flags = {w for w in recipe.split() if w.startswith("--")}
    assert {"--loss", "--augment-tempo", "--max-minutes", "--patience", "--refinements"} <= flags
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    usage = capsys.readouterr().out
    options = usage.split("options:")[1]  # the option list, not the epilog that quotes the recipe
    for flag in flags | {"--temperature", "--augment-audio", "--roll-channels", "--threads"}:
        assert flag in options, flag
