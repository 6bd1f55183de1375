"""Bars and beats of a MIDI file, from its time-signature events.

A beat is the time signature's denominator note (a quarter in 4/4 and 3/4, an
eighth in 6/8), bars are counted from the file's start (tick 0) as the time
signatures lay them out, bar 1 beat 1 first. A file without any time signature
has no bars: its beats are quarter notes, numbered from 1. Nothing here guesses
an upbeat: a score whose first bar is a pickup but is written as a full bar is
counted as written.

Positions are in quarter-note beats from the start (``Score.seconds_to_beats``), so
that a row's musical position does not depend on the tempo map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import BadMidiError


@dataclass(frozen=True)
class TimeSignature:
    start_quarters: float  # where it takes effect, quarter notes from the start
    numerator: int
    denominator: int

    @property
    def beat_quarters(self) -> float:
        return 4.0 / self.denominator


@dataclass(frozen=True)
class BeatGrid:
    """One entry per beat: its position in quarter notes, bar (0 when unknown) and beat in bar."""

    quarters: np.ndarray   # (n,) float64
    bar: np.ndarray        # (n,) int64, 1-based; 0 for every beat when the file has no time signature
    beat: np.ndarray       # (n,) int64, 1-based beat in its bar (or from the start without bars)
    has_bars: bool


def time_signatures(path) -> list[TimeSignature]:
    """The file's time signatures in order, duplicates (one per track) merged."""
    import mido

    path = os.fspath(path)
    try:
        mid = mido.MidiFile(path, clip=True)
    except Exception as e:  # noqa: BLE001 - load_midi has already explained unreadable files
        raise BadMidiError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})") from e
    tpb = float(mid.ticks_per_beat)
    found: dict = {}
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                found[tick] = (int(msg.numerator), int(msg.denominator))  # later tracks restate the same
    out: list[TimeSignature] = []
    for tick in sorted(found):
        num, den = found[tick]
        if num <= 0 or den <= 0:
            continue
        if out and (out[-1].numerator, out[-1].denominator) == (num, den):
            continue
        out.append(TimeSignature(tick / tpb, num, den))
    return out


def beat_grid(signatures: list[TimeSignature], end_quarters: float) -> BeatGrid:
    """Every beat from the start up to (not including) ``end_quarters``, the end of the music."""
    if not signatures:
        q = np.arange(0.0, end_quarters - 1e-9, 1.0)
        return BeatGrid(q, np.zeros(len(q), np.int64), np.arange(1, len(q) + 1), False)
    if signatures[0].start_quarters > 0:  # the spec's default before the first event: 4/4
        signatures = [TimeSignature(0.0, 4, 4)] + list(signatures)
    quarters, bars, beats = [], [], []
    bar, pos = 0, 0.0
    for k, ts in enumerate(signatures):
        until = signatures[k + 1].start_quarters if k + 1 < len(signatures) else np.inf
        # a change in the middle of a bar starts a new bar there (as notation programs write it)
        while pos < until - 1e-9 and pos < end_quarters - 1e-9:
            bar += 1
            for b in range(ts.numerator):
                q = pos + b * ts.beat_quarters
                if q >= until - 1e-9 or q >= end_quarters - 1e-9:
                    break
                quarters.append(q)
                bars.append(bar)
                beats.append(b + 1)
            pos += ts.numerator * ts.beat_quarters
        if np.isfinite(until):
            pos = until
    return BeatGrid(np.array(quarters), np.array(bars, np.int64), np.array(beats, np.int64), True)
