"""`follower replay` end to end (subprocesses), its outputs and each bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import one_line_error
from follower.jsonlog import KEYS


def follower(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "follower.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def replay(audio, bundle, index, *extra):
    return follower("replay", audio, "--fast", "--bundle", bundle, "--index", index, "--osc", "127.0.0.1:9", *extra)


def test_replay_writes_json_lines_with_exactly_the_keys(chroma_bundle, corpus_index, rendered):
    r = replay(rendered["path"], chroma_bundle, corpus_index, "--jsonl", "-", "--stats")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(tuple(row) == KEYS for row in rows)
    assert len(rows) == pytest.approx(rendered["duration_s"] * 20.009, abs=2)
    assert rows[0]["state"] == "searching" and rows[0]["piece"] is None
    last = rows[-40]
    assert last["piece"] == "piece3" and last["state"] == "following"
    truth = rendered["start_s"] + last["t"] * rendered["tempo"]
    assert last["position_s"] == pytest.approx(truth, abs=0.5)
    assert "p50" in r.stderr and "p99" in r.stderr and "real-time factor" in r.stderr


def test_console_shows_a_readable_live_line(chroma_bundle, corpus_index, rendered, tmp_path):
    audio, rate = sf.read(rendered["path"])
    path = tmp_path / "mono48k.ogg"  # another format, rate and channel count
    import soxr

    sf.write(path, soxr.resample(audio.mean(axis=1), rate, 48000), 48000)
    r = replay(path, chroma_bundle, corpus_index)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "searching" in lines[0]
    following = [line for line in lines if "following  piece3" in line]
    assert len(following) >= 5 and "beat" in following[-1] and "bpm" in following[-1]


def test_silence_is_not_an_error(chroma_bundle, corpus_index, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(22050 * 3, np.float32), 22050)
    r = replay(path, chroma_bundle, corpus_index, "--jsonl", "-")
    assert r.returncode == 0, r.stderr
    assert {json.loads(line)["state"] for line in r.stdout.splitlines()} == {"searching"}


def test_bad_audio_is_one_clear_line(chroma_bundle, corpus_index, tmp_path):
    one_line_error(replay(tmp_path / "missing.wav", chroma_bundle, corpus_index), "no such audio file")
    (tmp_path / "empty.wav").write_bytes(b"")
    one_line_error(replay(tmp_path / "empty.wav", chroma_bundle, corpus_index), "empty file")
    (tmp_path / "notes.flac").write_text("these are not samples\n" * 50)
    one_line_error(replay(tmp_path / "notes.flac", chroma_bundle, corpus_index), "not a readable audio file")
    nan = np.full(22050 * 2, np.nan, np.float32)
    sf.write(tmp_path / "nan.wav", nan, 22050, subtype="FLOAT")
    one_line_error(replay(tmp_path / "nan.wav", chroma_bundle, corpus_index), "NaN")


def test_index_of_another_bundle_is_refused(chroma_bundle, corpus_index, tmp_path):
    from conftest import make_chroma_bundle
    from follower.features import FeatureConfig

    other = make_chroma_bundle(tmp_path / "other", features=FeatureConfig(fmax_hz=5000.0))
    sf.write(tmp_path / "a.wav", np.zeros(22050, np.float32), 22050)
    one_line_error(replay(tmp_path / "a.wav", other, corpus_index), "was built with another score encoder")


def test_unusable_osc_target_is_refused(chroma_bundle, corpus_index, tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(22050, np.float32), 22050)
    r = follower("replay", tmp_path / "a.wav", "--fast", "--bundle", chroma_bundle, "--index", corpus_index,
                 "--osc", "no-such-host.invalid:9000")
    one_line_error(r, "cannot resolve host")


def test_missing_default_bundle_is_one_clear_line(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(22050, np.float32), 22050)
    one_line_error(follower("replay", tmp_path / "a.wav", "--bundle", tmp_path / "nothing"), "not a model bundle")


def test_the_runtime_never_imports_torch():
    code = ("import sys; import follower.cli, follower.engine, follower.index, follower.knn, follower.tracker, "
            "follower.runner, follower.audio_io, follower.osc, follower.jsonlog, follower.index_cli, "
            "follower.replay_cli, follower.listen_cli, follower.devices_cli; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_mp3_at_48k_stereo_is_read(chroma_bundle, corpus_index, tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3 (needs libsndfile >= 1.1)")
    t = np.arange(48000 * 3) / 48000
    tone = 0.2 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "tone.mp3", np.stack([tone, tone], axis=1), 48000, format="MP3")
    r = replay(tmp_path / "tone.mp3", chroma_bundle, corpus_index, "--jsonl", "-", "--duration", "2")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 40 and rows[-1]["t"] == pytest.approx(2.0, abs=0.06)


def test_the_readme_main_job_names_the_right_piece():
    """examples/demo.sh: the example recording on the shipped bundle and chorale index."""
    from conftest import REPO

    bundle = REPO / "exported" / "default"
    if not (bundle / "chorales.index.npz").is_file():
        pytest.skip("the shipped bundle and index (exported/default/chorales.index.npz) are not there yet")
    truth = json.loads((REPO / "examples" / "chorale_excerpt.json").read_text())
    r = follower("replay", REPO / "examples" / "chorale_excerpt.ogg", "--fast", "--jsonl", "-",
                 "--osc", "127.0.0.1:9")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    following = [row for row in rows if row["state"] == "following"]
    assert following and following[-1]["piece"] == truth["piece"]
    late = [row for row in following if row["t"] > 15]
    assert late and all(row["piece"] == truth["piece"] for row in late)
    err = np.array([row["position_s"] - (truth["start_s"] + truth["tempo_ratio"] * row["t"]) for row in late])
    assert np.mean(np.abs(err) < 1.0) >= 0.8, np.round(err[::10], 2)


def test_several_files_in_one_process_write_what_single_runs_write(chroma_bundle, corpus_index, rendered, tmp_path):
    import shutil

    a, b = tmp_path / "take.wav", tmp_path / "other" / "take.wav"  # the same stem twice
    b.parent.mkdir()
    shutil.copy(rendered["path"], a)
    shutil.copy(rendered["path"], b)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF nonsense")
    out = tmp_path / "logs"
    r = follower("replay", a, bad, b, "--fast", "--bundle", chroma_bundle, "--index", corpus_index,
                 "--osc", "127.0.0.1:9", "--quiet", "--jsonl-dir", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "broken.wav" in r.stderr and "skipped" in r.stderr and "1 of 3 files skipped" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["take-1.jsonl", "take-3.jsonl"]
    single = replay(a, chroma_bundle, corpus_index, "--jsonl", "-")

    def rows(text):
        return [{k: v for k, v in json.loads(line).items() if k != "latency_ms"} for line in text.splitlines()]

    want = rows(single.stdout)
    assert len(want) > 100
    assert rows((out / "take-1.jsonl").read_text()) == want == rows((out / "take-3.jsonl").read_text())


def test_one_jsonl_file_for_several_recordings_is_refused(chroma_bundle, corpus_index, rendered, tmp_path):
    r = follower("replay", rendered["path"], rendered["path"], "--fast", "--bundle", chroma_bundle,
                 "--index", corpus_index, "--jsonl", tmp_path / "x.jsonl")
    one_line_error(r, "use --jsonl-dir")
