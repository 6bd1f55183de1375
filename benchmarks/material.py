"""Test material with ground truth: synthetic renditions of held-out pieces, and Bach10.

``python -m benchmarks.material`` writes, under ``data/bench/material/``:

* ``chorale_NN_<id>.flac`` -- 10 excerpts of test-split chorales (splits.csv, tune
  families never in training), 30-45 s or up to the chorale's end, 44.1 kHz mono;
* ``piano_NN_<id>.flac`` -- 6 excerpts of 45 s of piano-midi.de pieces;
* ``*.truth.json`` next to each -- the audio s -> MIDI s time map and render settings;
* ``jumps_NN_<id>.flac`` -- 6 chorale and 4 piano renditions that jump: a repeat
  taken (back to where the excerpt began), a skip back of 8-16 bars (16-32 s of the
  MIDI), or a restart a few bars back after a 2-4 s pause; the tempo drifts over
  0.5-1.6x of the written tempo within each segment; their truth is a
  :class:`benchmarks.warp.JumpMap` (kind ``jumps``);
* ``bach10_NN-Name.truth.json`` -- the ten Bach10 recordings (audio read in place);
* ``manifest.json`` -- every item: audio, truth, corpus, piece id, tune family.

``python -m benchmarks.material --set tuning`` writes, under ``data/bench/tuning/``,
12 excerpts of *validation-split* chorales rendered the same way (other seed, starts
anywhere in the first 40 %, base tempo 0.65-1.15x): the material on which the
follower's thresholds are chosen, so that the test material above only measures.
``--tempo 0.35,0.5`` plays them far from the written tempo instead (players far slower
than a MIDI file's tempo are common: a file's tempo is often a default, not the music's).
``--fermatas`` holds every fermata of their scores 1.5-3 times as long as written, as players
do and the MIDI files do not (``--from-start --fermatas`` plays them as Bach10's players do).
``--microphone`` hears them through a small microphone that loses the bass (a phone, a laptop).

Renditions: the held-out soundfont TimGM6mb with instruments drawn per excerpt,
a smooth tempo curve (0.75-1.3x written tempo with rubato), a synthetic room
(exponentially decaying noise impulse response, RT60 0.3-1.2 s) and pink noise at
15-30 dB SNR; every excerpt starts mid-piece. Everything is seeded: the same
command writes the same files. Existing files are kept (delete the folder or pass
--force to re-render).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from follower.midi import load_midi

from . import paths
from .bach10 import BACH10_PIECES, bach10_truth
from .render import excerpt_events, put_in_room, read_events, synthesize
from .warp import TEMPO_RATIO_MAX, TEMPO_RATIO_MIN, JumpMap, TimeMap, hold_spans, tempo_curve, warp_from_ratio

SEED = 20181105  # TISMIR 2018
SAMPLE_RATE_HZ = 44100
N_CHORALES = 10
N_PIANO = 6
CHORALE_MIN_DURATION_S = 30.0  # at the written 120 bpm; shorter chorales leave < 30 s excerpts
PIANO_DURATION_RANGE_S = (90.0, 600.0)
# Base tempo ratio before rubato. The chorale MIDIs are written at a brisk 120 bpm;
# the Bach10 players take them at 0.78-0.91x, so chorale renditions lean slower.
CHORALE_BASE_TEMPO = (0.75, 1.05)
PIANO_BASE_TEMPO = (0.8, 1.2)
# How much longer than written a player holds a fermata (performance practice in chorales: about one
# and a half to three times the note; drawn per fermata, never fitted to the Bach10 recordings)
FERMATA_HOLD = (1.5, 3.0)

# Ensembles for the four chorale voices (GM programs, soprano..bass), all outside
# the training's instrument families (training/synth.py PROGRAMS: piano 0-2,
# strings 40-43/48/49, winds 64-71/73, brass 56-58/60/61, organ 16/19/20), so that
# both the soundfont and the instruments are unseen.
CHORALE_ENSEMBLES = {
    "choir (aahs, oohs)": [52, 52, 53, 53],
    "accordion": [21, 21, 21, 21],
    "recorder consort": [74, 74, 74, 74],
    "harpsichord": [6, 6, 6, 6],
    "synth strings": [50, 50, 51, 51],
}
# piano-midi.de pieces keep a piano (the soundfont is the held-out part here);
# the corpus itself is not in the default training set at all.
PIANO_PROGRAMS = {"acoustic grand": 0, "bright acoustic": 1}


@dataclass(frozen=True)
class Item:
    name: str
    kind: str            # "chorale", "piano", "bach10" (tuning material also "outside")
    audio: str           # path
    truth: str           # path of the truth JSON
    corpus: str          # "chorales" or "piano" ("outside": in no index)
    piece: str           # id as the follower's index names it: MIDI path relative to the corpus folder, no extension
    midi: str            # the corpus MIDI the truth refers to
    tune_family: str     # chorales: splits.csv tune family; else the piece id
    duration_s: float


def piece_id(midi_path: Path, corpus_root: Path) -> str:
    return str(Path(midi_path).relative_to(corpus_root).with_suffix(""))


def chorale_selection(split: str = "test", n: int = N_CHORALES, seed: int = SEED) -> list[tuple[Path, str]]:
    """``n`` chorales of >= 30 s from ``split``, drawn with ``seed``: (MIDI path, tune family)."""
    root = paths.chorale_dir()
    rows = [r for r in csv.DictReader(open(root / "splits.csv")) if r["split"] == split]
    long_enough = [r for r in rows if load_midi(root / r["file"]).duration_s >= CHORALE_MIN_DURATION_S]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(long_enough), size=n, replace=False)
    return [(root / long_enough[i]["file"], long_enough[i]["tune_family"]) for i in sorted(picked)]


def piano_selection() -> list[Path]:
    """6 test-split piano-midi.de pieces of 90-600 s, drawn with SEED.

    The split is the training's own (training.data.corpus.midi_corpus: a hash of the
    piece), so these pieces stay out of training even if piano-midi.de is added to it.
    """
    from training.data.corpus import midi_corpus

    test = sorted(Path(p.source) for p in midi_corpus(paths.piano_dir()) if p.split == "test")
    fitting = [f for f in test if PIANO_DURATION_RANGE_S[0] <= load_midi(f).duration_s <= PIANO_DURATION_RANGE_S[1]]
    rng = np.random.default_rng(SEED)
    return [fitting[i] for i in sorted(rng.choice(len(fitting), size=N_PIANO, replace=False))]


def fermata_spans(midi: Path, rng: np.random.Generator, hold: tuple[float, float] = FERMATA_HOLD) -> list:
    """(start_s, end_s, factor) of every fermata of a corpus chorale, each held ``hold`` times as long.

    The chorale MIDIs do not keep their fermatas; the music21 corpus they were written
    from marks them on the soprano's notes (``bach_bwv10.7`` is ``bach/bwv10.7`` there).
    Offsets are in quarter notes at the MIDI's one tempo.
    """
    import music21

    score = music21.corpus.parse(Path(midi).stem.replace("_", "/", 1))
    s_per_quarter = float(load_midi(midi).tempo_us_per_beat[0]) / 1e6
    spans = []
    for note in score.parts[0].flatten().notes:
        if any(isinstance(e, music21.expressions.Fermata) for e in note.expressions):
            start_s = float(note.offset) * s_per_quarter
            spans.append((start_s, start_s + float(note.quarterLength) * s_per_quarter, float(rng.uniform(*hold))))
    return spans


# small and built-in microphones (a phone or a laptop on the music stand, a clip-on) roll off the bass
# below about 100-250 Hz: the fundamentals of the low notes come out weaker than an instrument sounds them
MIC_HIGHPASS_HZ = (100.0, 250.0)
MIC_EQ_DB = 6.0


def through_microphone(audio: np.ndarray, rng: np.random.Generator, sample_rate_hz: int) -> tuple[np.ndarray, dict]:
    """``audio`` as a small microphone hears it: a second-order high-pass at a cutoff drawn from
    ``MIC_HIGHPASS_HZ`` and a smooth random EQ within +-``MIC_EQ_DB`` (the training renders' microphone
    model, ``training.augment.room.mic_curve_db``, with a higher cutoff); the level kept."""
    from training.augment.room import mic_curve_db

    cutoff = float(rng.uniform(*MIC_HIGHPASS_HZ))
    x = np.asarray(audio, np.float64)
    spec = np.fft.rfft(x)
    spec *= 10.0 ** (mic_curve_db(rng, np.fft.rfftfreq(len(x), 1.0 / sample_rate_hz), MIC_EQ_DB, cutoff) / 20.0)
    y = np.fft.irfft(spec, len(x))
    y *= np.sqrt(np.mean(x ** 2) / max(float(np.mean(y ** 2)), 1e-20))
    return y.astype(np.float32), {"mic_highpass_hz": round(cutoff, 1)}


def render_item(midi: Path, out_audio: Path, out_truth: Path, rng: np.random.Generator, *,
                programs: list[int], instruments: str, start_frac: tuple[float, float],
                length_s: tuple[float, float], base_tempo: tuple[float, float],
                tempo_clip: tuple[float, float] = (TEMPO_RATIO_MIN, TEMPO_RATIO_MAX),
                fermatas: bool = False, microphone: bool = False) -> float:
    """Render one mid-piece excerpt; returns its duration in audio seconds.

    The tempo curve is ``base_tempo`` with rubato, clipped to ``tempo_clip`` (ratios to the
    written tempo). ``fermatas``: a chorale's fermatas are held (:func:`fermata_spans`), the
    tempo curve going on after each. ``microphone``: heard through a small microphone
    (:func:`through_microphone`)."""
    import soundfile as sf

    events, n_voices = read_events(midi)
    midi_end_s = max(e.time_s for e in events)
    start_s = rng.uniform(*start_frac) * midi_end_s
    ratio = tempo_curve(rng, rng.uniform(*length_s), base_lo=base_tempo[0], base_hi=base_tempo[1],
                        lo=tempo_clip[0], hi=tempo_clip[1])
    time_map = warp_from_ratio(ratio, start_s, midi_end_s)
    holds = fermata_spans(midi, rng) if fermatas else []
    time_map = hold_spans(time_map, holds)
    duration_s = float(time_map.audio_s[-1])
    dry = synthesize(excerpt_events(events, time_map), [programs[v % len(programs)] for v in range(n_voices)],
                     duration_s=duration_s, sample_rate_hz=SAMPLE_RATE_HZ, soundfont=paths.HELD_OUT_SOUNDFONT,
                     velocity_gain=rng.uniform(0.7, 1.1), rng=rng)
    room = {"rt60_s": rng.uniform(0.3, 1.2), "direct_to_reverb_db": rng.uniform(0.0, 8.0),
            "snr_db": rng.uniform(15.0, 30.0)}
    audio = put_in_room(dry, rng, sample_rate_hz=SAMPLE_RATE_HZ, **room)
    mic = {}
    if microphone:
        audio, mic = through_microphone(audio, rng, SAMPLE_RATE_HZ)
    sf.write(out_audio, audio, SAMPLE_RATE_HZ)
    used = time_map.audio_to_midi(time_map.audio_s)
    slopes = np.diff(used) / np.diff(time_map.audio_s)
    time_map.save(out_truth, midi=str(midi), soundfont=str(paths.HELD_OUT_SOUNDFONT), instruments=instruments,
                  programs=programs, start_midi_s=start_s, tempo_ratio_min=float(slopes.min()),
                  tempo_ratio_max=float(slopes.max()), fermata_holds=holds, **room, **mic)
    return duration_s


JUMP_SEED = 1602
N_JUMP_CHORALES = 6
N_JUMP_PIANO = 4
JUMP_TEMPO = (0.5, 1.6)          # expressive tempo range of the jump renditions
JUMP_KINDS = ("repeat", "skip back", "restart")


def _segment(rng, start_s: float, length_s: float, midi_end_s: float, offset_s: float) -> TimeMap:
    """One segment's time map from ``start_s`` of the MIDI, moved to audio time ``offset_s``."""
    ratio = tempo_curve(rng, length_s, base_lo=0.6, base_hi=1.3, rubato=0.25, lo=JUMP_TEMPO[0], hi=JUMP_TEMPO[1])
    tm = warp_from_ratio(ratio, start_s, midi_end_s)
    return TimeMap(tm.audio_s + offset_s, tm.midi_s)


