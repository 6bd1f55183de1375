"""studies.tuning_scan: which recordings the follower hears shifted from 440 Hz."""

import numpy as np
import soundfile as sf

from studies.tuning_scan import main


def tones(cents: float, seconds: float = 3.0, rate: int = 22050) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * 440.0 * 2 ** ((p - 69) / 12 + cents / 1200) * h * t) / h
            for p in (57, 64, 69, 73) for h in range(1, 6))
    return (0.1 * x).astype(np.float32)


def test_a_recording_35_cents_flat_is_heard_shifted_and_one_at_440_is_not(tmp_path, capsys):
    sf.write(tmp_path / "at440.flac", tones(0.0), 22050)
    sf.write(tmp_path / "flat.wav", tones(-35.0), 22050)
    assert main([str(tmp_path), "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    line = {l.split(":")[0].rsplit("/", 1)[-1]: l for l in out[:-1]}
    assert "heard shifted by nothing" in line["at440.flac"]
    assert "heard shifted by [-3" in line["flat.wav"] and "A4 = 431" in line["flat.wav"]
    assert out[-1].startswith("2 files, 1 heard shifted")


def test_nothing_to_scan_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no audio files" in capsys.readouterr().err
    assert main([str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err
