"""Render a time-warped excerpt of a MIDI file with fluidsynth, then put it in a room.

The warp is applied by rewriting event times before synthesis (not by stretching
audio), so notes keep their natural attack and decay at any tempo, and the ground
truth is exact: an event at MIDI time ``tau`` sounds at audio time
``time_map.midi_to_audio(tau)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.errors import BadMidiError, MissingToolError

from .warp import TimeMap

DRUM_CHANNEL = 9
SYNTH_CHANNELS = [c for c in range(16) if c != DRUM_CHANNEL]


@dataclass(frozen=True)
class MidiEvent:
    time_s: float      # on the MIDI's own timeline (its tempo map applied)
    kind: str          # "on", "off", "cc"
    voice: int         # (track, channel) pair numbered in order of appearance
    a: int             # pitch or controller
    b: int             # velocity or value


def read_events(path: Path) -> tuple[list[MidiEvent], int]:
    """Note and controller events in MIDI seconds, and the number of voices.

    Each (track, channel) pair is a voice so that one-channel chorale files can
    still get one instrument per part. Program changes and drums are dropped: the
    benchmark chooses held-out instruments itself. Seconds follow the same tempo
    map as follower.midi.load_midi (tempo events from every track).
    """
    import mido

    try:
        mid = mido.MidiFile(str(path), clip=True)
    except Exception as e:
        raise BadMidiError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})") from e
    tempo_map, raw = [], []
    for ti, track in enumerate(mid.tracks):
        tick = 0
        for order, msg in enumerate(track):
            tick += msg.time
            if msg.type == "set_tempo":
                tempo_map.append((tick, msg.tempo))
            elif msg.type in ("note_on", "note_off", "control_change") and msg.channel != DRUM_CHANNEL:
                raw.append((tick, ti, order, msg))
    raw.sort(key=lambda r: r[:3])
    tempo_map.sort()
    seconds = _ticks_to_seconds(np.array([r[0] for r in raw], dtype=np.int64), tempo_map, mid.ticks_per_beat)
    voices: dict = {}
    events = []
    for (_, ti, _, msg), t_s in zip(raw, seconds):
        voice = voices.setdefault((ti, msg.channel), len(voices))
        if msg.type == "control_change":
            events.append(MidiEvent(float(t_s), "cc", voice, msg.control, msg.value))
        elif msg.type == "note_on" and msg.velocity > 0:
            events.append(MidiEvent(float(t_s), "on", voice, msg.note, msg.velocity))
        else:
            events.append(MidiEvent(float(t_s), "off", voice, msg.note, 0))
    if not any(e.kind == "on" for e in events):
        raise BadMidiError(f"{path}: contains no pitched notes")
    return events, len(voices)


def _ticks_to_seconds(ticks: np.ndarray, tempo_map: list, ticks_per_beat: int) -> np.ndarray:
    seg_ticks, seg_tempo = [0], [500000]
    for t, tempo in tempo_map:
        if t == seg_ticks[-1]:
            seg_tempo[-1] = tempo
        else:
            seg_ticks.append(t)
            seg_tempo.append(tempo)
    seg_ticks, seg_tempo = np.array(seg_ticks), np.array(seg_tempo, dtype=float)
    seg_start_s = np.concatenate([[0.0], np.cumsum(np.diff(seg_ticks) * seg_tempo[:-1] / (1e6 * ticks_per_beat))])
    seg = np.searchsorted(seg_ticks, ticks, side="right") - 1
    return seg_start_s[seg] + (ticks - seg_ticks[seg]) * seg_tempo[seg] / (1e6 * ticks_per_beat)


@dataclass(frozen=True)
class TimedEvent:
    audio_s: float
    kind: str
    voice: int
    a: int
    b: int


def excerpt_events(events: list[MidiEvent], time_map: TimeMap) -> list[TimedEvent]:
    """Events of the MIDI span covered by ``time_map``, moved to audio time.

    Notes already sounding where the excerpt starts, and the controller state
    (sustain pedal), are set at audio time 0 as a recording that starts mid-piece
    would hear them; everything still sounding is released at the end.
    """
    start, end = float(time_map.midi_s[0]), float(time_map.midi_s[-1])
    out: list[TimedEvent] = []
    sounding: dict = {}
    controllers: dict = {}
    for e in events:
        if e.time_s >= start:
            break
        if e.kind == "cc":
            controllers[(e.voice, e.a)] = e.b
        elif e.kind == "on":
            sounding[(e.voice, e.a)] = e.b
        else:
            sounding.pop((e.voice, e.a), None)
    out += [TimedEvent(0.0, "cc", v, c, val) for (v, c), val in controllers.items()]
    out += [TimedEvent(0.0, "on", v, p, vel) for (v, p), vel in sounding.items()]
    inside = [e for e in events if start <= e.time_s < end]
    times = time_map.midi_to_audio(np.array([e.time_s for e in inside]))
    out += [TimedEvent(float(t), e.kind, e.voice, e.a, e.b) for e, t in zip(inside, times)]
    end_audio = float(time_map.audio_s[-1])
    voices = {e.voice for e in events}
    out += [TimedEvent(end_audio, "cc", v, 123, 0) for v in sorted(voices)]  # all notes off
    return out


def synthesize(events: list[TimedEvent], programs: list[int], *, duration_s: float,
               sample_rate_hz: int, soundfont: Path, velocity_gain: float = 1.0,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """Mono float32 audio of ``events``; voice ``v`` plays GM program ``programs[v]``.

    fluidsynth's own reverb and chorus are off: the room is added afterwards with a
    known impulse response. Velocities get ``velocity_gain`` and +-8 jitter.
    """
    try:
        import fluidsynth
    except ImportError as e:
        raise MissingToolError("pyfluidsynth is not installed: pip install pyfluidsynth "
                               "(and the fluidsynth library: apt-get install fluidsynth)") from e
    if not Path(soundfont).exists():
        raise MissingToolError(f"{soundfont}: soundfont not found; apt-get install timgm6mb-soundfont")
    rng = rng or np.random.default_rng(0)
    synth = fluidsynth.Synth(gain=0.3, samplerate=float(sample_rate_hz),
                             **{"synth.reverb.active": 0, "synth.chorus.active": 0})
    try:
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            raise MissingToolError(f"{soundfont}: fluidsynth could not load this soundfont")
        for v, program in enumerate(programs):
            synth.program_select(SYNTH_CHANNELS[v % len(SYNTH_CHANNELS)], sfid, 0, int(program))
        n_total = int(round(duration_s * sample_rate_hz))
        chunks, done = [], 0
        for e in sorted(events, key=lambda e: e.audio_s):
            n = min(int(round(e.audio_s * sample_rate_hz)), n_total) - done
            if n > 0:
                chunks.append(synth.get_samples(n))
                done += n
            ch = SYNTH_CHANNELS[e.voice % len(SYNTH_CHANNELS)]
            if e.kind == "on":
                vel = int(np.clip(round(e.b * velocity_gain + rng.integers(-8, 9)), 1, 127))
                synth.noteon(ch, e.a, vel)
            elif e.kind == "off":
                synth.noteoff(ch, e.a)
            else:
                synth.cc(ch, e.a, e.b)
        if n_total > done:
            chunks.append(synth.get_samples(n_total - done))
    finally:
        synth.delete()
    stereo = np.concatenate(chunks).astype(np.float32).reshape(-1, 2) / 32768.0
    return stereo.mean(axis=1)


def room_impulse_response(rng: np.random.Generator, rt60_s: float, sample_rate_hz: int,
                          direct_to_reverb_db: float) -> np.ndarray:
    """Synthetic room: a direct path plus exponentially decaying noise (-60 dB at ``rt60_s``)."""
    n = int(rt60_s * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)
    tail[: int(0.005 * sample_rate_hz)] = 0.0  # first reflections arrive after ~5 ms
    tail *= 10 ** (-direct_to_reverb_db / 20) / np.sqrt(np.sum(tail ** 2))
    tail[0] = 1.0
    return tail


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=float)
    spectrum /= np.sqrt(np.maximum(f, 1.0))
    noise = np.fft.irfft(spectrum, n)
    return noise / noise.std()


def put_in_room(dry: np.ndarray, rng: np.random.Generator, *, sample_rate_hz: int, rt60_s: float,
                direct_to_reverb_db: float, snr_db: float) -> np.ndarray:
    """Convolve with a room, add pink noise at ``snr_db`` (relative to the wet signal), peak 0.9."""
    from scipy.signal import fftconvolve

    ir = room_impulse_response(rng, rt60_s, sample_rate_hz, direct_to_reverb_db)
    wet = fftconvolve(dry, ir)[: len(dry)]
    signal_power = np.mean(wet ** 2)
    if signal_power <= 0:
        raise ValueError("the rendition is silent; nothing to put in a room")
    noisy = wet + pink_noise(rng, len(wet)) * np.sqrt(signal_power / 10 ** (snr_db / 10))
    return (0.9 * noisy / np.max(np.abs(noisy))).astype(np.float32)