def render_jump_item(midi: Path, out_audio: Path, out_truth: Path, rng: np.random.Generator, *,
                     programs: list[int], instruments: str) -> float:
    """A rendition in two segments with a jump (and, for a restart, a pause) between them."""
    import soundfile as sf

    from .render import TimedEvent

    events, n_voices = read_events(midi)
    end = max(e.time_s for e in events)
    kind = JUMP_KINDS[rng.integers(len(JUMP_KINDS))]
    start = rng.uniform(0.15, 0.45) * end
    first = _segment(rng, start, rng.uniform(12.0, 18.0), end, 0.0)
    reached = float(first.midi_s[-1])
    pause_s = rng.uniform(2.0, 4.0) if kind == "restart" else 0.0
    back_s = {"repeat": reached - start, "skip back": rng.uniform(16.0, 32.0), "restart": rng.uniform(4.0, 8.0)}[kind]
    second = _segment(rng, max(reached - back_s, 0.0), rng.uniform(15.0, 20.0), end,
                      float(first.audio_s[-1]) + pause_s + 0.01)
    timed = []
    for seg in (first, second):
        local = TimeMap(seg.audio_s - seg.audio_s[0], seg.midi_s)
        timed += [TimedEvent(e.audio_s + float(seg.audio_s[0]), e.kind, e.voice, e.a, e.b)
                  for e in excerpt_events(events, local)]
    duration_s = float(second.audio_s[-1])
    dry = synthesize(timed, [programs[v % len(programs)] for v in range(n_voices)], duration_s=duration_s,
                     sample_rate_hz=SAMPLE_RATE_HZ, soundfont=paths.HELD_OUT_SOUNDFONT,
                     velocity_gain=rng.uniform(0.7, 1.1), rng=rng)
    room = {"rt60_s": rng.uniform(0.3, 1.2), "direct_to_reverb_db": rng.uniform(0.0, 8.0),
            "snr_db": rng.uniform(15.0, 30.0)}
    sf.write(out_audio, put_in_room(dry, rng, sample_rate_hz=SAMPLE_RATE_HZ, **room), SAMPLE_RATE_HZ)
    slopes = np.concatenate([np.diff(s.midi_s) / np.diff(s.audio_s) for s in (first, second)])
    JumpMap((first, second)).save(out_truth, midi=str(midi), soundfont=str(paths.HELD_OUT_SOUNDFONT),
                                  instruments=instruments, programs=programs, start_midi_s=start, jump=kind,
                                  jump_at_s=float(second.audio_s[0]), jump_to_midi_s=float(second.midi_s[0]),
                                  pause_s=pause_s, tempo_ratio_min=float(slopes.min()),
                                  tempo_ratio_max=float(slopes.max()), **room)
    return duration_s


