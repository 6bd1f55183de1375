"""A copy of a material folder tuned away from A4 = 440 Hz.

    python -m benchmarks.detune SRC --cents C [-o OUT] [--force]

Players are not always at 440 Hz: an orchestra at 443, a period ensemble at 430 or at
baroque pitch (415, a semitone below), a tape that ran slow. Every item of the material
folder ``SRC`` (a ``manifest.json`` of ``benchmarks.material``: the test material, a
validation set, Bach10) is resampled so that it sounds ``C`` cents away (``-35``: A4 =
431.2 Hz), as a tape played at another speed does: its tempo moves with it by the same
factor, 2**(C/1200) (0.98x at -35 cents), and its truth's audio times are scaled to match.
The copies are named ``<item>_c<C>`` and written to ``OUT`` (default: ``SRC`` with
``_c<C>`` appended) with a manifest of their own, for ``python -m studies.validation_replay
--material OUT`` (the follower's tuning, ``follower.tuning``, is chosen and checked on such
copies of validation renders; docs/improvements.md (hhh)). Items already written are kept
unless ``--force``. A benchmark tool, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def detune_truth(truth: dict, factor: float) -> dict:
    """``truth`` (a time map, or segments of them) for the audio played ``factor`` times faster."""
    from .warp import retime_truth

    return retime_truth(truth, lambda t: t / factor)


def detune_folder(src: Path, cents: float, out: Path, *, force: bool = False) -> list[dict]:
    import librosa
    import soundfile as sf
    from tqdm import tqdm

    factor = 2.0 ** (cents / 1200.0)
    manifest = json.loads((src / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for item in tqdm(manifest, desc=f"detuning by {cents:+g} cents", unit="item"):
        name = f"{item['name']}_c{cents:+g}"
        audio_path, truth_path = out / f"{name}.flac", out / f"{name}.truth.json"
        if force or not (audio_path.exists() and truth_path.exists()):
            audio, rate = sf.read(item["audio"], dtype="float32", always_2d=True)
            # played `factor` times faster: the samples resampled to rate/factor, then read at `rate`
            moved = librosa.resample(audio.mean(axis=1), orig_sr=rate, target_sr=rate / factor, res_type="soxr_hq")
            sf.write(audio_path, moved, rate)
            truth = detune_truth(json.loads(Path(item["truth"]).read_text()), factor)
            truth_path.write_text(json.dumps({**truth, "detune_cents": cents}))
        items.append({**item, "name": name, "audio": str(audio_path), "truth": str(truth_path),
                      "duration_s": float(sf.info(audio_path).duration)})
    (out / "manifest.json").write_text(json.dumps(items, indent=1))
    return items


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.detune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="material folder with a manifest.json (python -m benchmarks.material)")
    p.add_argument("--cents", type=float, required=True,
                   help="how far from A4 = 440 Hz the copies sound, -1200..1200 (-35: A4 = 431.2 Hz; -100: 415.3 Hz)")
    p.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: SRC_c<CENTS>)")
    p.add_argument("--force", action="store_true", help="write the copies again even if they exist")
    args = p.parse_args(argv)
    if not (args.src / "manifest.json").is_file():
        print(f"error: {args.src}: no manifest.json; give a folder of python -m benchmarks.material", file=sys.stderr)
        return 2
    if not -1200 <= args.cents <= 1200 or args.cents == 0:
        print(f"error: --cents {args.cents:g}: give a non-zero shift within an octave, -1200..1200", file=sys.stderr)
        return 2
    out = args.out or args.src.with_name(f"{args.src.name}_c{args.cents:+g}")
    items = detune_folder(args.src, args.cents, out, force=args.force)
    print(f"{len(items)} items, {args.cents:+g} cents (A4 = {440 * 2 ** (args.cents / 1200):.1f} Hz) -> {out}/manifest.json")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
