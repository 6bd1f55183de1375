"""``python -m benchmarks.alignment``: how closely ``follower align`` places every note of Bach10.

Bach10 (Duan & Pardo) ships, per recording, the audio onset of every note of its
score, annotated by hand. Each recording is aligned offline to a score and every
annotated note's aligned onset (``Alignment.audio_time`` of its MIDI onset) is
compared with the annotation: the share of notes within 50 / 100 / 250 ms, per
piece and over all notes.

Two scores, as a user would give them:

* ``--midi``: Bach10's own MIDI (fermatas written out), the annotations' timeline;
* ``--piece``: the music21 chorale of the same BWV number from the corpus the shipped
  index was built from (120 bpm, fermatas not held); the annotation's MIDI onsets
  are carried onto it by the chord alignment of the two scores
  (``benchmarks.bach10.chord_alignment``); notes of chords without an exact partner
  are not scored.

Several alignment settings are run (``SETTINGS``); the table in docs/benchmarks.md
("Offline alignment") is rewritten between its ``generated:alignment`` markers.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.align import AlignConfig, align_recording

from .bach10 import BACH10_PIECES, chord_alignment
from .paths import bach10_dir, chorale_dir, docs_dir, work_dir

TOLERANCES_S = (0.05, 0.10, 0.25)
SETTINGS = {  # name -> (what it is, AlignConfig)
    "coarse": ("learned similarity only (`--coarse`), 20 frames/s", AlignConfig(refine=False)),
    "notes": ("coarse, then chroma + onsets at 50 frames/s in a 1 s band",
              AlignConfig(embed_weight=0.0)),
    "refined": ("coarse, then chroma + onsets + learned similarity at 50 frames/s (default)", AlignConfig()),
}
# renders with exact timing (training-split chorales, never Bach10 tunes), where the settings were chosen
RENDERED = (("bach_bwv10.7", 0.8), ("bach_bwv10.7", 1.1), ("bach_bwv103.6", 0.8), ("bach_bwv103.6", 1.1),
            ("bach_bwv11.6", 0.8), ("bach_bwv11.6", 1.1))
RENDER_PROGRAMS = {1: 40, 2: 71, 3: 65, 4: 70}  # violin, clarinet, alto sax, bassoon: Bach10's ensemble
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
DEFAULT_SETTING = "refined"


@dataclass
class PieceResult:
    piece: str
    score: str            # "bach10-midi" or "corpus"
    setting: str
    errors_s: np.ndarray  # signed (aligned - annotated) per scored note; NaN = not aligned
    audio_s: float
    align_s: float        # wall time of align_recording

    def within(self, tol: float) -> float:
        return float(np.mean(np.abs(np.nan_to_num(self.errors_s, nan=np.inf)) <= tol))


def annotated_notes(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(audio onset s, Bach10-MIDI onset s) of every annotated note."""
    rows = np.loadtxt(folder / f"{folder.name}.txt", ndmin=2)
    return rows[:, 0] / 1000.0, rows[:, 1] / 1000.0


def run_piece(folder: Path, score_kind: str, settings: dict, bundle, corpus: Path) -> list[PieceResult]:
    import soundfile as sf

    from follower.midi import load_midi

    audio_on, b10_on = annotated_notes(folder)
    b10_midi = load_midi(folder / f"{folder.name}.mid")
    if score_kind == "bach10-midi":
        score, midi_on = b10_midi, b10_on
    else:
        score = load_midi(corpus / f"{BACH10_PIECES[folder.name]}.mid")
        a, c, _ = chord_alignment(b10_midi, score)
        exact = {round(x, 3): y for x, y in zip(a, c)}  # only onsets of chords matched exactly
        midi_on = np.array([exact.get(round(float(t), 3), np.nan) for t in b10_on])
    signal, rate = sf.read(folder / f"{folder.name}.flac", dtype="float32", always_2d=True)
    signal = signal.mean(axis=1)
    out = []
    for name, (_, config) in settings.items():
        t0 = time.perf_counter()
        alignment = align_recording(signal, rate, score, bundle, config)
        took = time.perf_counter() - t0
        ok = np.isfinite(midi_on)
        errors = alignment.audio_time(midi_on[ok]) - audio_on[ok]
        out.append(PieceResult(folder.name, score_kind, name, errors, len(signal) / rate, took))
    return out