def build_jumps(out_dir: Path, *, force: bool = False) -> list[Item]:
    """The jump renditions: test-split chorales and piano pieces not in the excerpts above."""
    from tqdm import tqdm

    import soundfile as sf

    taken = {m for m, _ in chorale_selection()}
    chorales = [c for c in chorale_selection("test", N_CHORALES + N_JUMP_CHORALES + 4, JUMP_SEED)
                if c[0] not in taken][:N_JUMP_CHORALES]
    taken_piano = set(piano_selection())
    from training.data.corpus import midi_corpus

    pianos = sorted(Path(p.source) for p in midi_corpus(paths.piano_dir()) if p.split == "test")
    pianos = [f for f in pianos if f not in taken_piano
              and PIANO_DURATION_RANGE_S[0] <= load_midi(f).duration_s <= PIANO_DURATION_RANGE_S[1]]
    pick = np.random.default_rng(JUMP_SEED).choice(len(pianos), size=N_JUMP_PIANO, replace=False)
    jobs = [(midi, family, "chorales") for midi, family in chorales] + [(pianos[i], None, "piano")
                                                                       for i in sorted(pick)]
    items = []
    for k, (midi, family, corpus) in enumerate(tqdm(jobs, desc="rendering jump material", unit="rendition")):
        rng = np.random.default_rng([JUMP_SEED, k])
        if corpus == "chorales":
            instruments = list(CHORALE_ENSEMBLES)[rng.integers(len(CHORALE_ENSEMBLES))]
            programs, root = CHORALE_ENSEMBLES[instruments], paths.chorale_dir()
        else:
            instruments = list(PIANO_PROGRAMS)[rng.integers(len(PIANO_PROGRAMS))]
            programs, root = [PIANO_PROGRAMS[instruments]], paths.piano_dir()
        name = f"jumps_{k:02d}_{midi.stem}"
        audio, truth = out_dir / f"{name}.flac", out_dir / f"{name}.truth.json"
        if force or not (audio.exists() and truth.exists()):
            render_jump_item(midi, audio, truth, rng, programs=programs, instruments=instruments)
        pid = piece_id(midi, root)
        items.append(Item(name, "jumps", str(audio), str(truth), corpus, pid, str(midi), family or pid,
                          float(sf.info(audio).duration)))
    return items


