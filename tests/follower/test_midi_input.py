"""MIDI input: the front end's rolls, the MIDI engine, `follower replay x.mid` and `listen --midi-in`."""

import json
import subprocess
import sys
import threading
import time

import mido
import numpy as np
import pytest

from follower.midi import load_midi
from follower.midi_frontend import RollConfig, RollFrontEnd
from follower.midi_sources import MidiPortSource, performance_events, roll_frames
from follower.snippets import SnippetConfig, score_roll

FPS = 20.009


def follower(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "follower.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def write_performance(src, out, *, tempo: float, start_s: float, seed: int = 0, p_wrong: float = 0.0,
                      p_missing: float = 0.0):
    """``src`` from ``start_s`` of its timeline played at ``tempo`` x, some notes wrong or left out."""
    rng = np.random.default_rng(seed)
    notes = load_midi(src).notes
    events = []
    for n in notes[notes["start_s"] >= start_s]:
        if rng.random() < p_missing:
            continue
        pitch = int(n["pitch"]) + (int(rng.choice([-2, -1, 1, 2])) if rng.random() < p_wrong else 0)
        on = (n["start_s"] - start_s) / tempo + rng.normal(0, 0.015)
        off = max(on + 0.05, (n["end_s"] - start_s) / tempo)
        events += [(max(on, 0.0), 1, mido.Message("note_on", channel=int(n["channel"]), note=pitch, velocity=70)),
                   (off, 0, mido.Message("note_off", channel=int(n["channel"]), note=pitch))]
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(type=0, ticks_per_beat=480)  # 120 bpm: 960 ticks a second
    track = mido.MidiTrack()
    tick = 0
    for t, _, msg in events:
        at = int(round(t * 960))
        track.append(msg.copy(time=at - tick))
        tick = at
    mid.tracks.append(track)
    mid.save(str(out))
    return out


def test_the_front_end_lays_out_a_played_file_as_the_index_lays_out_its_score(corpus):
    cfg = SnippetConfig()
    path = corpus / "piece2.mid"
    played = roll_frames(performance_events(path), RollFrontEnd(cfg, FPS)).reshape(-1, 2, cfg.n_pitches)
    score = score_roll(load_midi(path), cfg, FPS)
    n = min(len(played), len(score))
    assert abs(len(played) - len(score)) <= 1
    assert (played[:n] > 0).sum() > 1000
    np.testing.assert_array_equal(played[:n] > 0, score[:n] > 0)


def test_sustain_pedal_drums_and_octave_folding():
    cfg = SnippetConfig()

    def roll(events, pedal=True):
        front = RollFrontEnd(cfg, FPS, RollConfig(pedal=pedal))
        frames = []
        for t, msg in events:
            frames += front.feed(t, msg)
        frames += front.until(1.5)
        return np.stack(frames).reshape(-1, 2, cfg.n_pitches)

    c4 = 60 - cfg.pitch_lo
    events = [(0.10, mido.Message("note_on", note=60, velocity=90)),
              (0.20, mido.Message("control_change", control=64, value=127)),
              (0.30, mido.Message("note_off", note=60)),
              (0.40, mido.Message("note_on", channel=9, note=38, velocity=100)),   # a drum: left out
              (0.45, mido.Message("note_on", note=10, velocity=50)),               # below the range: folded up
              (0.50, mido.Message("note_on", note=10, velocity=0)),                # velocity 0 = note off
              (0.80, mido.Message("control_change", control=64, value=0))]
    with_pedal, without = roll(events), roll(events, pedal=False)
    held = np.flatnonzero(with_pedal[:, 0, c4])
    assert held[0] == int(0.10 * FPS) and held[-1] == int(0.80 * FPS)       # sounds until the pedal comes up
    assert np.flatnonzero(without[:, 0, c4])[-1] == int(0.30 * FPS)         # ... or until the key, without it
    assert np.flatnonzero(with_pedal[:, 1, c4]).tolist() == [int(0.10 * FPS)]  # one onset
    assert with_pedal[int(0.10 * FPS), 1, c4] == 90
    assert with_pedal[:, :, 38 - cfg.pitch_lo].sum() == 0                    # the drum
    assert with_pedal[int(0.45 * FPS), 1, 10 + 12 - cfg.pitch_lo] == 50      # folded by an octave


def test_bad_midi_files_are_one_line(tmp_path, chroma_bundle, corpus_index):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"MThd not really")
    for path, words in ((empty, "empty file"), (garbage, "not a readable MIDI file"),
                        (tmp_path / "absent.mid", "no such MIDI file")):
        r = follower("replay", path, "--fast", "--bundle", chroma_bundle, "--index", corpus_index)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], r.stderr


