"""Ground-truth time maps: audio seconds of a rendition <-> seconds of the MIDI's timeline.

A rendition's tempo ratio ``r(t)`` is MIDI seconds per audio second (r > 1 = faster
than written), the convention of docs/architecture.md. The map is stored as two
increasing arrays and interpolated linearly; outside its range the position is
undefined (NaN), so metrics never score guesses against extrapolated truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEMPO_RATIO_MIN = 0.75
TEMPO_RATIO_MAX = 1.3
GRID_HZ = 100.0  # tempo curves are smooth over seconds; 10 ms steps are exact enough


@dataclass(frozen=True)
class TimeMap:
    """Piecewise-linear, strictly increasing map between audio and MIDI time."""

    audio_s: np.ndarray
    midi_s: np.ndarray

    def __post_init__(self):
        a, m = np.asarray(self.audio_s, float), np.asarray(self.midi_s, float)
        if a.shape != m.shape or a.ndim != 1 or len(a) < 2:
            raise ValueError(f"a time map needs two equal 1-D arrays of >= 2 points, got {a.shape}, {m.shape}")
        if (np.diff(a) <= 0).any() or (np.diff(m) <= 0).any():
            raise ValueError("a time map must be strictly increasing on both axes")
        object.__setattr__(self, "audio_s", a)
        object.__setattr__(self, "midi_s", m)

    def audio_to_midi(self, t_s):
        return np.interp(t_s, self.audio_s, self.midi_s, left=np.nan, right=np.nan)

    def midi_to_audio(self, tau_s):
        return np.interp(tau_s, self.midi_s, self.audio_s, left=np.nan, right=np.nan)

    def to_json(self) -> dict:
        return {"audio_s": np.round(self.audio_s, 5).tolist(), "midi_s": np.round(self.midi_s, 5).tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "TimeMap":
        return cls(np.array(d["audio_s"]), np.array(d["midi_s"]))

    def save(self, path: Path, **extra) -> None:
        Path(path).write_text(json.dumps({**extra, "time_map": self.to_json()}))

    @classmethod
    def load(cls, path: Path) -> "TimeMap":
        return cls.from_json(json.loads(Path(path).read_text())["time_map"])


@dataclass(frozen=True)
class JumpMap:
    """Audio -> MIDI time of a rendition with jumps: consecutive :class:`TimeMap` segments.

    Each segment is strictly increasing over its own audio span (absolute audio
    seconds); between segments the player jumps (a repeat taken, a skip back, a
    restart) and may pause. In a pause the position is undefined (NaN), as outside.
    """

    segments: tuple

    def __post_init__(self):
        segs = tuple(self.segments)
        if not segs or any(b.audio_s[0] < a.audio_s[-1] for a, b in zip(segs, segs[1:])):
            raise ValueError("a jump map needs one or more segments in audio order, not overlapping")
        object.__setattr__(self, "segments", segs)

    @property
    def jumps_s(self) -> list[float]:
        """Audio times at which a new segment starts."""
        return [float(seg.audio_s[0]) for seg in self.segments[1:]]

    @property
    def audio_s(self) -> np.ndarray:
        return np.concatenate([seg.audio_s for seg in self.segments])

    @property
    def midi_s(self) -> np.ndarray:
        return np.concatenate([seg.midi_s for seg in self.segments])

    def audio_to_midi(self, t_s):
        t = np.asarray(t_s, float)
        out = np.full(t.shape, np.nan)
        for seg in self.segments:
            inside = (t >= seg.audio_s[0]) & (t <= seg.audio_s[-1])
            out[inside] = seg.audio_to_midi(t[inside])
        return out if out.ndim else float(out)

    def save(self, path: Path, **extra) -> None:
        Path(path).write_text(json.dumps({**extra, "segments": [seg.to_json() for seg in self.segments]}))


def load_truth(path: Path):
    """The truth of an item: a :class:`TimeMap`, or a :class:`JumpMap` for renditions with jumps."""
    d = json.loads(Path(path).read_text())
    if "segments" in d:
        return JumpMap(tuple(TimeMap.from_json(s) for s in d["segments"]))
    return TimeMap.from_json(d["time_map"])


def retime_truth(truth: dict, audio_time) -> dict:
    """A truth file's content (a time map, or the segments of a jump rendition) with every audio time
    ``t`` replaced by ``audio_time(t)``: the same music played at another speed or later."""
    out = dict(truth)

    def moved(tm: dict) -> dict:
        return {**tm, "audio_s": [audio_time(t) for t in tm["audio_s"]]}

    if "segments" in truth:
        out["segments"] = [moved(s) for s in truth["segments"]]
    else:
        out["time_map"] = moved(truth["time_map"])
    return out


def tempo_curve(rng: np.random.Generator, duration_s: float, *, base_lo: float = 0.8,
                base_hi: float = 1.2, rubato: float = 0.12, lo: float = TEMPO_RATIO_MIN,
                hi: float = TEMPO_RATIO_MAX) -> np.ndarray:
    """Tempo ratio sampled at GRID_HZ over ``duration_s`` audio seconds.

    A base tempo plus rubato: three slow sinusoids (periods 3-20 s, random phases)
    in log-tempo, so that phrases speed up and relax smoothly, clipped to [lo, hi].
    """
    t = np.arange(int(np.ceil(duration_s * GRID_HZ)) + 1) / GRID_HZ
    log_r = np.full_like(t, np.log(rng.uniform(base_lo, base_hi)))
    for _ in range(3):
        period_s = rng.uniform(3.0, 20.0)
        log_r += rubato / 3 * rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * t / period_s + rng.uniform(0, 2 * np.pi))
    return np.clip(np.exp(log_r), lo, hi)


_SNAP_S = 1e-4  # closer map points than this are one point (the truth files keep a few decimals)


def hold_spans(time_map: TimeMap, spans) -> TimeMap:
    """``time_map`` with each MIDI span ``(start_s, end_s, factor)`` played ``factor`` times as long.

    A player's fermata: the held chord takes longer in the audio, the music before and
    after it keeps its tempo curve (only shifted later). Spans outside the map change nothing.
    """
    t, tau = time_map.audio_s, time_map.midi_s
    cuts = np.array([x for s, e, _ in spans for x in (s, e) if tau[0] + _SNAP_S < x < tau[-1] - _SNAP_S])
    if len(cuts):  # a point of the map a hair from a span's end would round onto it when saved: the end replaces it
        apart = np.abs(tau[:, None] - cuts[None, :]).min(axis=1) > _SNAP_S
        apart[[0, -1]] = True
        tau = np.union1d(tau[apart], cuts)  # the spans' ends become points of the map: exact stretches
    t = np.interp(tau, time_map.midi_s, time_map.audio_s)
    extra = np.zeros_like(t)
    for start_s, end_s, factor in spans:
        if factor <= 0:
            raise ValueError("a hold's factor must be positive")
        inside = np.interp(np.clip(tau, start_s, end_s), tau, t) - np.interp(start_s, tau, t)
        extra += (factor - 1.0) * inside
    return TimeMap(t + extra, tau)


def warp_from_ratio(ratio: np.ndarray, start_midi_s: float, end_midi_s: float | None = None) -> TimeMap:
    """Integrate a tempo ratio (at GRID_HZ) from ``start_midi_s``; stop at ``end_midi_s``."""
    if (ratio <= 0).any():
        raise ValueError("tempo ratios must be positive")
    t = np.arange(len(ratio)) / GRID_HZ
    tau = start_midi_s + np.concatenate([[0.0], np.cumsum((ratio[1:] + ratio[:-1]) / 2) / GRID_HZ])
    if end_midi_s is not None and tau[-1] > end_midi_s:
        n = int(np.searchsorted(tau, end_midi_s))  # first grid point at/after the end
        t_end = np.interp(end_midi_s, tau[n - 1:n + 1], t[n - 1:n + 1])
        t, tau = np.append(t[:n], t_end), np.append(tau[:n], end_midi_s)
        keep = np.concatenate([np.diff(t) > 1e-9, [True]])
        t, tau = t[keep], tau[keep]
    return TimeMap(t, tau)