def build(out_dir: Path, *, force: bool = False) -> list[Item]:
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []  # (name, kind, corpus root, midi, tune family, render kwargs)
    for i, (midi, family) in enumerate(chorale_selection()):
        jobs.append((f"chorale_{i:02d}_{midi.stem}", "chorale", paths.chorale_dir(), midi, family,
                     dict(start_frac=(0.1, 0.4), length_s=(30.0, 45.0), base_tempo=CHORALE_BASE_TEMPO)))
    for i, midi in enumerate(piano_selection()):
        jobs.append((f"piano_{i:02d}_{midi.stem}", "piano", paths.piano_dir(), midi, None,
                     dict(start_frac=(0.1, 0.5), length_s=(45.0, 45.0), base_tempo=PIANO_BASE_TEMPO)))
    items = []
    for k, (name, kind, root, midi, family, kwargs) in enumerate(tqdm(jobs, desc="rendering test material", unit="excerpt")):
        rng = np.random.default_rng([SEED, k])  # one stream per excerpt: re-rendering one changes no other
        if kind == "chorale":
            instruments = list(CHORALE_ENSEMBLES)[rng.integers(len(CHORALE_ENSEMBLES))]
            programs = CHORALE_ENSEMBLES[instruments]
        else:
            instruments = list(PIANO_PROGRAMS)[rng.integers(len(PIANO_PROGRAMS))]
            programs = [PIANO_PROGRAMS[instruments]]
        audio, truth = out_dir / f"{name}.flac", out_dir / f"{name}.truth.json"
        if force or not (audio.exists() and truth.exists()):
            render_item(midi, audio, truth, rng, programs=programs, instruments=instruments, **kwargs)
        import soundfile as sf
        pid = piece_id(midi, root)
        items.append(Item(name, kind, str(audio), str(truth), "chorales" if kind == "chorale" else "piano",
                          pid, str(midi), family or pid, float(sf.info(audio).duration)))
    items += build_jumps(out_dir, force=force)
    for name, pid in BACH10_PIECES.items():
        rec = paths.bach10_dir() / name
        midi = paths.chorale_dir() / f"{pid}.mid"
        truth = out_dir / f"bach10_{name}.truth.json"
        if force or not truth.exists():
            time_map, matched = bach10_truth(rec, midi)
            time_map.save(truth, midi=str(midi), recording=str(rec), chords_matched=matched)
        import soundfile as sf
        audio = rec / f"{name}.flac"
        items.append(Item(f"bach10_{name}", "bach10", str(audio), str(truth), "chorales", pid, str(midi),
                          _tune_family(pid), float(sf.info(audio).duration)))
    (out_dir / "manifest.json").write_text(json.dumps([asdict(i) for i in items], indent=1))
    return items


