"""Where are the position errors? Split by how fast the players move through the MIDI (a study)

    python -m studies.position_by_tempo RUN_DIR [--material DIR] [--kinds bach10]

Reads the JSON-lines logs of a benchmark run (``benchmarks.run_all``: one ``ITEM.jsonl``
per item under ``RUN_DIR``) and the items' truth, and splits the updates locked on the
right piece by the *local tempo of the truth*: MIDI seconds per audio second over the
second around the update (1 = the MIDI's own tempo; a fermata or a held chord played three
times its written length is 0.33). Per band: how many updates, the share within 0.25 /
0.5 s, the share more than 0.25 s ahead of the truth and behind it, and the median
signed error (position minus truth). A follower that extrapolates at the tempo it has
heard runs ahead where the players hold; this says how much of the error that is.

The truth between two annotated onsets is a straight line (benchmarks.warp), so inside
a hold the truth itself moves slowly along a chord that does not change; neither a
follower at the chord's end nor one at its start is "right" there until the next onset.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BANDS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.25), (1.25, np.inf))
AROUND_S = 0.5  # the local tempo is measured over [t - AROUND_S, t + AROUND_S]


def locked_positions(records: list[dict], piece: str, truth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(audio time, reported position, true position) of the records following ``piece`` where the
    position and the truth are defined."""
    t = np.array([r["t"] for r in records], float)
    pos = np.array([np.nan if r.get("position_s") is None else r["position_s"] for r in records], float)
    ok = np.array([r.get("state") == "following" and r.get("piece") == piece for r in records], bool)
    true_s = truth.audio_to_midi(t) if len(t) else np.empty(0)
    use = ok & np.isfinite(pos) & np.isfinite(true_s)
    return t[use], pos[use], true_s[use]


def locked_errors(records: list[dict], piece: str, truth) -> tuple[np.ndarray, np.ndarray]:
    """(signed error, local truth tempo) of the records following ``piece`` where the truth is defined."""
    t, pos, true_s = locked_positions(records, piece, truth)
    tempo = (truth.audio_to_midi(t + AROUND_S) - truth.audio_to_midi(t - AROUND_S)) / (2 * AROUND_S)
    use = np.isfinite(tempo)
    return (pos - true_s)[use], tempo[use]


def table(errors: np.ndarray, tempo: np.ndarray) -> str:
    lines = ["| local tempo (MIDI s per audio s) | updates | within 0.25 / 0.5 s | > 0.25 s ahead / behind | "
             "median signed error |", "|---|---:|---|---|---:|"]
    for lo, hi in BANDS + ((0.0, np.inf),):
        m = (tempo >= lo) & (tempo < hi)
        if not m.any():
            continue
        e = errors[m]
        name = "all" if (lo, hi) == (0.0, np.inf) else f"{lo:g}-{hi:g}"
        lines.append(f"| {name} | {int(m.sum()):,} | {100 * np.mean(np.abs(e) <= 0.25):.1f} / "
                     f"{100 * np.mean(np.abs(e) <= 0.5):.1f} % | {100 * np.mean(e > 0.25):.1f} / "
                     f"{100 * np.mean(e < -0.25):.1f} % | {np.median(e):+.3f} s |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from benchmarks import paths
    from benchmarks.material import load_manifest
    from benchmarks.metrics import load_jsonl
    from benchmarks.warp import load_truth
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.position_by_tempo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="folder of a run's ITEM.jsonl logs")
    p.add_argument("--material", type=Path, default=None, help="the benchmark material (default: the benchmark's)")
    p.add_argument("--kinds", default="bach10", help="comma-separated item kinds (default bach10)")

    def run(args) -> int:
        material = args.material or paths.work_dir() / "material"
        kinds = set(args.kinds.split(","))
        errors, tempi = [], []
        for item in load_manifest(material):
            log = args.run / f"{item.name}.jsonl"
            if item.kind not in kinds or not log.is_file():
                continue
            e, t = locked_errors(load_jsonl(log), item.piece, load_truth(Path(item.truth)))
            errors.append(e)
            tempi.append(t)
        if not errors:
            print(f"no logs of kind {args.kinds} under {args.run}")
            return 1
        print(table(np.concatenate(errors), np.concatenate(tempi)))
        return 0

    return run_main(run, p.parse_args(argv))


if __name__ == "__main__":
    import sys

    sys.exit(main())
