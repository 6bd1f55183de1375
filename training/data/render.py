"""One render of one piece: the unit of work of a dataset build, cached on disk.

A :class:`RenderSpec` fixes everything random about a render (its seed draws the
instruments, velocities, level and, for training, the transposition), so that a
rerun produces the same file name and finds it cached. A worker process renders
all pending renders of one piece, loading the MIDI once and keeping one
FluidSynth (with its soundfonts) for its whole life.

Each cache file ``cache/<name>.npz`` holds the spectrogram (float16, follower.features),
the roll of every channel (uint8, follower.snippets.score_roll) and a JSON ``meta``;
it is written to a temporary name and moved into place with ``os.replace``, so an
interrupted build never leaves a half-written render behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from follower.errors import BadMidiError, MissingToolError
from follower.features import FeatureConfig, spectrogram
from follower.snippets import ROLL_CHANNELS, SnippetConfig, score_roll

from ..augment.room import RoomConfig, apply_room
from .corpus import Piece, hash_unit, load_piece
from .pedal import crop_pedal, sustain_events
from .synth import Renderer, RenderSettings, draw_programs

CACHE_VERSION = 1  # bump when rendering changes, so old cache files are not reused
PITCH_LO, PITCH_HI = 21, 108
STORED_ROLL = SnippetConfig(roll_channels=ROLL_CHANNELS)  # every channel; load_split picks


@dataclass(frozen=True)
class Augmentation:
    """Random variation of one render; the symbolic part (transposition) changes the roll too."""

    transpose_semitones: int = 0                 # uniform in [-n, n], kept inside 21..108
    track_velocity_scale: tuple = (0.6, 1.15)    # one factor per track (voices balance differently)
    note_velocity_jitter: int = 8                # +- per note
    level_db: tuple = (-12.0, 0.0)               # peak level of the render
    room: RoomConfig = RoomConfig()              # room, microphone, noise, level drift (off by default)


@dataclass(frozen=True)
class RenderSpec:
    render_id: str         # "<piece_id>@<split>:<k>"
    piece_id: str
    split: str
    soundfont: str
    tempo_ratio: float     # > 1 = faster; audio frame a <-> roll frame a * tempo_ratio
    seed: int
    augmentation: Augmentation
    families: tuple
    excerpt_s: float = 0.0        # > 0: render one window of this many written seconds (long pieces)
    one_instrument: bool = False  # every track on one instrument (piano music)
    pedal: bool = False           # send the file's sustain pedal (CC 64) to the synthesizer

    def key(self, piece: Piece, features: FeatureConfig, settings: RenderSettings) -> str:
        blob = json.dumps([CACHE_VERSION, dataclasses.asdict(self), piece.source, piece.step_s,
                           features.to_dict(), dataclasses.asdict(settings)], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def cache_name(self, piece: Piece, features: FeatureConfig, settings: RenderSettings) -> str:
        stem = self.render_id.replace("/", "__").replace("@", ".").replace(":", ".")
        return f"{stem}.{self.key(piece, features, settings)}.npz"


def transposed(notes: np.ndarray, semitones: int) -> np.ndarray:
    out = notes.copy()
    pitched = ~out["is_drum"]
    out["pitch"][pitched] += semitones
    return out


def draw_transposition(notes: np.ndarray, max_semitones: int, rng) -> int:
    """Uniform in [-max, max], narrowed so that every pitched note stays on the 88 keys."""
    p = notes["pitch"][~notes["is_drum"]]
    lo, hi = max(-max_semitones, PITCH_LO - int(p.min())), min(max_semitones, PITCH_HI - int(p.max()))
    return int(rng.integers(lo, hi + 1)) if lo <= hi else 0


def performed(notes: np.ndarray, spec: RenderSpec, rng) -> np.ndarray:
    """The notes as played: tempo scaled, velocities varied per track and per note."""
    aug = spec.augmentation
    out = notes.copy()
    out["start_s"] /= spec.tempo_ratio
    out["end_s"] /= spec.tempo_ratio
    vel = out["velocity"].astype(np.float64)
    for track in np.unique(out["track"]):
        vel[out["track"] == track] *= rng.uniform(*aug.track_velocity_scale)
    vel += rng.integers(-aug.note_velocity_jitter, aug.note_velocity_jitter + 1, size=len(vel))
    out["velocity"] = np.clip(np.round(vel), 1, 127)
    return out


def excerpt_window(score, spec: RenderSpec) -> tuple[float, float]:
    """[start, end) seconds of the written timeline that the render plays.

    The whole piece unless it is longer than ``spec.excerpt_s``; then a window drawn
    from the render's seed alone (so the three test renders of a piece, which share
    it, play the same notes), starting at a note onset.
    """
    duration = float(score.duration_s)
    if not spec.excerpt_s or duration <= spec.excerpt_s:
        return 0.0, duration + 1.0
    start = np.random.default_rng([spec.seed, 7]).uniform(0.0, duration - spec.excerpt_s)
    onsets = np.sort(score.notes["start_s"])
    start = float(onsets[min(np.searchsorted(onsets, start), len(onsets) - 1)])
    return start, start + float(spec.excerpt_s)


def cropped(score, start_s: float, end_s: float):
    """The notes that start inside [start_s, end_s), shifted to start at 0."""
    notes = score.notes[(score.notes["start_s"] >= start_s) & (score.notes["start_s"] < end_s)].copy()
    notes["start_s"] -= start_s
    notes["end_s"] -= start_s
    return dataclasses.replace(score, notes=notes)


def render_one(renderer: Renderer, score, spec: RenderSpec, features: FeatureConfig) -> dict:
    """Spectrogram, roll and metadata of one render (nothing written)."""
    rng = np.random.default_rng([spec.seed, int(hash_unit(spec.render_id) * 2 ** 32)])
    full_duration = float(score.duration_s)
    start_s, end_s = excerpt_window(score, spec)
    pedal = None
    if spec.pedal and os.path.isfile(score.path):  # MIDI files only: .mat rolls have no pedal
        pedal = crop_pedal(sustain_events(score.path, score), start_s, end_s)
    if start_s > 0 or end_s <= score.duration_s:
        score = cropped(score, start_s, end_s)
    shift = draw_transposition(score.notes, spec.augmentation.transpose_semitones, rng)
    written = dataclasses.replace(score, notes=transposed(score.notes, shift))
    programs = draw_programs(written.pitched, spec.families, rng, one_instrument=spec.one_instrument)
    if pedal is not None:
        pedal = pedal.copy()
        pedal[:, 0] /= spec.tempo_ratio
    audio = renderer.render(performed(written.notes, spec, rng), programs, spec.soundfont, pedal=pedal)
    acoustics = {}
    if spec.augmentation.room.active:  # own generator: the draws above stay as without it
        audio, acoustics = apply_room(audio, renderer.settings.sample_rate_hz, spec.augmentation.room,
                                      np.random.default_rng([spec.seed, 11]))
    peak = float(np.abs(audio).max())
    if peak > 0:
        audio *= 10 ** (rng.uniform(*spec.augmentation.level_db) / 20) * 0.9 / peak
    spec_frames = spectrogram(audio, renderer.settings.sample_rate_hz, features)
    roll = score_roll(written, STORED_ROLL, features.frame_rate_hz)
    meta = {"render_id": spec.render_id, "piece_id": spec.piece_id, "split": spec.split,
            "soundfont": os.path.basename(spec.soundfont), "tempo_ratio": spec.tempo_ratio,
            "transpose": shift, "programs": {str(k): v for k, v in programs.items()},
            "duration_s": float(full_duration), "excerpt_s": [round(start_s, 3), round(min(end_s, full_duration), 3)],
            "pedal_events": 0 if pedal is None else int(len(pedal)), "acoustics": acoustics,
            "audio_s": len(audio) / renderer.settings.sample_rate_hz,
            "audio_frames": len(spec_frames), "roll_frames": len(roll)}
    return {"spectrogram": spec_frames.astype(np.float16), "roll": roll, "meta": meta}


def save_atomic(path: str, arrays: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}.npz"
    meta = json.dumps(arrays["meta"])
    np.savez(tmp, spectrogram=arrays["spectrogram"], roll=arrays["roll"], meta=np.array(meta))
    os.replace(tmp, path)


def read_cached(path: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {"spectrogram": z["spectrogram"], "roll": z["roll"], "meta": json.loads(str(z["meta"]))}


def read_meta(path: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


# --- worker side: one Renderer per process --------------------------------------------

_RENDERER: Renderer | None = None


def worker_renderer(settings: RenderSettings) -> Renderer:
    global _RENDERER
    if _RENDERER is None or _RENDERER.settings != settings:
        _RENDERER = Renderer(settings)
    return _RENDERER


def render_piece(task) -> dict:
    """Render the pending renders of one piece; a bad piece is reported (and its
    finished renders kept), not raised.

    MissingToolError (no FluidSynth, unloadable soundfont) is raised: it concerns every
    piece, so the build stops, with everything already rendered kept.
    """
    piece, jobs, features, settings, max_piece_s = task
    done, audio_s = 0, 0.0

    def result(error=None):
        return {"piece_id": piece.piece_id, "source": piece.source, "error": error, "rendered": done,
                "audio_s": audio_s}

    try:
        score = load_piece(piece)
        if len(score.pitched) == 0:
            raise BadMidiError(f"{piece.source}: no pitched notes")
        if score.duration_s > max_piece_s:
            raise BadMidiError(f"{piece.source}: lasts {score.duration_s / 60:.0f} min, longer than "
                               f"max_piece_s={max_piece_s:.0f} s; raise it to include this piece")
        renderer = worker_renderer(settings)
        for spec, path in jobs:
            out = render_one(renderer, score, spec, features)
            save_atomic(path, out)
            done += 1
            audio_s += out["meta"]["audio_s"]
    except (MissingToolError, KeyboardInterrupt):
        raise
    except BadMidiError as e:
        return result(str(e))
    except Exception as e:  # noqa: BLE001 - one odd file must not abort a corpus build
        return result(f"{piece.source}: could not be rendered ({type(e).__name__}: {e})")
    return result()
