"""A copy of a material folder with something played before the music: players tuning, chords tried.

    python -m benchmarks.prelude SRC --kind violin|piano [--gap-s G] [--gap-db DB] [-o OUT] [--force]
    python -m benchmarks.prelude SRC --audio FILE [...]      (any recording: an announcement, applause)

On stage the follower hears more than the pieces: a violinist's open strings and fifths
before the first note, a pianist trying a cadence and a scale. Every item of the material
folder ``SRC`` (a ``manifest.json`` of ``benchmarks.material``: a validation set, Bach10, the
test material) is copied with such a prelude rendered by FluidSynth (FluidR3's violin or
piano, at the item's loudness, with noise at 25 dB below it), or any recording given with ``--audio`` (an announcement, applause, a tuning of your own), then ``G`` seconds of a gap
(noise at that floor, or at ``DB`` dBFS with ``--gap-db``: -70 is a quiet hall), then the
item as it was; its truth's audio times move by the prelude and the gap. The copies are
named ``<item>_pre<kind><G>[q<-DB>]`` (``<kind>`` the file's name for ``--audio``) and written to ``OUT`` (default: ``SRC`` with that
suffix) with a manifest of their own, for ``python -m studies.validation_replay --material
OUT``: what the follower reports during the prelude and how soon it names the music after it
(docs/improvements.md (jjj)). Items already written are kept unless ``--force``. A benchmark
tool, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# (start s, end s, MIDI pitches): open A, then the fifths A-E, D-A, G-D, then A again
VIOLIN = [(0.0, 2.0, [69]), (2.2, 3.8, [69, 76]), (4.0, 5.6, [62, 69]), (5.8, 7.4, [55, 62]), (7.6, 8.6, [69])]
# C major, G7, A minor, then a C major scale
PIANO = ([(0.0, 1.2, [48, 60, 64, 67]), (1.4, 2.6, [43, 59, 62, 65]), (2.8, 4.0, [45, 60, 64, 69])]
         + [(4.2 + 0.25 * i, 4.45 + 0.25 * i, [p]) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])])
KINDS = {"violin": (VIOLIN, 40), "piano": (PIANO, 0)}  # (notes, General MIDI program)
SOUNDFONT = "FluidR3_GM.sf2"
FLOOR_DB = -25.0  # the prelude's noise (and the gap's, without --gap-db), against the item's RMS


def render_prelude(kind: str, rate_hz: int) -> np.ndarray:
    """The prelude of ``kind`` as float32 mono audio at ``rate_hz``."""
    from follower.midi import NOTE_DTYPE
    from training.data.synth import Renderer, RenderSettings

    spec, program = KINDS[kind]
    rows = [(start, end, pitch) for start, end, pitches in spec for pitch in pitches]
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    notes["start_s"], notes["end_s"], notes["pitch"] = np.array(rows).T
    notes["velocity"], notes["program"] = 70, program
    renderer = Renderer(RenderSettings(sample_rate_hz=rate_hz))
    try:
        return renderer.render(notes, {0: program}, SOUNDFONT)
    finally:
        renderer.close()


def load_prelude(path: Path, rate_hz: int) -> np.ndarray:
    """A recording as float32 mono audio at ``rate_hz``."""
    import librosa
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != rate_hz:
        audio = librosa.resample(audio, orig_sr=rate, target_sr=rate_hz, res_type="soxr_hq")
    return audio.astype(np.float32)


def shift_truth(truth: dict, shift_s: float) -> dict:
    """``truth`` (a time map, or segments of them) for the audio started ``shift_s`` later."""
    from .warp import retime_truth

    return {**retime_truth(truth, lambda t: t + shift_s), "prelude_s": shift_s}


def copy_suffix(kind: str, gap_s: float, gap_db: float | None) -> str:
    """What the copies' names (and the default output folder's) end with."""
    return f"_pre{kind}{gap_s:g}" + ("" if gap_db is None else f"q{-gap_db:g}")


def prelude_folder(src: Path, kind: str, gap_s: float, gap_db: float | None, out: Path, *,
                   force: bool = False, audio_path: Path | None = None) -> list[dict]:
    """Write the copies (see the module docstring); ``audio_path``: a recording as the prelude, named ``kind``."""
    import soundfile as sf
    from tqdm import tqdm

    manifest = json.loads((src / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    suffix = copy_suffix(kind, gap_s, gap_db)
    rng = np.random.default_rng(0)
    preludes: dict = {}
    items = []
    for item in tqdm(manifest, desc=f"{kind} prelude", unit="item"):
        name = item["name"] + suffix
        copy_path, truth_path = out / f"{name}.flac", out / f"{name}.truth.json"
        rate = sf.info(item["audio"]).samplerate
        if rate not in preludes:
            preludes[rate] = load_prelude(audio_path, rate) if audio_path else render_prelude(kind, rate)
        pre = preludes[rate]
        shift_s = (len(pre) + int(round(gap_s * rate))) / rate
        if force or not (copy_path.exists() and truth_path.exists()):
            audio, _ = sf.read(item["audio"], dtype="float32", always_2d=True)
            audio = audio.mean(axis=1)
            rms = float(np.sqrt(np.mean(audio ** 2)))
            floor = rms * 10 ** (FLOOR_DB / 20)
            played = pre * (rms / max(float(np.sqrt(np.mean(pre ** 2))), 1e-9))
            played = played + rng.standard_normal(len(pre)).astype(np.float32) * floor
            gap_level = floor if gap_db is None else 10 ** (gap_db / 20)
            gap = rng.standard_normal(int(round(gap_s * rate))).astype(np.float32) * gap_level
            sf.write(copy_path, np.concatenate([played, gap, audio]).astype(np.float32), rate)
            truth = shift_truth(json.loads(Path(item["truth"]).read_text()), shift_s)
            truth_path.write_text(json.dumps(truth))
        items.append({**item, "name": name, "audio": str(copy_path), "truth": str(truth_path),
                      "duration_s": float(item["duration_s"]) + shift_s, "prelude_s": shift_s})
    (out / "manifest.json").write_text(json.dumps(items, indent=1))
    return items


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.prelude", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="material folder with a manifest.json (python -m benchmarks.material)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--kind", choices=sorted(KINDS),
                      help="violin: open strings and fifths (8.6 s); piano: three chords and a scale (6.2 s)")
    what.add_argument("--audio", type=Path, default=None, metavar="FILE",
                      help="a recording to play before each item instead (an announcement, applause)")
    p.add_argument("--gap-s", type=float, default=1.5, help="seconds between the prelude and the music (default 1.5)")
    p.add_argument("--gap-db", type=float, default=None,
                   help="level of the gap's noise in dBFS (default: the prelude's floor, 25 dB under the item)")
    p.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: SRC_pre<KIND><GAP>)")
    p.add_argument("--force", action="store_true", help="write the copies again even if they exist")
    args = p.parse_args(argv)
    if not (args.src / "manifest.json").is_file():
        print(f"error: {args.src}: no manifest.json; give a folder of python -m benchmarks.material", file=sys.stderr)
        return 2
    if not 0 <= args.gap_s <= 60:
        print(f"error: --gap-s {args.gap_s:g}: give 0-60 seconds", file=sys.stderr)
        return 2
    if args.gap_db is not None and not -120 <= args.gap_db <= 0:
        print(f"error: --gap-db {args.gap_db:g}: give a level in dBFS, -120..0", file=sys.stderr)
        return 2
    kind = args.kind
    if args.audio is not None:
        if not args.audio.is_file():
            print(f"error: --audio {args.audio}: no such file", file=sys.stderr)
            return 2
        kind = "".join(c for c in args.audio.stem if c.isalnum()) or "audio"
    out = args.out or args.src.with_name(args.src.name + copy_suffix(kind, args.gap_s, args.gap_db))
    items = prelude_folder(args.src, kind, args.gap_s, args.gap_db, out, force=args.force, audio_path=args.audio)
    print(f"{len(items)} items with a {kind} prelude and {args.gap_s:g} s gap -> {out}/manifest.json")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
