"""How far from A4 = 440 Hz is each recording, and does the follower hear it shifted? (a study)

    python -m studies.tuning_scan FOLDER_OR_FILE [...] [--all]

Every audio file given (or found in the folders given) goes through the follower's streaming
front end with its tuning tracker (``follower.tuning``), in blocks of 8192 samples; printed
per file: the tracker's estimate at the end (cents from 440, and A4 in Hz), how well the peaks
agree (the resultant length, 0-1), and the shifts the front end applied on the way (none for music
heard at 440). ``--all`` prints every file, not only the shifted ones. It says which material the
tuning changes at all: a file never shifted is followed exactly as with ``--no-follow-tuning``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

AUDIO = (".flac", ".wav", ".ogg", ".mp3")


def scan(path: Path) -> dict:
    import numpy as np
    import soundfile as sf

    from follower.features import FeatureConfig, StreamingSpectrogram
    from follower.tuning import TuningTracker

    fc = FeatureConfig()
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    tracker = TuningTracker(fc.sample_rate_hz, fc.frame_size_samples, fc.frame_rate_hz)
    spec = StreamingSpectrogram(fc, input_rate_hz=rate, tuning=tracker)
    applied = []
    x = audio.mean(axis=1)
    for i in range(0, len(x), 8192):
        spec.push(x[i:i + 8192], last=i + 8192 >= len(x))
        if tracker.applied_cents and tracker.applied_cents not in applied:
            applied.append(tracker.applied_cents)
    return {"estimate_cents": tracker.estimate_cents, "resultant": tracker.resultant, "applied": applied,
            "seconds": len(x) / rate, "silent": not np.any(x)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.tuning_scan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, help="audio files, or folders searched for them")
    p.add_argument("--all", action="store_true", help="print every file, not only those heard shifted")
    args = p.parse_args(argv)
    files = []
    for path in args.paths:
        if path.is_dir():
            files += sorted(f for f in path.rglob("*") if f.suffix.lower() in AUDIO)
        elif path.is_file():
            files.append(path)
        else:
            print(f"error: {path}: no such file or folder", file=sys.stderr)
            return 2
    if not files:
        print("error: no audio files (.flac, .wav, .ogg, .mp3) in what was given", file=sys.stderr)
        return 2
    from follower.tuning import cents_to_a4_hz

    shifted, lo, hi = 0, None, None
    for f in files:
        r = scan(f)
        est = r["estimate_cents"]
        if est is not None:
            lo, hi = min(est, lo if lo is not None else est), max(est, hi if hi is not None else est)
        shifted += bool(r["applied"])
        if args.all or r["applied"]:
            what = ("no tonal frame" if est is None else
                    f"{est:+6.1f} cents (A4 = {cents_to_a4_hz(est):.1f} Hz), resultant {r['resultant']:.2f}")
            print(f"{f}: {what}; heard shifted by {r['applied'] or 'nothing'}")
    span = "" if lo is None else f"; estimates {lo:+.1f}..{hi:+.1f} cents"
    print(f"{len(files)} files, {shifted} heard shifted{span}")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