def run_rendered(piece: str, ratio: float, settings: dict, bundle, corpus: Path) -> list[PieceResult]:
    """A corpus chorale rendered by FluidSynth at ``ratio`` x its tempo: every onset's time is exact."""
    from follower.midi import load_midi
    from training.data.synth import Renderer, RenderSettings

    score = load_midi(corpus / f"{piece}.mid")
    notes = score.notes.copy()
    notes["start_s"] /= ratio
    notes["end_s"] /= ratio
    renderer = Renderer(RenderSettings(sample_rate_hz=22050))
    try:
        audio = renderer.render(notes, RENDER_PROGRAMS, SOUNDFONT)
    finally:
        renderer.close()
    out = []
    for name, (_, config) in settings.items():
        t0 = time.perf_counter()
        alignment = align_recording(audio, 22050, score, bundle, config)
        took = time.perf_counter() - t0
        onsets = score.notes["start_s"]
        out.append(PieceResult(f"{piece} x{ratio}", "rendered", name, alignment.audio_time(onsets) - onsets / ratio,
                               len(audio) / 22050, took))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def summary_table(results: list[PieceResult], settings: dict) -> str:
    lines = ["| score given | setting | notes | within 50 ms | within 100 ms | within 250 ms | median abs error | "
             "median signed error | time per minute of audio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, label in (("rendered", "rendered chorales (exact timing)"), ("bach10-midi", "Bach10, `--midi` its own MIDI"),
                        ("corpus", "Bach10, `--piece` corpus chorale")):
        for name, (what, _) in settings.items():
            rs = [r for r in results if r.score == kind and r.setting == name]
            if not rs:
                continue
            e = np.concatenate([r.errors_s for r in rs])
            a = np.abs(np.nan_to_num(e, nan=np.inf))
            per_min = sum(r.align_s for r in rs) / (sum(r.audio_s for r in rs) / 60)
            lines.append(f"| {label} | {name}: {what} | {len(e)} | "
                         + " | ".join(_pct(float(np.mean(a <= t))) for t in TOLERANCES_S)
                         + f" | {1000 * np.nanmedian(np.abs(e)):.0f} ms | {1000 * np.nanmedian(e):+.0f} ms | "
                           f"{per_min:.1f} s |")
    return "\n".join(lines)


def piece_table(results: list[PieceResult], setting: str) -> str:
    lines = ["| recording | notes | `--midi`: within 50 / 100 / 250 ms | `--piece`: scored notes | "
             "`--piece`: within 50 / 100 / 250 ms |", "|---|---|---|---|---|"]
    by = {(r.piece, r.score): r for r in results if r.setting == setting}
    for piece in sorted({r.piece for r in results if r.score != "rendered"}):
        cells = [piece]
        m, c = by.get((piece, "bach10-midi")), by.get((piece, "corpus"))
        cells.append(str(len(m.errors_s)) if m else "")
        cells.append(" / ".join(_pct(m.within(t)) for t in TOLERANCES_S) if m else "")
        cells.append(str(len(c.errors_s)) if c else "")
        cells.append(" / ".join(_pct(c.within(t)) for t in TOLERANCES_S) if c else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from follower.bundle import load_bundle
    from follower.paths import DEFAULT_BUNDLE, resolve_bundle

    from .report import machine_description, replace_block

    p = argparse.ArgumentParser(prog="python -m benchmarks.alignment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bach10", type=Path, default=None, help="Bach10 folder (default ../shared/data/real/bach10)")
    p.add_argument("--corpus", type=Path, default=None, help="chorale MIDI folder (default the shared bach-chorales)")
    p.add_argument("--bundle", default=DEFAULT_BUNDLE)
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    p.add_argument("--scores", default="rendered,bach10-midi,corpus",
                   help="comma-separated, of rendered (FluidSynth renders), bach10-midi, corpus")
    p.add_argument("--no-doc", action="store_true", help="print the tables, leave docs/benchmarks.md alone")
    args = p.parse_args(argv)

    from tqdm import tqdm

    root = args.bach10 or bach10_dir()
    corpus = args.corpus or chorale_dir()
    settings = {k: SETTINGS[k] for k in args.settings.split(",")}
    kinds = args.scores.split(",")
    bundle = load_bundle(resolve_bundle(args.bundle))
    folders = sorted(f for f in root.iterdir() if f.is_dir() and f.name in BACH10_PIECES)
    if not folders:
        raise SystemExit(f"{root}: no Bach10 recordings (NN-Name folders); give --bach10")
    t0 = time.time()
    results: list[PieceResult] = []
    if "rendered" in kinds:
        for piece, ratio in tqdm(RENDERED, desc="rendered", unit="render"):
            results += run_rendered(piece, ratio, settings, bundle, corpus)
    for folder in tqdm(folders, desc="Bach10", unit="piece"):
        for kind in kinds:
            if kind != "rendered":
                results += run_piece(folder, kind, settings, bundle, corpus)
    took_min = (time.time() - t0) / 60

    out = work_dir() / "alignment"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps([
        {"piece": r.piece, "score": r.score, "setting": r.setting, "audio_s": r.audio_s, "align_s": r.align_s,
         "errors_ms": [None if not np.isfinite(x) else round(1000 * float(x), 1) for x in r.errors_s]}
        for r in results], indent=1))
    command = ".venv/bin/python -m benchmarks.alignment" + (
        f" --settings {args.settings}" if args.settings != ",".join(SETTINGS) else "")
    body = "\n".join([
        f"- Machine: {machine_description()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"bundle fingerprint {bundle.config.fingerprint}.",
        f"- Command: `{command}` ({took_min:.1f} min this time, on a shared "
        "machine: the times per minute of audio are upper bounds).",
        "", summary_table(results, settings), "",
        f"Per recording, setting `{DEFAULT_SETTING}`:" if DEFAULT_SETTING in settings else "",
        "", piece_table(results, DEFAULT_SETTING if DEFAULT_SETTING in settings else next(iter(settings))),
    ])
    print(body)
    if not args.no_doc:
        doc = docs_dir() / "benchmarks.md"
        doc.write_text(replace_block(doc.read_text(), "alignment", body))
        print(f"wrote the alignment section of {doc}")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
