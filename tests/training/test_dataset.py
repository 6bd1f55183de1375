"""Dataset build end to end on a tiny corpus the test writes: splits, pairs, bad files, resuming."""

import csv
import glob
import json
import os
import sys

import mido
import numpy as np
import pytest

from follower.errors import ConfigError, MissingToolError
from follower.snippets import SnippetConfig
from training.data import render as render_job
from training.data import synth
from training.cli import main as training_main
from training.data.build import CorpusSpec, DatasetConfig, build_dataset
from training.data.split import load_split

TRAIN_SF, TEST_SF = ("FluidR3_GM.sf2",), "TimGM6mb.sf2"


@pytest.fixture(scope="module", autouse=True)
def _need_synth():
    try:
        synth.require_fluidsynth()
        for sf in (*TRAIN_SF, TEST_SF):
            synth.find_soundfont(sf)
    except MissingToolError as e:
        pytest.skip(str(e))


def write_midi(path, notes, *, tempo_us=500000, tpb=480, channel=0):
    """notes: (start_beat, dur_beats, pitch) on one track."""
    mid = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo_us, time=0))
    events = sorted([(round(s * tpb), 1, p) for s, d, p in notes] + [(round((s + d) * tpb), 0, p) for s, d, p in notes])
    now = 0
    for tick, on, pitch in events:
        track.append(mido.Message("note_on" if on else "note_off", note=pitch, velocity=80 if on else 0,
                                  channel=channel, time=tick - now))
        now = tick
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)
    return path


def tune(seed, n=6):
    rng = np.random.default_rng(seed)
    return [(i * 0.5, 0.5, int(p)) for i, p in enumerate(rng.integers(55, 80, n))]


