"""MIDI scores and their piano rolls (numpy + mido; shared by training and the follower).

Time base. A piano roll frame ``j`` covers the MIDI's own timeline (its tempo map
applied) from ``j / frame_rate_hz`` to ``(j + 1) / frame_rate_hz`` seconds, at the
audio front end's frame rate, so that at the written tempo audio frame ``i`` and
roll frame ``i`` describe the same moment. Positions are also available in beats
(quarter notes, from the ticks) through :meth:`Score.seconds_to_beats`.

Why seconds of the MIDI's timeline rather than beats: the audio encoder always sees
a fixed 2.1 s, and the corpora mix tempi from 40 to 200 bpm and tempo maps
(piano-midi.de). A window in written seconds covers the same notes as the audio
at the written tempo whatever the notation; the performer's deviation from it is
the tempo ratio the network learns to tolerate (tempo augmentation 0.8..1.25, as
in the paper), and the follower estimates it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import BadMidiError

NOTE_DTYPE = np.dtype([
    ("start_s", "f8"), ("end_s", "f8"), ("pitch", "i2"), ("velocity", "i2"),
    ("track", "i2"), ("channel", "i2"), ("program", "i2"), ("is_drum", "?"),
])

MAX_DURATION_S = 4 * 3600.0  # longer than this is a broken file, not a piece
DRUM_CHANNEL = 9


@dataclass(frozen=True, eq=False)
class Score:
    """Notes of one MIDI file on its own timeline, with its tempo map."""

    path: str
    notes: np.ndarray            # NOTE_DTYPE, sorted by start_s
    ticks_per_beat: int
    tempo_ticks: np.ndarray      # ticks where a tempo segment starts (first is 0)
    tempo_us_per_beat: np.ndarray
    tempo_start_s: np.ndarray    # seconds at which each segment starts
    title: str = ""              # the first track's first non-empty track_name, if any

    @property
    def duration_s(self) -> float:
        return float(self.notes["end_s"].max())

    @property
    def pitched(self) -> np.ndarray:
        return self.notes[~self.notes["is_drum"]]

    def seconds_to_beats(self, t_s):
        """Quarter-note beats at time ``t_s`` (seconds of the MIDI's timeline)."""
        t = np.asarray(t_s, dtype=np.float64)
        seg = np.clip(np.searchsorted(self.tempo_start_s, t, side="right") - 1, 0, None)
        beats0 = self.tempo_ticks[seg] / self.ticks_per_beat
        return beats0 + (t - self.tempo_start_s[seg]) * 1e6 / self.tempo_us_per_beat[seg]

    def beats_to_seconds(self, beats):
        b = np.asarray(beats, dtype=np.float64)
        seg_beats = self.tempo_ticks / self.ticks_per_beat
        seg = np.clip(np.searchsorted(seg_beats, b, side="right") - 1, 0, None)
        return self.tempo_start_s[seg] + (b - seg_beats[seg]) * self.tempo_us_per_beat[seg] / 1e6

    def bpm_at(self, t_s: float) -> float:
        seg = max(int(np.searchsorted(self.tempo_start_s, t_s, side="right")) - 1, 0)
        return 60e6 / float(self.tempo_us_per_beat[seg])


# channel messages: data bytes after the status byte, by its high nibble (the MIDI standard's lengths)
_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


def _events_fast(data: bytes):
    """(format, ticks per beat, per track [(tick, kind, a, b)]) of a Standard MIDI File, read as mido reads
    it (``mido.MidiFile(clip=True)``: running status, meta events never setting it, data bytes clipped to
    127, a track read until its declared length is reached exactly) but without building a message
    object per event: reading with mido was a quarter of an index build of piano music. Meta and sysex
    events still go through mido's own decoders, so every check of theirs applies. kind: "on" (a = note,
    b = (channel, velocity)), "off" (a = note, b = channel), "program" (a = channel, b = program),
    "tempo" (a = microseconds per beat), "name" (a = track name). Anything unusual raises; the caller
    then reads the file with mido itself, which raises its own error or reads it the same way."""
    from mido.messages import Message
    from mido.midifiles.meta import build_meta_message, meta_charset
    from mido.midifiles.midifiles import MAX_MESSAGE_LENGTH

    if data[:4] != b"MThd":
        raise ValueError("no MThd")
    size = int.from_bytes(data[4:8], "big")
    if size < 6 or len(data) < 8 + size:
        raise ValueError("short header")
    fmt, n_tracks, tpb = (int.from_bytes(data[8 + 2 * i:10 + 2 * i], "big", signed=True) for i in range(3))
    pos, end, tracks = 8 + size, len(data), []

    def varlen():
        nonlocal pos
        value = 0
        while True:
            byte = data[pos]  # IndexError at the end: mido's EOFError
            pos += 1
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                return value

    with meta_charset("latin1"):
        for _ in range(n_tracks):
            if pos + 8 > end or data[pos:pos + 4] != b"MTrk":
                raise ValueError("no MTrk")
            length = int.from_bytes(data[pos + 4:pos + 8], "big")
            pos += 8
            start, tick, last, events = pos, 0, None, []
            while pos - start != length:
                tick += varlen()
                status = data[pos]
                pos += 1
                if status < 0x80:
                    if last is None or last in (0xF0, 0xF7):  # (after a sysex mido drops that byte: it decides)
                        raise ValueError("running status without a channel status")
                    status, pos = last, pos - 1
                elif status != 0xFF:
                    last = status
                if status == 0xFF:
                    meta_type = data[pos]
                    pos += 1
                    n = varlen()
                    if pos + n > end or n > MAX_MESSAGE_LENGTH:
                        raise ValueError("meta event beyond the file")
                    msg = build_meta_message(meta_type, list(data[pos:pos + n]))
                    pos += n
                    if msg.type == "set_tempo":
                        events.append((tick, "tempo", msg.tempo, None))
                    elif msg.type == "track_name":
                        events.append((tick, "name", msg.name, None))
                elif status in (0xF0, 0xF7):
                    n = varlen()
                    if pos + n > end or n > MAX_MESSAGE_LENGTH:
                        raise ValueError("sysex beyond the file")
                    body = list(data[pos:pos + n])
                    pos += n
                    if body and body[0] == 0xF0:
                        body = body[1:]
                    if body and body[-1] == 0xF7:
                        body = body[:-1]
                    Message("sysex", data=[b if b < 127 else 127 for b in body])  # mido's checks
                else:
                    kind = status >> 4
                    if kind not in _DATA_BYTES:
                        raise ValueError("system message in a track")  # rare: mido decides
                    n = _DATA_BYTES[kind]
                    if pos + n > end:
                        raise ValueError("message beyond the file")
                    a = min(data[pos], 127)
                    b = min(data[pos + 1], 127) if n == 2 else 0
                    pos += n
                    channel = status & 0x0F
                    if kind == 0x9 and b > 0:
                        events.append((tick, "on", a, (channel, b)))
                    elif kind in (0x8, 0x9):
                        events.append((tick, "off", a, channel))
                    elif kind == 0xC:
                        events.append((tick, "program", channel, a))
            tracks.append(events)
    return fmt, tpb, tracks


def _events_mido(path):
    """:func:`_events_fast`'s result, read with mido (its errors raised as they are)."""
    import mido

    mid = mido.MidiFile(path, clip=True)
    tracks = []
    for track in mid.tracks:
        tick, events = 0, []
        for msg in track:
            tick += msg.time
            if msg.type == "track_name":
                events.append((tick, "name", msg.name, None))
            elif msg.type == "set_tempo":
                events.append((tick, "tempo", msg.tempo, None))
            elif msg.type == "program_change":
                events.append((tick, "program", msg.channel, msg.program))
            elif msg.type == "note_on" and msg.velocity > 0:
                events.append((tick, "on", msg.note, (msg.channel, msg.velocity)))
            elif msg.type in ("note_off", "note_on"):
                events.append((tick, "off", msg.note, msg.channel))
        tracks.append(events)
    return mid.type, int(mid.ticks_per_beat), tracks


def load_midi(path, *, allow_drum_only: bool = False) -> Score:
    """Read a .mid/.midi file, or raise BadMidiError saying what is wrong with it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise BadMidiError(f"{path}: no such MIDI file")
    if os.path.getsize(path) == 0:
        raise BadMidiError(f"{path}: empty file (0 bytes); re-export or remove it")
    try:
        with open(path, "rb") as f:
            fmt, tpb, tracks = _events_fast(f.read())
    except Exception:  # noqa: BLE001 - anything unusual: mido reads it, or says what is wrong
        try:
            fmt, tpb, tracks = _events_mido(path)
        except Exception as e:  # mido raises OSError, EOFError, KeyError, ValueError...
            raise BadMidiError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e}); "
                               "re-export it or remove it from the corpus") from e
    if fmt == 2:
        raise BadMidiError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    tpb = int(tpb)
    if tpb <= 0:
        raise BadMidiError(f"{path}: ticks_per_beat={tpb} must be positive (SMPTE timing is not supported)")

    tempo_events, raw, title = [], [], ""
    for track_index, events in enumerate(tracks):
        program = {c: 0 for c in range(16)}
        active: dict = {}
        for tick, kind, a, b in events:
            if kind == "on":
                channel, velocity = b
                active.setdefault((channel, a), []).append((tick, velocity, program[channel]))
            elif kind == "off":
                stack = active.get((b, a))
                if stack:
                    start, vel, prog = stack.pop(0)
                    if tick > start:
                        raw.append((start, tick, a, vel, track_index, b, prog))
            elif kind == "program":
                program[a] = b
            elif kind == "tempo":
                tempo_events.append((tick, a))
            elif kind == "name" and track_index == 0 and not title:
                title = a.strip()
    if not raw:
        raise BadMidiError(f"{path}: contains no notes")

    tempo_events.sort()
    zero = next((t for t, tempo in tempo_events if tempo <= 0), None)
    if zero is not None:
        raise BadMidiError(f"{path}: a tempo of 0 microseconds per beat at tick {zero} (every later note would "
                           "sound at the same instant); re-export it or remove it from the corpus")
    ticks, tempos = [0], [500000]
    for t, tempo in tempo_events:
        if t == ticks[-1]:
            tempos[-1] = tempo
        elif tempo != tempos[-1]:
            ticks.append(t)
            tempos.append(tempo)
    tempo_ticks = np.array(ticks, dtype=np.int64)
    tempo_us = np.array(tempos, dtype=np.float64)
    seg_s = np.diff(tempo_ticks) * tempo_us[:-1] / (1e6 * tpb)
    tempo_start_s = np.concatenate([[0.0], np.cumsum(seg_s)])

    def ticks_to_s(t):
        seg = np.searchsorted(tempo_ticks, t, side="right") - 1
        return tempo_start_s[seg] + (t - tempo_ticks[seg]) * tempo_us[seg] / (1e6 * tpb)

    raw = np.array(raw, dtype=np.int64)
    notes = np.empty(len(raw), dtype=NOTE_DTYPE)
    notes["start_s"] = ticks_to_s(raw[:, 0])
    notes["end_s"] = ticks_to_s(raw[:, 1])
    notes["pitch"], notes["velocity"], notes["track"] = raw[:, 2], raw[:, 3], raw[:, 4]
    notes["channel"], notes["program"] = raw[:, 5], raw[:, 6]
    notes["is_drum"] = raw[:, 5] == DRUM_CHANNEL
    notes = notes[np.argsort(notes["start_s"], kind="stable")]

    if notes["end_s"].max() <= 0:
        raise BadMidiError(f"{path}: every note ends at time 0 by its tempo map; nothing to follow")
    if notes["end_s"].max() > MAX_DURATION_S:
        raise BadMidiError(f"{path}: lasts {notes['end_s'].max() / 3600:.1f} h by its tempo map; "
                           "ticks or tempo are broken (expected < 4 h)")
    if notes["is_drum"].all() and not allow_drum_only:
        raise BadMidiError(f"{path}: drum-only (every note on channel 10); nothing to follow")
    return Score(path, notes, tpb, tempo_ticks, tempo_us, tempo_start_s, title)


def piano_roll(score: Score, frame_rate_hz: float, *, pitch_lo: int = 21, pitch_hi: int = 108,
               n_frames: int | None = None, onsets: bool = False) -> np.ndarray:
    """(n_frames, pitch_hi - pitch_lo + 1) uint8 roll of velocities, drums left out.

    Frame ``j`` holds the largest velocity of any note sounding during
    [j, j + 1) / frame_rate_hz. With ``onsets=True`` only the frame in which a note
    starts is set. Pitches outside the range are folded in by octaves.
    """
    notes = score.pitched
    if n_frames is None:
        n_frames = int(np.ceil(score.duration_s * frame_rate_hz))
    n_pitches = pitch_hi - pitch_lo + 1
    roll = np.zeros((n_frames, n_pitches), dtype=np.uint8)
    pitch = notes["pitch"].astype(np.int64)
    while (pitch < pitch_lo).any() or (pitch > pitch_hi).any():
        pitch = np.where(pitch < pitch_lo, pitch + 12, pitch)
        pitch = np.where(pitch > pitch_hi, pitch - 12, pitch)
    first = np.floor(notes["start_s"] * frame_rate_hz).astype(np.int64)
    if onsets:
        last = first + 1
    else:
        # a note ending exactly on a frame boundary does not sound in that frame
        last = np.ceil(notes["end_s"] * frame_rate_hz).astype(np.int64)
        last = np.maximum(last, first + 1)
    vel = np.clip(notes["velocity"], 1, 127).astype(np.uint8)
    for f0, f1, p, v in zip(first, np.minimum(last, n_frames), pitch - pitch_lo, vel):
        if f0 < n_frames:
            np.maximum(roll[f0:f1, p], v, out=roll[f0:f1, p])
    return roll
