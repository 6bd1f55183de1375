"""benchmarks.prelude: a material folder's items with players tuning (or chords tried) before the music."""

import json

import numpy as np
import pytest
import soundfile as sf

from benchmarks.prelude import main, shift_truth
from benchmarks.warp import JumpMap, TimeMap, load_truth


def fluidr3_or_skip():
    pytest.importorskip("fluidsynth", reason="pyfluidsynth not installed")
    from training.data.synth import find_soundfont

    try:
        find_soundfont("FluidR3_GM.sf2")
    except Exception as e:  # noqa: BLE001 - any way of being absent
        pytest.skip(f"FluidR3_GM.sf2 absent (fluid-soundfont-gm): {e}")


def test_the_music_comes_after_the_prelude_and_the_gap_and_its_truth_follows(tmp_path, capsys):
    fluidr3_or_skip()
    rate = 22050
    t = np.arange(rate * 2) / rate
    music = (0.3 * np.sin(2 * np.pi * 261.6 * t)).astype(np.float32)
    src = tmp_path / "m"
    src.mkdir()
    sf.write(src / "a.flac", music, rate)
    TimeMap(np.array([0.0, 2.0]), np.array([10.0, 12.0])).save(src / "a.truth.json", midi="x.mid")
    (src / "manifest.json").write_text(json.dumps([{"name": "a", "kind": "chorale", "audio": str(src / "a.flac"),
                                                    "truth": str(src / "a.truth.json"), "duration_s": 2.0}]))
    assert main([str(src), "--kind", "violin", "--gap-s", "2", "--gap-db", "-70"]) == 0
    out = tmp_path / "m_previolin2q70"
    assert "violin prelude and 2 s gap" in capsys.readouterr().out
    item = json.loads((out / "manifest.json").read_text())[0]
    audio, r = sf.read(item["audio"])
    shift = item["prelude_s"]
    assert r == rate and item["name"] == "a_previolin2q70" and shift > 8.6 + 2.0
    assert len(audio) == round(shift * rate) + len(music) and item["duration_s"] == pytest.approx(2.0 + shift)
    assert np.allclose(audio[-len(music):], music, atol=1e-4)  # the item itself, untouched
    gap = audio[round((shift - 2.0) * rate) + 100:round(shift * rate) - 100]
    assert 20 * np.log10(np.sqrt(np.mean(gap ** 2))) == pytest.approx(-70, abs=1)
    # the open A of the prelude's first two seconds
    first = audio[:2 * rate]
    spec = np.abs(np.fft.rfft(first * np.hanning(len(first))))
    assert abs(np.argmax(spec[: 1000 * 2]) / 2 - 440.0) < 3
    truth = load_truth(item["truth"])
    assert np.allclose(truth.audio_s, [shift, shift + 2.0]) and np.allclose(truth.midi_s, [10.0, 12.0])


def test_a_jump_rendition_s_segments_all_move():
    segments = (TimeMap(np.array([0.0, 5.0]), np.array([20.0, 25.0])),
                TimeMap(np.array([5.01, 9.0]), np.array([12.0, 16.0])))
    out = shift_truth({"segments": [s.to_json() for s in segments], "midi": "x.mid"}, 10.0)
    back = JumpMap(tuple(TimeMap.from_json(s) for s in out["segments"]))
    assert np.allclose(back.segments[1].audio_s, [15.01, 19.0]) and out["prelude_s"] == 10.0


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path), "--kind", "piano"]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("[]")
    assert main([str(tmp_path), "--kind", "piano", "--gap-db", "3"]) == 2
    assert "--gap-db 3" in capsys.readouterr().err


def test_any_recording_can_be_the_prelude(tmp_path, capsys):
    rate = 22050
    src = tmp_path / "m"
    src.mkdir()
    music = np.full(rate, 0.1, np.float32)
    sf.write(src / "a.flac", music, rate)
    TimeMap(np.array([0.0, 1.0]), np.array([0.0, 1.0])).save(src / "a.truth.json", midi="x.mid")
    (src / "manifest.json").write_text(json.dumps([{"name": "a", "kind": "chorale", "audio": str(src / "a.flac"),
                                                    "truth": str(src / "a.truth.json"), "duration_s": 1.0}]))
    t = np.arange(44100 * 2) / 44100
    sf.write(tmp_path / "hall announcement.wav", (0.5 * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32), 44100)
    assert main([str(src), "--audio", str(tmp_path / "hall announcement.wav"), "--gap-s", "0"]) == 0
    item = json.loads((tmp_path / "m_prehallannouncement0" / "manifest.json").read_text())[0]
    audio, r = sf.read(item["audio"])
    assert r == rate and item["prelude_s"] == pytest.approx(2.0, abs=1e-3) and len(audio) == 3 * rate
    spec = np.abs(np.fft.rfft(audio[:2 * rate]))
    assert abs(np.argmax(spec) / 2 - 300.0) < 1  # resampled to the item's rate, the same pitch
    assert main([str(src), "--audio", str(tmp_path / "missing.wav")]) == 2
    assert "--audio" in capsys.readouterr().err
