"""The big-corpus benchmark's material: roll sets written as MIDI, transposed copies, sized indexes."""

import numpy as np
import pytest

from benchmarks.big_corpus import transpose_midi, write_notes_midi
from follower.midi import load_midi


def test_notes_written_as_midi_come_back_on_their_times(tmp_path):
    notes = [(0.0, 0.5, 60), (0.25, 1.0, 64), (1.0, 1.75, 67)]
    write_notes_midi(tmp_path / "x.mid", notes, name="roll 1")
    got = load_midi(tmp_path / "x.mid").notes
    assert sorted(zip(got["start_s"].round(3), got["end_s"].round(3), got["pitch"])) == sorted(notes)


def test_a_transposed_copy_moves_every_pitched_note_and_keeps_the_drums(tmp_path):
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for note, channel in ((60, 0), (72, 1), (36, 9)):
        track += [mido.Message("note_on", note=note, velocity=80, channel=channel, time=0),
                  mido.Message("note_off", note=note, velocity=0, channel=channel, time=240)]
    mid.tracks.append(track)
    mid.save(tmp_path / "src.mid")
    assert transpose_midi(tmp_path / "src.mid", tmp_path / "t" / "up3.mid", 3)
    before, after = load_midi(tmp_path / "src.mid").notes, load_midi(tmp_path / "t" / "up3.mid").notes
    shift = np.where(before["is_drum"], 0, 3)
    np.testing.assert_array_equal(after["pitch"], before["pitch"] + shift)
    np.testing.assert_allclose(after["start_s"], before["start_s"])
    assert not transpose_midi(tmp_path / "missing.mid", tmp_path / "t" / "none.mid", 1)


def test_sized_indexes_cut_whole_pieces_or_add_random_rows():
    from benchmarks.scale import sized_index
    from tests.benchmarks.test_bench_index_growth import tiny_index

    real = tiny_index([f"p{i}" for i in range(10)], 20)
    real.header.update(frame_rate_hz=20.0)
    small = sized_index(real, 70)
    assert small.n_snippets == 60 and small.n_pieces == 3  # whole pieces only
    np.testing.assert_array_equal(small.embeddings, real.embeddings[:60])
    big = sized_index(real, 1000)
    assert big.n_snippets == 1000
    np.testing.assert_array_equal(big.embeddings[:200], real.embeddings)
    np.testing.assert_allclose(np.linalg.norm(big.embeddings[200:].astype(np.float32), axis=1), 1, atol=2e-3)


def test_a_sized_index_keeps_the_notes_of_its_own_pieces_only():
    import dataclasses

    from benchmarks.scale import sized_index
    from tests.benchmarks.test_bench_index_growth import tiny_index

    real = tiny_index([f"p{i}" for i in range(10)], 20)
    per = 5  # notes per piece, piece k's pitches 40 + k
    real = dataclasses.replace(real, note_start=np.arange(11) * per,
                               note_onset_s=np.tile(np.arange(per, dtype=np.float32), 10),
                               note_end_s=np.tile(np.arange(1, per + 1, dtype=np.float32), 10),
                               note_pitch=np.repeat(np.arange(40, 50, dtype=np.uint8), per))
    small = sized_index(real, 70)
    assert small.n_pieces == 3 and len(small.note_start) == 4 and len(small.note_pitch) == 3 * per
    assert set(small.notes(2)[2]) == {42}


def test_copies_of_one_piece_are_the_same_music_and_other_pieces_or_keys_are_not(tmp_path):
    from benchmarks.same_music import find_piece, overlap, same_music

    tune = [(0.0, 0.5, 60), (0.5, 1.0, 62), (1.0, 2.0, 64), (0.0, 1.0, 48), (1.0, 2.0, 43)]
    write_notes_midi(tmp_path / "a" / "tune.mid", tune)
    # the same notes at another tempo, re-quantised a little, filed under another name
    write_notes_midi(tmp_path / "b" / "set" / "copy.mid", [(s * 1.5, e * 1.5 - 0.05, p) for s, e, p in tune])
    write_notes_midi(tmp_path / "b" / "up2.mid", [(s, e, p + 2) for s, e, p in tune])
    write_notes_midi(tmp_path / "b" / "other.mid", [(0.0, 1.0, 65), (1.0, 2.0, 69), (0.0, 2.0, 41)])
    a = tmp_path / "a" / "tune.mid"
    assert overlap(a, a) == 1.0 and same_music(a, tmp_path / "b" / "set" / "copy.mid")
    assert overlap(a, tmp_path / "b" / "up2.mid") == 0.0 and not same_music(a, tmp_path / "b" / "other.mid")
    roots = [(tmp_path / "a", "first"), (tmp_path / "b", "t+2/second")]
    assert find_piece("t+2/second/set/copy", roots) == tmp_path / "b" / "set" / "copy.mid"
    assert find_piece("first/tune", roots) == a and find_piece("second/set/copy", roots) is None
    assert find_piece("tune", [(tmp_path / "a", "")]) == a


