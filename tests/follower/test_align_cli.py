"""`follower align` end to end (subprocesses): rows, bars and beats, timing, and each bad input."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from conftest import one_line_error

REPO = Path(__file__).resolve().parents[2]


def follower(*args, cwd=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "follower.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def rows_of(text):
    return list(csv.DictReader(io.StringIO(text)))


def with_time_signature(src: Path, dst: Path, numerator: int, denominator: int) -> Path:
    mid = mido.MidiFile(str(src))
    mid.tracks[0].insert(0, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0))
    mid.save(str(dst))
    return dst


def test_rows_follow_the_recording_beat_by_beat(chroma_bundle, corpus_index, rendered):
    # piece3 from 6 s of its timeline at 1.1x its tempo: MIDI second m is heard at (m - 6) / 1.1
    r = follower("align", rendered["path"], "--piece", "piece3", "--index", corpus_index, "--bundle", chroma_bundle,
                 "--notes", "--quiet")
    assert r.returncode == 0, r.stderr
    rows = rows_of(r.stdout)
    assert list(rows[0]) == ["kind", "time_s", "midi_s", "midi_beats", "bar", "beat", "confidence", "pitch",
                             "track"]
    beats = [row for row in rows if row["kind"] == "beat"]
    notes = [row for row in rows if row["kind"] == "note"]
    assert not [row for row in rows if row["kind"] == "bar"] and all(row["bar"] == "" for row in beats)
    t = np.array([float(row["time_s"]) for row in rows])
    m = np.array([float(row["midi_s"]) for row in rows])
    assert np.all(np.diff(m) >= 0) and np.all(np.diff(t) >= -1e-9)  # score order, and monotone in time
    q = np.array([float(row["midi_beats"]) for row in beats])
    assert q[0] <= 13 and q[-1] >= 38 and np.allclose(np.diff(q), 1)  # 0.5 s beats, from 6 s to the end (20 s)
    assert [int(row["beat"]) for row in beats] == [int(x) + 1 for x in q]  # no bars: quarters counted from 1
    tb = np.array([float(row["time_s"]) for row in beats])
    mb = np.array([float(row["midi_s"]) for row in beats])
    err = np.abs(tb - (mb - rendered["start_s"]) / rendered["tempo"])
    assert np.mean(err <= 0.1) >= 0.9, err
    assert len(notes) >= 4 * 26 and {row["track"] for row in notes} == {"1", "2", "3", "4"}
    assert all(0.0 <= float(row["confidence"]) <= 1.0 for row in rows)


def test_bars_and_beats_come_from_the_time_signature(chroma_bundle, corpus, rendered, tmp_path):
    midi = with_time_signature(corpus / "piece3.mid", tmp_path / "piece3_in_3.mid", 3, 4)
    out = tmp_path / "out.csv"
    r = follower("align", rendered["path"], "--midi", midi, "--bundle", chroma_bundle, "-o", out)
    assert r.returncode == 0, r.stderr
    assert f"-> {out}" in r.stderr and "bars" in r.stderr  # the summary line
    rows = rows_of(out.read_text())
    assert rows and all(row["kind"] in ("bar", "beat") for row in rows)
    for row in rows:
        q = int(round(float(row["midi_beats"])))
        assert (int(row["bar"]), int(row["beat"])) == (q // 3 + 1, q % 3 + 1)
        assert (row["kind"] == "bar") == (row["beat"] == "1")


def test_the_shipped_model_aligns_the_example_recording(tmp_path):
    midi = REPO.parent / "shared" / "data" / "midi" / "bach-chorales" / "bach_bwv362.mid"
    if not midi.is_file() or not (REPO / "exported" / "default" / "chorales.index.npz").is_file():
        pytest.skip("needs the shipped bundle and ../shared/data/midi/bach-chorales (see README, Data)")
    truth = json.loads((REPO / "examples" / "chorale_excerpt.json").read_text())
    out = tmp_path / "example.csv"
    r = follower("align", REPO / "examples" / "chorale_excerpt.ogg", "--piece", truth["piece"], "-o", out, "--quiet",
                 cwd=tmp_path)  # the default bundle and index, found from another folder
    assert r.returncode == 0, r.stderr
    rows = rows_of(out.read_text())
    m = np.array([float(row["midi_s"]) for row in rows])
    t = np.array([float(row["time_s"]) for row in rows])
    err = np.abs(t - (m - truth["start_s"]) / truth["tempo_ratio"])
    assert abs(m[0] - truth["start_s"]) <= 0.5 and np.mean(err <= 0.1) >= 0.9, err
    first = rows[0]
    assert (first["kind"], first["bar"], first["beat"]) == ("bar", "17", "1")  # beat 64 of a 4/4 chorale


def test_an_unknown_piece_is_one_line(chroma_bundle, corpus_index, rendered):
    r = follower("align", rendered["path"], "--piece", "piece33", "--index", corpus_index, "--bundle", chroma_bundle)
    one_line_error(r, "piece 'piece33' is not in")
    assert "piece3" in r.stderr  # the close matches


def test_an_unreadable_recording_is_one_line(chroma_bundle, corpus_index, tmp_path):
    bad = tmp_path / "take.wav"
    bad.write_text("not audio")
    r = follower("align", bad, "--piece", "piece3", "--index", corpus_index, "--bundle", chroma_bundle)
    one_line_error(r, "not a readable audio file")


def test_a_missing_score_or_no_score_is_one_line(chroma_bundle, rendered, tmp_path):
    one_line_error(follower("align", rendered["path"], "--bundle", chroma_bundle), "--piece ID")
    one_line_error(follower("align", rendered["path"], "--midi", tmp_path / "nope.mid", "--bundle", chroma_bundle),
                   "no such MIDI file")


def test_a_piece_whose_midi_has_moved_is_one_line(chroma_bundle, corpus_index, rendered, tmp_path):
    from follower.index import load_index, save_index

    index = load_index(corpus_index)
    index.header["sources"] = [str(tmp_path / "gone")]
    moved = save_index(index, tmp_path / "moved.index.npz")
    r = follower("align", rendered["path"], "--piece", "piece3", "--index", moved, "--bundle", chroma_bundle)
    one_line_error(r, "give it with --midi FILE")


def test_the_wrong_score_gets_a_low_confidence(chroma_bundle, corpus_index, rendered):
    def median_confidence(piece):
        r = follower("align", rendered["path"], "--piece", piece, "--index", corpus_index, "--bundle", chroma_bundle,
                     "--quiet", "--coarse")
        assert r.returncode == 0, r.stderr
        return np.median([float(row["confidence"]) for row in rows_of(r.stdout)])

    right, wrong = median_confidence("piece3"), median_confidence("piece5")
    assert right >= 0.8 and wrong <= right - 0.3, (right, wrong)


def test_a_recording_35_cents_flat_is_aligned_as_if_at_440(chroma_bundle, corpus_index, rendered, tmp_path):
    """The render played as a tape 35 cents slow (pitch and tempo by 2**(-35/1200)): the tuning is found
    from the recording, said on stderr, and the beats land where they are heard."""
    import librosa
    import soundfile as sf

    audio, rate = sf.read(rendered["path"], dtype="float32", always_2d=True)
    factor = 2 ** (-35 / 1200)
    flat = librosa.resample(audio.mean(axis=1), orig_sr=rate, target_sr=rate / factor, res_type="soxr_hq")
    path = tmp_path / "flat.flac"
    sf.write(path, flat, rate)
    r = follower("align", path, "--piece", "piece3", "--index", corpus_index, "--bundle", chroma_bundle)
    assert r.returncode == 0, r.stderr
    notice = [line for line in r.stderr.splitlines() if line.startswith("tuning: ")]
    assert len(notice) == 1 and "heard as if at 440" in notice[0], r.stderr
    beats = [row for row in rows_of(r.stdout) if row["kind"] == "beat"]
    tb = np.array([float(row["time_s"]) for row in beats])
    mb = np.array([float(row["midi_s"]) for row in beats])
    err = np.abs(tb - (mb - rendered["start_s"]) / rendered["tempo"] / factor)
    assert np.mean(err <= 0.1) >= 0.9, err
    one_line_error(follower("align", path, "--piece", "piece3", "--index", corpus_index, "--bundle", chroma_bundle,
                            "--a4-hz", "44"), "--a4-hz")
