import mido
import numpy as np
import pytest

from follower.errors import BadMidiError
from follower.midi import load_midi, piano_roll


def _three_note_midi(path, tempo_us=500000, tpb=480):
    """C4 for a beat, then E4 and G4 together for a beat, at 120 bpm by default."""
    mid = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo_us, time=0))
    track.append(mido.Message("program_change", program=40, time=0))
    track.append(mido.Message("note_on", note=60, velocity=100, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=tpb))
    track.append(mido.Message("note_on", note=64, velocity=80, time=0))
    track.append(mido.Message("note_on", note=67, velocity=90, time=0))
    track.append(mido.Message("note_off", note=64, velocity=0, time=tpb))
    track.append(mido.Message("note_on", note=67, velocity=0, time=0))
    mid.save(path)
    return path


def test_three_note_piano_roll_is_exact(tmp_path):
    score = load_midi(_three_note_midi(tmp_path / "three.mid"))
    assert len(score.notes) == 3
    assert score.duration_s == pytest.approx(1.0)
    assert set(score.notes["program"]) == {40}
    roll = piano_roll(score, 4.0)  # 4 frames per second: 0.25 s frames
    expected = np.zeros((4, 88), np.uint8)
    expected[0:2, 60 - 21] = 100
    expected[2:4, 64 - 21] = 80
    expected[2:4, 67 - 21] = 90
    np.testing.assert_array_equal(roll, expected)
    onsets = piano_roll(score, 4.0, onsets=True)
    assert onsets.sum() == 100 + 80 + 90 and onsets[2, 64 - 21] == 80


def test_tempo_map_and_beats(tmp_path):
    score = load_midi(_three_note_midi(tmp_path / "slow.mid", tempo_us=1000000))  # 60 bpm
    assert score.duration_s == pytest.approx(2.0)
    assert score.seconds_to_beats(1.5) == pytest.approx(1.5)
    assert score.beats_to_seconds(2.0) == pytest.approx(2.0)
    assert score.bpm_at(0.0) == pytest.approx(60.0)


def test_bad_midi_files(tmp_path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(BadMidiError, match="empty"):
        load_midi(empty)
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd garbage that is not midi")
    with pytest.raises(BadMidiError, match="not a readable MIDI"):
        load_midi(corrupt)
    drums = mido.MidiFile()
    t = mido.MidiTrack()
    drums.tracks.append(t)
    t.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=0))
    t.append(mido.Message("note_off", channel=9, note=36, velocity=0, time=480))
    drums.save(tmp_path / "drums.mid")
    with pytest.raises(BadMidiError, match="drum-only"):
        load_midi(tmp_path / "drums.mid")
    absurd = mido.MidiFile(ticks_per_beat=1)
    t = mido.MidiTrack()
    absurd.tracks.append(t)
    t.append(mido.MetaMessage("set_tempo", tempo=16000000, time=0))
    t.append(mido.Message("note_on", note=60, velocity=100, time=0))
    t.append(mido.Message("note_off", note=60, velocity=0, time=10 ** 6))
    absurd.save(tmp_path / "absurd.mid")
    with pytest.raises(BadMidiError, match="broken"):
        load_midi(tmp_path / "absurd.mid")
    with pytest.raises(BadMidiError, match="no such"):
        load_midi(tmp_path / "missing.mid")


def test_real_chorale_loads_if_present():
    import pathlib
    p = pathlib.Path(__file__).resolve().parents[3] / "shared/data/midi/bach-chorales"
    files = sorted(p.glob("*.mid"))[:3] if p.exists() else []
    if not files:
        pytest.skip("../shared/data not present")
    for f in files:
        s = load_midi(f)
        assert 5 < s.duration_s < 600
        assert piano_roll(s, 20.0).shape[1] == 88