def make_corpus(root, n_good=8):
    splits = ["train"] * 4 + ["valid"] * 2 + ["test"] * 2
    rows = []
    for i in range(n_good):
        rel = f"set{i % 2}/tune{i}.mid"
        write_midi(root / rel, tune(i))
        rows.append((rel, splits[i % len(splits)], f"fam{i}"))
    write_midi(root / "held/recorded.mid", tune(99))
    rows.append(("held/recorded.mid", "bach10", "famX"))
    # bad inputs: each must be skipped and reported, never abort the build
    (root / "bad").mkdir()
    (root / "bad" / "empty.mid").write_bytes(b"")
    (root / "bad" / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    write_midi(root / "bad" / "drums.mid", [(0, 1, 36), (1, 1, 38)], channel=9)
    write_midi(root / "bad" / "absurd.mid", [(0, 2000, 60)], tempo_us=16_000_000, tpb=1)  # ~9 h long
    rows += [(f"bad/{n}.mid", "train", f"bad{n}") for n in ("empty", "corrupt", "drums", "absurd")]
    with open(root / "splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "split", "tune_family"])
        w.writerows(rows)
    return root


def config(root, **kw):
    return DatasetConfig(corpora=(CorpusSpec(str(root)),), train_soundfonts=TRAIN_SF, test_soundfont=TEST_SF,
                         **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = make_corpus(tmp_path_factory.mktemp("corpus") / "tiny")
    out = tmp_path_factory.mktemp("dataset")
    summary = build_dataset(config(root), out, workers=1, progress=False)
    return root, out, summary


def test_splits_are_disjoint_and_tests_use_the_held_out_soundfont(built):
    _, out, summary = built
    data = {s: load_split(out, s) for s in ("train", "valid", "test", "test_slow", "test_fast")}
    ids = {s: set(d.piece_ids.tolist()) for s, d in data.items()}
    assert len(ids["train"]) == 4 and len(ids["valid"]) == 2 and len(ids["test"]) == 2
    assert not ids["train"] & ids["valid"] and not ids["train"] & ids["test"] and not ids["valid"] & ids["test"]
    assert ids["test"] == ids["test_slow"] == ids["test_fast"]
    assert not any("recorded" in p for s in ids.values() for p in s)  # bach10 rows never rendered
    assert set(data["train"].soundfont) == {"FluidR3_GM.sf2"} and set(data["test"].soundfont) == {"TimGM6mb.sf2"}
    assert data["train"].n_renders == 8  # two renders per training piece
    assert np.all((data["train"].tempo_ratio >= 0.8) & (data["train"].tempo_ratio <= 1.25))
    for split, tempo in (("test", 1.0), ("test_slow", 0.8), ("test_fast", 1.25)):
        assert np.all(data[split].tempo_ratio == np.float32(tempo))
    assert summary["splits"]["train"]["pairs"] == data["train"].n_pairs > 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["summary"]["held_out"] == 1


def test_pairs_sit_on_onsets_and_batches_have_encoder_shapes(built):
    _, out, _ = built
    d = load_split(out, "test_fast", SnippetConfig(roll_channels=("sustain",)))
    for r in range(d.n_renders):
        rows = d.pairs[d.pairs[:, 0] == r]
        onset = d.rolls[d.roll_offsets[r]:d.roll_offsets[r + 1], 1]  # stored channels: sustain, onset
        assert rows[:, 2].tolist() == np.flatnonzero(onset.any(axis=1)).tolist()
        np.testing.assert_array_equal(rows[:, 1], np.round(rows[:, 2] / 1.25).astype(int))
    idx = np.arange(min(5, d.n_pairs))
    a, r = d.audio_batch(idx), d.roll_batch(idx)
    assert a.shape == (len(idx), 1, 92, 42) and a.dtype == np.float32
    assert r.shape == (len(idx), 1, 88, 42) and set(np.unique(r)) <= {0.0, 1.0}
    # the roll window is centred on an onset: its centre frame has a note
    assert np.all(r[:, 0, :, 21].sum(axis=1) > 0)
    both = load_split(out, "test_fast")  # the default snippets read both channels
    assert both.snippet_config.roll_channels == ("sustain", "onset")
    assert both.roll_batch(idx).shape == (len(idx), 2, 88, 42)
    assert d.pair_piece(idx).max() < len(d.piece_ids)


def test_bad_files_are_skipped_and_reported(built):
    _, out, _ = built
    with open(out / "report.csv") as f:
        report = {os.path.basename(r["source"]): r["reason"] for r in csv.DictReader(f)}
    assert set(report) == {"empty.mid", "corrupt.mid", "drums.mid", "absurd.mid"}
    assert "empty" in report["empty.mid"] and "not a readable MIDI" in report["corrupt.mid"]
    assert "drum-only" in report["drums.mid"] and "broken" in report["absurd.mid"]


def test_rebuild_renders_nothing_and_interrupted_build_resumes(tmp_path, monkeypatch):
    root = tmp_path / "c"
    for i in range(3):
        write_midi(root / f"t{i}.mid", tune(i, n=4))
    out = tmp_path / "ds"
    cfg = config(root, train_renders=1)
    calls = {"n": 0}
    real = render_job.render_one

    def flaky(*a, **k):  # the third render is "interrupted"
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(render_job, "render_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cfg, out, workers=1, progress=False)
    monkeypatch.setattr(render_job, "render_one", real)
    done = glob.glob(str(out / "cache" / "*.npz"))
    assert len(done) == 2 and not glob.glob(str(out / "cache" / "*.tmp*"))
    first = build_dataset(cfg, out, workers=2, progress=False)  # the process pool path
    n_total = sum(c["renders"] for c in first["splits"].values())
    assert first["rendered"] == n_total - 2
    second = build_dataset(cfg, out, workers=2, progress=False)
    assert second["rendered"] == 0 and second["splits"] == first["splits"]


def test_mat_corpus_builds(tmp_path):
    import scipy.io

    roll = np.zeros((8, 88), np.uint8)
    for step, pitch in enumerate([60, 62, 64, 65, 67, 65, 64, 62]):
        roll[step, pitch - 21] = 1
    sets = {}
    for key in ("traindata", "validdata", "testdata"):
        sets[key] = np.empty((1, 1), dtype=object)
        sets[key][0, 0] = roll
    scipy.io.savemat(tmp_path / "Tiny.mat", sets)
    summary = build_dataset(DatasetConfig(corpora=(CorpusSpec(str(tmp_path / "Tiny.mat")),),
                                          train_soundfonts=TRAIN_SF, test_soundfont=TEST_SF, train_renders=1),
                            tmp_path / "ds", workers=1, progress=False)
    assert {s: c["pieces"] for s, c in summary["splits"].items()} == {
        "train": 1, "valid": 1, "test": 1, "test_slow": 1, "test_fast": 1}
    assert summary["splits"]["test"]["pairs"] == 8  # one pair per 0.25 s row onset


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    root = tmp_path / "c"
    write_midi(root / "t.mid", tune(0))
    argv = ["dataset", "build", "-o", str(tmp_path / "ds"), "--corpus", str(root), "--quiet"]
    assert training_main(argv + ["--test-soundfont", "nope.sf2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: soundfont nope.sf2 not found") and "\n" not in err
    assert training_main(argv + ["--max-per-split", "1,2"]) == 2
    assert "TRAIN,VALID,TEST" in capsys.readouterr().err
    assert training_main(argv + ["--test-soundfont", TRAIN_SF[0], "--train-soundfonts", TRAIN_SF[0]]) == 2
    assert "held-out" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fluidsynth", None)
    assert training_main(argv) == 2
    assert "FluidSynth is not available" in capsys.readouterr().err


def test_load_split_errors(tmp_path):
    with pytest.raises(ConfigError, match="build the dataset first"):
        load_split(tmp_path, "train")
    with pytest.raises(ConfigError, match="expected one of"):
        load_split(tmp_path, "training")


def test_default_build_is_bach_plus_nottingham_from_the_data_root(monkeypatch, tmp_path):
    import argparse

    from training.cli.dataset import config_from_args

    monkeypatch.setenv("SCOREFOLLOW_DATA", str(tmp_path))
    args = argparse.Namespace(corpus=None, split_file=None, mat_step_s=None, seed=0, max_per_split=None,
                              train_soundfonts=None, test_soundfont=None, train_renders=None, valid_renders=None)
    cfg = config_from_args(args)
    assert [(c.path, c.max_pieces) for c in cfg.corpora] == [
        (str(tmp_path / "midi" / "bach-chorales"), None), (str(tmp_path / "midi" / "nottingham"), 300)]
    assert cfg.train_soundfonts == ("FluidR3_GM.sf2", "MuseScore_General_Lite.sf3")
    assert cfg.test_soundfont == "TimGM6mb.sf2" and cfg.train_renders == 2


def test_a_failing_or_overlong_piece_is_reported_not_fatal(tmp_path, monkeypatch):
    root = tmp_path / "c"
    write_midi(root / "ok.mid", tune(1, n=4))
    write_midi(root / "odd.mid", tune(2, n=4))
    write_midi(root / "long.mid", [(0, 8, 60)])  # 4 s: over the 3 s limit below
    real = render_job.render_one

    def odd_fails(renderer, score, spec, features):
        if "odd" in spec.piece_id:
            raise ValueError("synthesizer hiccup")
        return real(renderer, score, spec, features)

    monkeypatch.setattr(render_job, "render_one", odd_fails)
    summary = build_dataset(config(root, train_renders=1, max_piece_s=3.0), tmp_path / "ds", workers=1,
                            progress=False)
    with open(tmp_path / "ds" / "report.csv") as f:
        report = {os.path.basename(r["source"]): r["reason"] for r in csv.DictReader(f)}
    assert "could not be rendered (ValueError: synthesizer hiccup)" in report["odd.mid"]
    assert "max_piece_s" in report["long.mid"]
    assert summary["skipped"] == 2 and summary["pieces"] == 1
