"""benchmarks.detune: a material folder's items played at another tuning, their truth following."""

import json

import numpy as np
import soundfile as sf

from benchmarks.detune import detune_truth, main
from benchmarks.warp import JumpMap, TimeMap, load_truth


def test_a_copy_35_cents_flat_is_35_cents_flat_and_its_truth_follows(tmp_path, capsys):
    rate = 22050
    t = np.arange(rate * 3) / rate
    src = tmp_path / "m"
    src.mkdir()
    sf.write(src / "a.flac", (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), rate)
    TimeMap(np.array([0.0, 3.0]), np.array([10.0, 13.0])).save(src / "a.truth.json", midi="x.mid")
    (src / "manifest.json").write_text(json.dumps([{"name": "a", "kind": "chorale", "audio": str(src / "a.flac"),
                                                    "truth": str(src / "a.truth.json"), "duration_s": 3.0}]))
    assert main([str(src), "--cents", "-35"]) == 0
    out = tmp_path / "m_c-35"
    item = json.loads((out / "manifest.json").read_text())[0]
    assert item["name"] == "a_c-35" and "A4 = 431.2 Hz" in capsys.readouterr().out
    audio, r = sf.read(item["audio"])
    factor = 2 ** (-35 / 1200)
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    peak_hz = np.argmax(spec) * r / len(audio)
    assert abs(peak_hz - 440.0 * factor) < 0.5 and abs(item["duration_s"] - 3.0 / factor) < 0.01
    truth = load_truth(item["truth"])
    assert np.allclose(truth.audio_s, [0.0, 3.0 / factor]) and np.allclose(truth.midi_s, [10.0, 13.0])


def test_a_jump_rendition_s_segments_are_all_scaled():
    segments = (TimeMap(np.array([0.0, 5.0]), np.array([20.0, 25.0])),
                TimeMap(np.array([5.01, 9.0]), np.array([12.0, 16.0])))
    d = {"segments": [s.to_json() for s in segments], "midi": "x.mid"}
    out = detune_truth(d, 2.0)
    back = JumpMap(tuple(TimeMap.from_json(s) for s in out["segments"]))
    assert np.allclose(back.segments[1].audio_s, [2.505, 4.5]) and out["midi"] == "x.mid"


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path), "--cents", "-35"]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("[]")
    assert main([str(tmp_path), "--cents", "0"]) == 2
    assert "--cents 0" in capsys.readouterr().err