def test_a_corpus_of_some_sources_has_its_own_folder_and_only_their_copies(tmp_path, monkeypatch):
    import argparse

    from benchmarks import big_corpus

    monkeypatch.setenv("SCOREFOLLOW_BENCH", str(tmp_path))
    every, some = argparse.Namespace(sources=None), argparse.Namespace(sources="rolls,bach-chorales")
    assert big_corpus.chosen(some) == ("bach-chorales", "rolls")  # in corpus order
    assert big_corpus.work(every) == tmp_path / "bigcorpus"
    assert big_corpus.work(some) == tmp_path / "bigcorpus-bach-chorales+rolls"
    labels = [label for _, label in big_corpus.corpus_roots(big_corpus.work(some), big_corpus.chosen(some))]
    assert labels[:2] == ["bach-chorales", "rolls"]
    assert len(labels) == 2 * (1 + len(big_corpus.TRANSPOSE))
    assert {label.split("/")[-1] for label in labels} == {"bach-chorales", "rolls"}


def test_a_copy_named_for_a_while_counts_as_the_piece_only_in_the_copies_counted_summary(tmp_path, monkeypatch):
    import json

    from benchmarks.material import Item
    from benchmarks.metrics import summarise
    from benchmarks.scale import same_music_scores
    from benchmarks.warp import TimeMap

    tune = [(float(k), k + 1.0, p) for k, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2)]
    write_notes_midi(tmp_path / "corpus" / "tune.mid", tune)
    write_notes_midi(tmp_path / "corpus" / "copy.mid", [(s, e - 0.05, p) for s, e, p in tune])  # re-quantised
    write_notes_midi(tmp_path / "corpus" / "other.mid", [(s, e, p - 5) for s, e, p in tune])
    TimeMap([0.0, 16.0], [0.0, 16.0]).save(tmp_path / "truth.json")
    item = Item("x", "chorale", "x.flac", str(tmp_path / "truth.json"), "chorales", "tune",
                str(tmp_path / "corpus" / "tune.mid"), "tune", 16.0)
    runs = tmp_path / "runs"
    runs.mkdir()

    def log(named):  # searching for 2 s, then `named` until 16 s
        with open(runs / "x.jsonl", "w") as f:
            for k in range(1, 321):
                t = k * 0.05
                piece = None if t < 2.0 else named
                f.write(json.dumps({"t": t, "piece": piece, "state": "following" if piece else "searching",
                                    "position_s": t if piece else None}) + "\n")

    import benchmarks.paths as paths

    monkeypatch.setattr(paths, "chorale_dir", lambda: tmp_path / "corpus")
    log("copy")
    s = summarise(same_music_scores(runs, [item], prefix=""))
    assert s["acc_end"] == 1.0 and s["stable_median_s"] < 2.1 and s["wrong_follow_max_s"] == 0.0
    log("other")  # a transposed setting is not the same music
    s = summarise(same_music_scores(runs, [item], prefix=""))
    assert s["acc_end"] == 0.0 and s["wrong_follow_max_s"] > 13.0


def test_the_recognition_table_has_a_row_per_set_of_items_and_one_for_all(tmp_path, monkeypatch):
    """Synthetic chorales and real recordings are told apart in the table: a row for each, then both."""
    import json

    from benchmarks.material import Item
    from benchmarks.scale import recognition_table, run_recognition
    from benchmarks.warp import TimeMap
    from follower.index import save_index
    from test_bench_index_growth import tiny_index

    import benchmarks.paths as paths

    tune = [(float(k), k + 1.0, p) for k, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2)]
    write_notes_midi(tmp_path / "corpus" / "tune.mid", tune)
    monkeypatch.setattr(paths, "chorale_dir", lambda: tmp_path / "corpus")
    TimeMap([0.0, 16.0], [0.0, 16.0]).save(tmp_path / "truth.json")
    items = [Item(name, kind, f"{name}.flac", str(tmp_path / "truth.json"), "chorales", "tune",
                  str(tmp_path / "corpus" / "tune.mid"), "tune", 16.0)
             for name, kind in (("c0", "chorale"), ("c1", "chorale"), ("b0", "bach10"))]
    index = save_index(tiny_index(["tune", "other"], 3), tmp_path / "small.index.npz")
    folder = tmp_path / "runs" / "chorales-small-exact"
    folder.mkdir(parents=True)
    for item, named in zip(items, ("tune", "tune", "other")):  # the recording ends on another piece
        with open(folder / f"{item.name}.jsonl", "w") as f:
            for k in range(1, 321):
                t = k * 0.05
                piece = None if t < 2.0 else named
                f.write(json.dumps({"t": t, "piece": piece, "state": "following" if piece else "searching",
                                    "position_s": t if piece else None}) + "\n")
    rows = run_recognition(items, tmp_path, [("chorales", index, "exact", "")], tmp_path / "runs", fresh=False,
                           replay=False)
    assert [r["items"] for r in rows] == ["2 chorale", "1 bach10", "3 in all"]
    assert [r["summary"]["acc_end"] for r in rows] == pytest.approx([1.0, 0.0, 2 / 3])
    table = recognition_table(rows)
    assert "| 2 chorale |" in table and "| 3 in all |" in table