def test_replay_of_a_midi_performance_follows_it(chroma_bundle, corpus_index, corpus, tmp_path):
    """piece5 from 4 s at 1.25x with wrong and missing notes, through `follower replay perf.mid`."""
    tempo, start = 1.25, 4.0
    perf = write_performance(corpus / "piece5.mid", tmp_path / "perf.mid", tempo=tempo, start_s=start, seed=3,
                             p_wrong=0.05, p_missing=0.05)
    r = follower("replay", perf, "--fast", "--bundle", chroma_bundle, "--index", corpus_index, "--osc",
                 "127.0.0.1:9", "--jsonl", "-", "--stats")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[0]["state"] == "searching"
    late = [row for row in rows if row["t"] > 8 and row["position_s"] is not None]
    assert late and all(row["piece"] == "piece5" and row["state"] == "following" for row in late)
    err = np.array([row["position_s"] - min(start + tempo * row["t"], 20.0) for row in late])
    assert np.median(np.abs(err)) < 0.5, np.round(err[::10], 2)
    assert np.median([row["tempo"] for row in late]) == pytest.approx(tempo, rel=0.15)
    assert "real-time factor" in r.stderr


def test_replay_of_a_midi_performance_with_the_shipped_model():
    """A test-split chorale played at 0.8x from its 8th second, on the shipped bundle and chorale index."""
    from conftest import REPO
    from training.paths import data_root

    bundle = REPO / "exported" / "default"
    src = data_root() / "midi" / "bach-chorales" / "bach_bwv362.mid"
    if not (bundle / "chorales.index.npz").is_file() or not src.is_file():
        pytest.skip("needs the shipped bundle and index and the chorale corpus (../shared/data)")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        perf = write_performance(src, Path(tmp) / "bwv362.mid", tempo=0.8, start_s=8.0, seed=1, p_wrong=0.05)
        r = follower("replay", perf, "--fast", "--jsonl", "-", "--osc", "127.0.0.1:9")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    late = [row for row in rows if row["t"] > 10 and row["position_s"] is not None]
    assert late and all(row["piece"] == "bach_bwv362" for row in late)
    err = np.array([row["position_s"] - (8.0 + 0.8 * row["t"]) for row in late if 8.0 + 0.8 * row["t"] < 50])
    assert np.mean(np.abs(err) < 1.0) >= 0.8, np.round(err[::10], 2)


class LoopbackPort(mido.ports.BaseIOPort):
    """A mido port whose sent messages arrive at its own input: at the callback if one is set, like rtmidi."""

    def _open(self, **kwargs):
        self.callback = None
        self.arrived = []

    def _send(self, msg):
        self.arrived.append((time.monotonic(), msg))
        if self.callback is not None:
            self.callback(msg)
        else:
            self._messages.append(msg)


def test_a_live_port_is_followed_through_the_runner(chroma_bundle, corpus_index, corpus, tmp_path):
    """The live path (`listen --midi-in`): notes played into a port in real time, frames made by the clock."""
    from follower.midi_sources import front_end_for
    from follower.runner import RunOptions, load, run

    perf = write_performance(corpus / "piece6.mid", tmp_path / "live.mid", tempo=1.5, start_s=2.0, seed=5,
                             p_wrong=0.05)
    port = LoopbackPort("loopback")
    source = MidiPortSource(port, front_end_for(chroma_bundle))
    options = RunOptions(bundle_dir=str(chroma_bundle), index_path=str(corpus_index), osc_target="127.0.0.1:9",
                         jsonl_path=str(tmp_path / "live.jsonl"), console=False, duration_s=9.0)
    player_stop = threading.Event()

    def play():  # a keyboard player, from when the follower listens: each message at its moment
        while port.callback is None and not player_stop.is_set():
            time.sleep(0.005)
        for msg in mido.MidiFile(str(perf)).play():
            if player_stop.is_set() or port.closed:
                return
            try:
                port.send(msg)
            except ValueError:  # the run's duration ended and it closed the port between the check and the send
                return

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        assert run(source, load(options), options) == 0
    finally:
        player_stop.set()
        player.join(timeout=2.0)
    rows = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert source.messages > 100
    assert rows[-1]["t"] == pytest.approx(9.0, abs=0.2)
    late = [row for row in rows if row["t"] > 6]
    assert late and all(row["piece"] == "piece6" and row["state"] == "following" for row in late)
    err = np.array([row["position_s"] - (2.0 + 1.5 * row["t"]) for row in late])
    assert np.median(np.abs(err)) < 0.6, np.round(err[::5], 2)
