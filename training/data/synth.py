"""Rendering notes to audio with the real FluidSynth (through pyfluidsynth).

We drive the synthesizer from the note list of a :class:`follower.midi.Score`,
not from the MIDI file: the renderer and the piano roll then read the very same
notes (after tempo scaling, transposition and velocity changes), so the pair is
aligned by construction, to the sample.

One :class:`Renderer` per worker process keeps its ``fluidsynth.Synth`` and every
soundfont it has loaded: loading a General MIDI soundfont takes seconds, far longer
than rendering a short piece (figures in docs/benchmarks.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from follower.errors import ConfigError, MissingToolError

SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")
TRAIN_SOUNDFONTS = ("FluidR3_GM.sf2", "MuseScore_General_Lite.sf3")
# every General MIDI soundfont the Debian archive ships with concert-plausible timbres
# (docs/dataset.md); the dataset v2 trains on all of them. Left out: TimGM6mb (held out for
# test), OPL-3_FM_128M (FM-chip imitations, no acoustic instrument), FluidR3_GM's GS variant
# and MuseScore's lossless one (the same samples as two listed here).
V2_TRAIN_SOUNDFONTS = ("FluidR3_GM.sf2", "MuseScore_General_Lite.sf3", "MuseScore_General_Full.sf3",
                       "FluidR3Mono_GM.sf3", "sf_GMbank.sf2")
TEST_SOUNDFONT = "TimGM6mb.sf2"  # held out of training: independent samples
DRUM_CHANNEL = 9
TAIL_S = 1.0       # release and reverb after the last note-off, kept in the render
FLUSH_S = 0.5      # silence rendered and dropped between renders to empty the reverb

# General MIDI programs by family, each with the pitch range it plays well, so that a
# bass line gets a bassoon or cello rather than a piccolo.
PROGRAMS = {
    "piano": {0: (21, 108), 1: (21, 108), 2: (21, 108)},
    "grand_piano": {0: (21, 108), 1: (21, 108)},   # piano literature: acoustic grands only
    "strings": {40: (55, 100), 41: (48, 88), 42: (36, 76), 43: (28, 60), 48: (28, 96), 49: (28, 96)},
    "winds": {64: (56, 88), 65: (49, 81), 66: (44, 76), 67: (36, 69), 68: (58, 91),
              69: (52, 81), 70: (34, 75), 71: (50, 94), 73: (60, 96)},
    "brass": {56: (52, 84), 57: (40, 72), 58: (28, 58), 60: (41, 77), 61: (36, 84)},
    "organ": {16: (24, 96), 19: (24, 96), 20: (36, 96)},
}
DEFAULT_FAMILY_WEIGHTS = (("strings", 0.3), ("winds", 0.3), ("piano", 0.2), ("brass", 0.1), ("organ", 0.1))
PIANO_FAMILIES = (("grand_piano", 1.0),)
STRING_FAMILIES = (("strings", 1.0),)  # string quartets: every track a bowed string of its range
SUSTAIN_CC = 64


def find_soundfont(name_or_path) -> str:
    """Path of a soundfont given by path or by file name in the system folders."""
    path = os.fspath(name_or_path)
    if os.path.isfile(path):
        return os.path.abspath(path)
    for folder in SOUNDFONT_DIRS:
        candidate = os.path.join(folder, os.path.basename(path))
        if os.path.isfile(candidate):
            return candidate
    raise MissingToolError(
        f"soundfont {path} not found (looked in {', '.join(SOUNDFONT_DIRS)}); install it "
        "(Debian: apt-get install fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small) "
        "or pass its path")


def require_fluidsynth():
    """The pyfluidsynth module, or MissingToolError saying how to install FluidSynth."""
    try:
        import fluidsynth
    except (ImportError, OSError) as e:  # pyfluidsynth raises ImportError when libfluidsynth is absent
        raise MissingToolError(
            f"FluidSynth is not available ({e}); install the library (Debian: apt-get install "
            "fluidsynth; macOS: brew install fluid-synth) and `pip install pyfluidsynth`") from e
    if not hasattr(fluidsynth, "Synth"):
        raise MissingToolError("the installed `fluidsynth` module is not pyfluidsynth; "
                               "pip uninstall fluidsynth && pip install pyfluidsynth")
    return fluidsynth


def draw_programs(notes: np.ndarray, families, rng: np.random.Generator, *, one_instrument: bool = False) -> dict:
    """``{track: GM program}``: a family per track by weight, then a program that suits its range.

    ``one_instrument``: every track gets the first track's program (a piano piece written
    on two staves is one piano, not two different ones)."""
    names = [f for f, _ in families]
    weights = np.array([w for _, w in families], dtype=np.float64)
    unknown = [f for f in names if f not in PROGRAMS]
    if unknown or weights.sum() <= 0:
        raise ConfigError(f"instrument families {names} with weights {weights.tolist()}; "
                          f"expected names from {sorted(PROGRAMS)} with positive total weight")
    out = {}
    for track in np.unique(notes["track"]):
        pitches = notes["pitch"][notes["track"] == track]
        median = float(np.median(pitches))
        family = names[rng.choice(len(names), p=weights / weights.sum())]
        fitting = [p for p, (lo, hi) in PROGRAMS[family].items() if lo <= median <= hi]
        out[int(track)] = int(rng.choice(fitting or list(PROGRAMS[family])))
        if one_instrument:
            return {int(t): out[int(track)] for t in np.unique(notes["track"])}
    return out


@dataclass(frozen=True)
class RenderSettings:
    sample_rate_hz: int = 22050
    gain: float = 0.2          # FluidSynth master gain; low enough that 15 voices do not clip
    tail_s: float = TAIL_S


class Renderer:
    """A FluidSynth instance with its soundfonts loaded once; renders note arrays to mono audio."""

    def __init__(self, settings: RenderSettings = RenderSettings()):
        fluidsynth = require_fluidsynth()
        self.settings = settings
        self._synth = fluidsynth.Synth(gain=settings.gain, samplerate=float(settings.sample_rate_hz))
        self._synth.setting("synth.polyphony", 512)
        self._sfids: dict = {}

    def _sfid(self, soundfont: str) -> int:
        path = find_soundfont(soundfont)
        if path not in self._sfids:
            sfid = self._synth.sfload(path)
            if sfid < 0:
                raise MissingToolError(f"FluidSynth could not load soundfont {path}; "
                                       "check the file (sf3 needs FluidSynth built with libsndfile)")
            self._sfids[path] = sfid
        return self._sfids[path]

    def close(self):
        self._synth.delete()

    def render(self, notes: np.ndarray, programs: dict, soundfont: str, pedal=None) -> np.ndarray:
        """Float32 mono audio of ``notes`` (NOTE_DTYPE, seconds) with ``{track: program}``.

        Tracks go to channels 0..15 skipping the drum channel (more than 15 tracks
        share channels). Drum notes are not played: the roll leaves them out too.
        ``pedal``: optional (k, 2) array of (seconds, CC64 value): the sustain pedal, sent
        to every channel (a piano has one pedal, whichever track the file stored it in).
        """
        sr = self.settings.sample_rate_hz
        synth, sfid = self._synth, self._sfid(soundfont)
        notes = notes[~notes["is_drum"]]
        tracks = sorted({int(t) for t in notes["track"]})
        melodic = [c for c in range(16) if c != DRUM_CHANNEL]
        channel_of = {t: melodic[i % len(melodic)] for i, t in enumerate(tracks)}
        for t in tracks:
            synth.program_select(channel_of[t], sfid, 0, int(programs.get(t, 0)))
        chan = np.array([channel_of[int(t)] for t in notes["track"]], dtype=np.int64)
        on = np.round(notes["start_s"] * sr).astype(np.int64)
        off = np.maximum(np.round(notes["end_s"] * sr).astype(np.int64), on + 1)
        # (sample, kind, ...): note-offs (kind 0), then pedal changes (kind 1), then
        # note-ons (kind 2) at the same sample, so a repeated note is released and struck again
        events = list(zip(np.concatenate([off, on]).tolist(),
                          [0] * len(off) + [2] * len(on),
                          np.concatenate([chan, chan]).tolist(),
                          np.concatenate([notes["pitch"], notes["pitch"]]).tolist(),
                          np.concatenate([notes["velocity"], notes["velocity"]]).tolist()))
        if pedal is not None and len(pedal):
            pedal = np.asarray(pedal, dtype=np.float64)
            last = int(off.max())  # a pedal change after the last note-off changes nothing audible
            for t_s, value in pedal:
                sample = min(int(round(max(float(t_s), 0.0) * sr)), last)
                for ch in sorted(set(channel_of.values())):
                    events.append((sample, 1, ch, SUSTAIN_CC, int(np.clip(value, 0, 127))))
        events.sort()
        total = int(off.max()) + int(self.settings.tail_s * sr)
        out = np.zeros(total, dtype=np.float32)
        pos = 0
        for sample, kind, ch, pitch, vel in events:
            if sample > pos:
                out[pos:sample] = self._samples(sample - pos)
                pos = sample
            if kind == 2:
                synth.noteon(ch, pitch, int(np.clip(vel, 1, 127)))
            elif kind == 1:
                synth.cc(ch, pitch, vel)
            else:
                synth.noteoff(ch, pitch)
        if total > pos:
            out[pos:] = self._samples(total - pos)
        for ch in range(16):
            synth.cc(ch, SUSTAIN_CC, 0)  # a pedal left down must not hold the next render's notes
            synth.all_sounds_off(ch)
        self._samples(int(FLUSH_S * sr))  # reverb and chorus buffers must not leak into the next render
        return out

    def _samples(self, n: int) -> np.ndarray:
        stereo = self._synth.get_samples(n).astype(np.float32).reshape(-1, 2)
        return stereo.mean(axis=1) / 32768.0
