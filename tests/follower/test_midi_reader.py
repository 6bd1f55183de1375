"""The MIDI reader of index builds reads every file as mido does, event for event, and leaves the
unusual ones to mido itself (so its errors stay the one-line errors they were)."""

import struct

import mido
import pytest

from follower import midi
from follower.errors import BadMidiError


def smf(*tracks: bytes, fmt: int = 1, tpb: int = 480) -> bytes:
    out = b"MThd" + struct.pack(">LHHH", 6, fmt, len(tracks), tpb)
    return out + b"".join(b"MTrk" + struct.pack(">L", len(t)) + t for t in tracks)


# track 0: name, tempo, a sysex, then notes with running status, a note_on of velocity 0 as note off,
# a data byte over 127 (clipped), a program change and an unknown meta event
TRACK0 = bytes([0x00, 0xFF, 0x03, 0x05]) + b"Title" + bytes([
    0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,
    0x00, 0xF0, 0x03, 0x43, 0x10, 0xF7,
    0x00, 0xC0, 0x05,
    0x00, 0x90, 60, 100,
    0x10, 64, 0xFF & 200,          # running status, velocity 200 -> 127
    0x60, 60, 0,                   # running status, velocity 0: note off
    0x81, 0x00, 0x80, 64, 0,       # delta 128, note off
    0x00, 0xFF, 0x7F, 0x02, 0x01, 0x02,
    0x00, 0xFF, 0x2F, 0x00])
TRACK1 = bytes([0x00, 0x91, 48, 90, 0x83, 0x60, 0x81, 48, 0, 0x00, 0xB1, 64, 127, 0x00, 0xFF, 0x2F, 0x00])


def test_the_fast_reader_reads_as_mido_does(tmp_path):
    path = tmp_path / "a.mid"
    path.write_bytes(smf(TRACK0, TRACK1))
    fast = midi._events_fast(path.read_bytes())
    assert fast == midi._events_mido(path)
    fmt, tpb, tracks = fast
    assert (fmt, tpb) == (1, 480)
    assert [e[1] for e in tracks[0]] == ["name", "tempo", "program", "on", "on", "off", "off"]
    assert tracks[0][4] == (16, "on", 64, (0, 127))           # clipped as mido(clip=True) does
    score = midi.load_midi(path)
    assert score.title == "Title" and len(score.notes) == 3 and score.notes["program"][0] == 5


def test_a_file_saved_by_mido_reads_the_same(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=96)
    for ch in range(3):
        t = mido.MidiTrack([mido.MetaMessage("track_name", name=f"t{ch}"), mido.Message("program_change", channel=ch,
                                                                                          program=ch * 7)])
        for k in range(50):
            t.append(mido.Message("note_on", channel=ch, note=40 + k % 30, velocity=1 + k, time=k % 5))
            t.append(mido.Message("note_off", channel=ch, note=40 + k % 30, time=3))
        mid.tracks.append(t)
    path = tmp_path / "b.mid"
    mid.save(path)
    assert midi._events_fast(path.read_bytes()) == midi._events_mido(path)


@pytest.mark.parametrize("data, what", [
    (smf(TRACK0)[:-5], "truncated"),                          # the track ends before its declared length
    (smf(bytes([0x00, 60, 100])), "running status first"),   # a data byte with no status before it
    (b"RIFF" + smf(TRACK0), "not a standard MIDI file"),
])
def test_unusual_files_are_left_to_mido_and_its_errors(tmp_path, data, what):
    path = tmp_path / "c.mid"
    path.write_bytes(data)
    with pytest.raises(Exception):
        midi._events_fast(data)
    with pytest.raises(Exception) as mido_error:
        midi._events_mido(path)
    with pytest.raises(BadMidiError, match=type(mido_error.value).__name__):
        midi.load_midi(path)