TUNING_SEED = 7
N_TUNING = 12


def piano_validation(n: int, seed: int) -> list[Path]:
    """``n`` validation-split piano-midi.de pieces of 90-600 s (the training's own split)."""
    from training.data.corpus import midi_corpus

    valid = sorted(Path(p.source) for p in midi_corpus(paths.piano_dir()) if p.split == "valid")
    fitting = [f for f in valid if PIANO_DURATION_RANGE_S[0] <= load_midi(f).duration_s <= PIANO_DURATION_RANGE_S[1]]
    rng = np.random.default_rng(seed)
    return [fitting[i] for i in sorted(rng.choice(len(fitting), size=min(n, len(fitting)), replace=False))]


def tune_validation(n: int, seed: int) -> list[Path]:
    """``n`` Nottingham tunes of the validation split (the training's hash split), drawn with ``seed``.

    Folk tunes are music the chorale index does not hold: renders of them are what the
    lock calibration learns "no piece of the corpus is playing" from.
    """
    from training.data.corpus import midi_corpus

    valid = sorted(Path(p.source) for p in midi_corpus(paths.data_root() / "midi" / "nottingham")
                   if p.split == "valid")
    rng = np.random.default_rng([seed, 2000])
    return [valid[i] for i in sorted(rng.choice(len(valid), size=min(n, len(valid)), replace=False))]


