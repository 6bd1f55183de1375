"""The MIDI-input benchmark's performances: warped in time, with playing errors, truth exact."""

import json

import mido
import numpy as np
import pytest

from benchmarks.midi_input import make_performance
from benchmarks.warp import TimeMap
from follower.midi import load_midi
from follower.midi_sources import performance_events


def write_piece(path, seed: int, n_chords: int):
    """Four voices (one track each) of random chords, one per beat at 120 bpm."""
    rng = np.random.default_rng(seed)
    mid = mido.MidiFile(ticks_per_beat=480)
    for v in range(4):
        track = mido.MidiTrack()
        for p in 36 + 12 * v + rng.integers(0, 12, n_chords):
            track.append(mido.Message("note_on", channel=v, note=int(p), velocity=80, time=0))
            track.append(mido.Message("note_off", channel=v, note=int(p), velocity=0, time=480))
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def test_a_performance_is_warped_and_perturbed_and_its_truth_maps_its_notes(tmp_path):
    src = write_piece(tmp_path / "src.mid", seed=7, n_chords=120)  # 60 s at the written tempo
    info = make_performance(src, tmp_path / "perf.mid", tmp_path / "perf.json", np.random.default_rng(4))
    truth = TimeMap.load(tmp_path / "perf.json")
    assert json.loads((tmp_path / "perf.json").read_text())["missing"] == info["missing"]
    assert 0.5 - 1e-6 <= info["tempo_min"] < info["tempo_max"] <= 1.6 + 1e-6 and info["tempo_max"] / info["tempo_min"] > 1.1
    assert info["missing"] > 0 and info["wrong"] > 0 and info["extra"] > 0
    played = load_midi(tmp_path / "perf.mid").notes
    assert len(played) == info["notes"] - info["missing"] + info["extra"]
    # every written onset inside the excerpt sounds where the truth says, give or take the jitter
    score = load_midi(src).notes
    inside = score[(score["start_s"] > truth.midi_s[0] + 0.5) & (score["start_s"] < truth.midi_s[-1] - 0.5)]
    expected = truth.midi_to_audio(inside["start_s"])
    nearest = np.abs(played["start_s"][None, :] - expected[:, None]).min(axis=1)
    assert np.mean(nearest < 0.08) > 0.9
    assert performance_events(tmp_path / "perf.mid")[0][1].type == "note_on"


def test_performances_are_seeded(tmp_path):
    src = write_piece(tmp_path / "src.mid", seed=8, n_chords=80)
    a = make_performance(src, tmp_path / "a.mid", tmp_path / "a.json", np.random.default_rng(1))
    b = make_performance(src, tmp_path / "b.mid", tmp_path / "b.json", np.random.default_rng(1))
    assert a == pytest.approx(b)
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
