"""Corpora: streaming folder walk, split files, hash splits, Boulanger .mat rolls."""

import csv
import inspect
import os

import mido
import numpy as np
import pytest
import scipy.io

from follower.errors import BadMidiError, ConfigError
from training.data import corpus
from training.paths import data_root


def write_midi(path, notes, *, tempo_us=500000, tpb=480):
    """notes: (start_beat, dur_beats, pitch, track) -> a type-1 MIDI file, one track per voice."""
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tracks = sorted({n[3] for n in notes})
    for i, tr in enumerate(tracks):
        track = mido.MidiTrack()
        mid.tracks.append(track)
        if i == 0:
            track.append(mido.MetaMessage("set_tempo", tempo=tempo_us, time=0))
        events = []
        for start, dur, pitch, t in notes:
            if t == tr:
                events.append((round(start * tpb), 1, pitch))
                events.append((round((start + dur) * tpb), 0, pitch))
        now = 0
        for tick, on, pitch in sorted(events):
            track.append(mido.Message("note_on" if on else "note_off", note=pitch, velocity=90 if on else 0,
                                      channel=i, time=tick - now))
            now = tick
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)
    return path


SCALE = [(i, 1, 60 + i, 0) for i in range(4)]


def test_folder_walk_streams_sorted_and_skips_hidden(tmp_path):
    for rel in ["b/two.mid", "a/one.MID", "a/deep/three.midi", "c.mid", ".hidden/x.mid", "a/.y.mid"]:
        write_midi(tmp_path / rel, SCALE)
    (tmp_path / "a" / "notes.txt").write_text("not midi")
    walk = corpus.iter_midi_files(tmp_path)
    assert inspect.isgenerator(walk)  # Lakh-sized trees are never listed whole
    rels = [os.path.relpath(p, tmp_path) for p in walk]
    # files of a folder first, then its subfolders, each level sorted by name
    assert rels == ["c.mid", "a/one.MID", "a/deep/three.midi", "b/two.mid"]