def build_tuning(out_dir: Path, *, force: bool = False, seed: int = TUNING_SEED, piano: int = 0,
                 from_start: bool = False, outside: int = 0,
                 tempo: tuple[float, float] | None = None, fermatas: bool = False,
                 microphone: bool = False) -> list[Item]:
    """Validation-split chorale excerpts for choosing thresholds (never the test pieces).

    ``seed`` other than TUNING_SEED draws other excerpts and renditions (for more
    validation items; only 12 validation chorales are long enough, so the pieces are the
    same); their names carry the seed: ``tune_s<seed>_NN_<id>``. ``piano`` adds that
    many 45 s excerpts of validation-split piano pieces (``tune_piano_NN_<id>``, rendered
    as the test piano excerpts are), for rules that must hold on the piano corpus too.
    ``from_start``: the chorale excerpts begin at the piece's first note, as a concert
    performance (and Bach10) does, instead of mid-piece (``tune_start_s<seed>_NN_<id>``).
    ``outside`` adds that many excerpts of validation-split Nottingham tunes
    (``tune_outside_s<seed>_NN_<id>``, corpus ``outside``): music that belongs to no piece
    of the chorale index, on the chorale excerpts' ensembles or a piano.
    ``tempo`` (lo, hi): the chorale and piano excerpts are played at a base tempo drawn from
    [lo, hi] of the written tempo, rubato kept within it (``tune_t<lo>-<hi>_...``), for players
    far from the MIDI's tempo; default: the usual renditions' tempi.
    ``fermatas``: the chorale excerpts hold every fermata of their score 1.5-3 times as long
    (``tune_fermata_...``), as players do and the MIDI files do not.
    ``microphone``: the chorale and piano excerpts are heard through a small microphone that loses
    the bass (:func:`through_microphone`; ``tune_mic_...``), as a phone or a laptop on the stand does.
    """
    from tqdm import tqdm

    import soundfile as sf

    out_dir.mkdir(parents=True, exist_ok=True)
    chorale_tempo = {"base_tempo": (0.65, 1.15)}
    piano_tempo = {"base_tempo": PIANO_BASE_TEMPO}
    tag = ""
    if tempo is not None:
        chorale_tempo = piano_tempo = {"base_tempo": tempo, "tempo_clip": tempo}
        tag = f"t{tempo[0]:g}-{tempo[1]:g}_"
    if fermatas:
        tag += "fermata_"
    if microphone:
        tag += "mic_"
    items = []
    for k, (midi, family) in enumerate(tqdm(chorale_selection("valid", N_TUNING, seed),
                                            desc="rendering tuning material", unit="excerpt")):
        rng = np.random.default_rng([seed, k])
        instruments = list(CHORALE_ENSEMBLES)[rng.integers(len(CHORALE_ENSEMBLES))]
        name = f"tune_{k:02d}_{midi.stem}" if seed == TUNING_SEED else f"tune_s{seed}_{k:02d}_{midi.stem}"
        if from_start:
            name = name.replace("tune_", "tune_start_", 1)
        name = name.replace("tune_", f"tune_{tag}", 1)
        audio, truth = out_dir / f"{name}.flac", out_dir / f"{name}.truth.json"
        if force or not (audio.exists() and truth.exists()):
            render_item(midi, audio, truth, rng, programs=CHORALE_ENSEMBLES[instruments], instruments=instruments,
                        start_frac=(0.0, 0.0) if from_start else (0.0, 0.4), length_s=(25.0, 40.0),
                        fermatas=fermatas, microphone=microphone, **chorale_tempo)
        items.append(Item(name, "chorale", str(audio), str(truth), "chorales", piece_id(midi, paths.chorale_dir()),
                          str(midi), family, float(sf.info(audio).duration)))
    for k, midi in enumerate(tqdm(piano_validation(piano, seed) if piano else [],
                                  desc="rendering piano tuning material", unit="excerpt")):
        rng = np.random.default_rng([seed, 1000 + k])  # apart from the chorales' streams
        instruments = list(PIANO_PROGRAMS)[rng.integers(len(PIANO_PROGRAMS))]
        prefix = "tune_piano" if seed == TUNING_SEED else f"tune_s{seed}_piano"
        name = f"{prefix}_{k:02d}_{midi.stem}".replace("tune_", f"tune_{tag.replace('fermata_', '')}", 1)
        audio, truth = out_dir / f"{name}.flac", out_dir / f"{name}.truth.json"
        if force or not (audio.exists() and truth.exists()):
            render_item(midi, audio, truth, rng, programs=[PIANO_PROGRAMS[instruments]], instruments=instruments,
                        start_frac=(0.1, 0.5), length_s=(45.0, 45.0), microphone=microphone, **piano_tempo)
        pid = piece_id(midi, paths.piano_dir())
        items.append(Item(name, "piano", str(audio), str(truth), "piano", pid, str(midi), pid,
                          float(sf.info(audio).duration)))
    ensembles = {**CHORALE_ENSEMBLES, "acoustic grand": [0]}
    for k, midi in enumerate(tqdm(tune_validation(outside, seed) if outside else [],
                                  desc="rendering outside tuning material", unit="excerpt")):
        rng = np.random.default_rng([seed, 2000 + k])  # apart from the other streams
        instruments = list(ensembles)[rng.integers(len(ensembles))]
        name = f"tune_outside_s{seed}_{k:02d}_{midi.stem}"
        audio, truth = out_dir / f"{name}.flac", out_dir / f"{name}.truth.json"
        if force or not (audio.exists() and truth.exists()):
            render_item(midi, audio, truth, rng, programs=ensembles[instruments], instruments=instruments,
                        start_frac=(0.0, 0.3), length_s=(25.0, 40.0), base_tempo=(0.65, 1.15))
        tid = f"nottingham/{midi.stem}"
        items.append(Item(name, "outside", str(audio), str(truth), "outside", tid, str(midi), tid,
                          float(sf.info(audio).duration)))
    (out_dir / "manifest.json").write_text(json.dumps([asdict(i) for i in items], indent=1))
    return items


def _tune_family(chorale_id: str) -> str:
    rows = csv.DictReader(open(paths.chorale_dir() / "splits.csv"))
    return {Path(r["file"]).stem: r["tune_family"] for r in rows}.get(chorale_id, chorale_id)


def load_manifest(material_dir: Path) -> list[Item]:
    path = Path(material_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no test material yet; run python -m benchmarks.material")
    return [Item(**d) for d in json.loads(path.read_text())]


def tempo_range_ok(lo: float, hi: float) -> bool:
    """Whether [lo, hi] is a range of tempo ratios renditions are made at: 0.1 <= LO <= HI <= 4."""
    return 0.1 <= lo <= hi <= 4.0


def _tempo_range(text: str) -> tuple[float, float] | None:
    """``"LO,HI"`` as two tempo ratios, or None where it is not a :func:`tempo_range_ok` range."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        return None
    return (lo, hi) if tempo_range_ok(lo, hi) else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.material", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("test", "tuning"), default="test",
                        help="test: the benchmark material; tuning: validation-split chorales for thresholds")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default data/bench/material or data/bench/tuning)")
    parser.add_argument("--force", action="store_true", help="re-render even if the files exist")
    parser.add_argument("--seed", type=int, default=TUNING_SEED,
                        help=f"tuning set only: another seed draws more validation items (default {TUNING_SEED})")
    parser.add_argument("--piano", type=int, default=0,
                        help="tuning set only: also this many validation-split piano excerpts (default 0)")
    parser.add_argument("--from-start", action="store_true",
                        help="tuning set only: chorale excerpts that begin at the piece's first note")
    parser.add_argument("--outside", type=int, default=0,
                        help="tuning set only: also this many excerpts of validation-split Nottingham tunes, "
                             "music outside the chorale index (default 0)")
    parser.add_argument("--tempo", default=None, metavar="LO,HI",
                        help="tuning set only: chorale and piano excerpts at a base tempo of LO-HI times the "
                             "written tempo, rubato kept within it (e.g. 0.35,0.5 for players far slower than "
                             "the MIDI); default: the tempi of the other excerpts (within 0.75-1.3)")
    parser.add_argument("--fermatas", action="store_true",
                        help="tuning set only: the chorale excerpts hold every fermata of their score 1.5-3 times "
                             "as long, as players do (the scores' fermatas are read from the music21 corpus)")
    parser.add_argument("--microphone", action="store_true",
                        help="tuning set only: the chorale and piano excerpts heard through a small microphone that "
                             f"loses the bass (a high-pass at {MIC_HIGHPASS_HZ[0]:g}-{MIC_HIGHPASS_HZ[1]:g} Hz and a "
                             "random EQ), as a phone or a laptop on the music stand hears them")
    args = parser.parse_args(argv)
    if ((args.seed != TUNING_SEED or args.piano or args.from_start or args.outside or args.tempo or args.fermatas
         or args.microphone) and args.set != "tuning"):
        print("--seed, --piano, --from-start, --outside, --tempo, --fermatas, --microphone: only for --set tuning (the "
              "test material is fixed)", file=sys.stderr)
        return 2
    if args.piano < 0 or args.outside < 0:
        print("--piano, --outside: a number of excerpts, >= 0", file=sys.stderr)
        return 2
    if args.tempo is not None:
        tempo = _tempo_range(args.tempo)
        if tempo is None:
            print(f"--tempo {args.tempo}: give two ratios to the written tempo, LO,HI with 0.1 <= LO <= HI <= 4 "
                  "(e.g. 0.35,0.5)", file=sys.stderr)
            return 2
        args.tempo = tempo
    if args.set == "tuning":
        out = args.out or paths.work_dir() / "tuning"
        items = build_tuning(out, force=args.force, seed=args.seed, piano=args.piano, from_start=args.from_start,
                             outside=args.outside, tempo=args.tempo, fermatas=args.fermatas,
                             microphone=args.microphone)
    else:
        out = args.out or paths.work_dir() / "material"
        items = build(out, force=args.force)
    args.out = out
    print(f"{len(items)} items, {sum(i.duration_s for i in items) / 60:.1f} min of audio -> {args.out}/manifest.json")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