def test_split_file_keeps_families_together_and_holds_out_bach10(tmp_path):
    root = tmp_path / "chorales"
    names = [f"p{i}.mid" for i in range(8)]
    for n in names:
        write_midi(root / n, SCALE)
    rows = [("p0.mid", "train", "famA"), ("p1.mid", "train", "famA"), ("p2.mid", "valid", "famB"),
            ("p3.mid", "test", "famC"), ("p4.mid", "bach10", "famD"), ("p5.mid", "bach10", "famD")]
    with open(root / "splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "split", "tune_family"])
        w.writerows(rows)
    pieces = list(corpus.iter_corpus(root))
    by_name = {p.piece_id.split("/")[-1]: p for p in pieces}
    assert by_name["p0"].group == by_name["p1"].group == "chorales/famA"
    assert by_name["p4"].split == "bach10"
    kept = corpus.select(pieces)
    assert {p.piece_id for p in kept} == {f"chorales/p{i}" for i in (0, 1, 2, 3, 6, 7)}
    # p6, p7 are not in the table: hash split by their own name, deterministic
    assert by_name["p6"].split == corpus.hash_split("chorales/p6")
    # --split-file overrides the folder's own table
    other = tmp_path / "other.csv"
    other.write_text("file,split\np4.mid,train\n")
    assert {p.piece_id: p.split for p in corpus.iter_corpus(root, split_file=other)}["chorales/p4"] == "train"


def test_bad_split_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,fold\nx.mid,train\n")
    with pytest.raises(ConfigError, match="expected file,split"):
        corpus.read_split_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        corpus.read_split_file(tmp_path / "missing.csv")


def test_hash_split_is_group_consistent_and_roughly_proportional():
    splits = [corpus.hash_split(f"tune{i}") for i in range(3000)]
    share = {s: splits.count(s) / len(splits) for s in corpus.SPLITS}
    assert share["train"] == pytest.approx(0.8, abs=0.03)
    assert share["valid"] == pytest.approx(0.1, abs=0.02)
    assert [corpus.hash_split(f"tune{i}") for i in range(3000)] == splits


def test_subset_is_stable_when_files_are_added(tmp_path):
    for i in range(30):
        write_midi(tmp_path / f"t{i:02d}.mid", SCALE)
    first = {p.piece_id for p in corpus.select(corpus.iter_corpus(tmp_path), max_pieces=10)}
    for i in range(30, 40):
        write_midi(tmp_path / f"t{i:02d}.mid", SCALE)
    second = {p.piece_id for p in corpus.select(corpus.iter_corpus(tmp_path), max_pieces=10)}
    assert len(first) == len(second) == 10
    old = {p for p in second if int(p[-2:]) < 30}
    assert old <= first  # newcomers can only displace old picks, never bring others in
    per_split = corpus.select(corpus.iter_corpus(tmp_path), max_per_split={"train": 3, "valid": 1, "test": 1})
    counts = {s: sum(p.split == s for p in per_split) for s in corpus.SPLITS}
    assert counts["train"] == 3 and counts["valid"] <= 1 and counts["test"] <= 1


def test_subset_of_a_hash_split_corpus_keeps_every_split(tmp_path):
    for i in range(200):
        write_midi(tmp_path / f"t{i:03d}.mid", SCALE[:1])
    kept = corpus.select(corpus.iter_corpus(tmp_path), max_pieces=60)
    counts = {s: sum(p.split == s for p in kept) for s in corpus.SPLITS}
    assert counts["train"] >= 35 and counts["valid"] >= 2 and counts["test"] >= 2


def test_mat_rolls_become_scores_at_the_stated_tempo(tmp_path):
    roll = np.zeros((6, 88), np.uint8)
    roll[0:2, 60 - 21] = 1   # C4, two rows
    roll[3, 60 - 21] = 1     # C4 again, after a gap: a second note
    roll[1:4, 64 - 21] = 1   # E4, three rows
    sets = {k: np.empty((1, n), dtype=object) for k, n in (("traindata", 2), ("validdata", 1), ("testdata", 1))}
    for k, arr in sets.items():
        for i in range(arr.shape[1]):
            arr[0, i] = roll
    path = tmp_path / "JSB_tiny.mat"
    scipy.io.savemat(path, sets)
    pieces = list(corpus.iter_corpus(path))
    assert [p.split for p in pieces] == ["train", "train", "valid", "test"]
    score = corpus.load_piece(pieces[0])
    assert pieces[0].step_s == 0.5  # JSB: a quarter note at 120 bpm per row
    got = sorted(zip(score.notes["start_s"], score.notes["end_s"], score.notes["pitch"]))
    assert got == [(0.0, 1.0, 60), (0.5, 2.0, 64), (1.5, 2.0, 60)]
    assert score.seconds_to_beats(1.5) == pytest.approx(3.0)  # one row = one beat
    other = list(corpus.iter_corpus(path, step_s=0.25))
    assert corpus.load_piece(other[0]).duration_s == pytest.approx(1.0)


def test_bad_mat_and_empty_roll(tmp_path):
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"not a mat file at all")
    with pytest.raises(ConfigError, match="not a readable .mat"):
        list(corpus.iter_corpus(junk))
    with pytest.raises(BadMidiError, match="no notes"):
        corpus.roll_to_score(np.zeros((4, 88)), 0.5)


def test_shared_bach_splits_never_split_a_tune_family():
    root = data_root() / "midi" / "bach-chorales"
    if not (root / "splits.csv").is_file():
        pytest.skip(f"shared data absent: {root}")
    pieces = list(corpus.iter_corpus(root))
    sides: dict = {}
    for p in pieces:
        sides.setdefault(p.group, set()).add(p.split)
    assert all(len(s) == 1 for s in sides.values())
    kept = corpus.select(pieces)
    assert not any(p.split == "bach10" for p in kept)
    assert {p.split for p in kept} == {"train", "valid", "test"}


def test_builtin_bach_corpus_writes_one_track_per_voice(tmp_path):
    pytest.importorskip("music21")
    from follower.midi import load_midi
    from training.cli import main as training_main

    assert training_main(["corpus", "bach", "-o", str(tmp_path), "--limit", "1", "--quiet"]) == 0
    (midi,) = sorted(tmp_path.glob("*.mid"))
    score = load_midi(midi)
    assert len(np.unique(score.notes["track"])) == 4 and score.bpm_at(0.0) == pytest.approx(120.0)
    table = corpus.read_split_file(tmp_path / "splits.csv")
    assert table["bach_bwv255.mid"] == ("bach10", "bach_bwv255") and len(table) == 15
