"""How much of the position error is a literal repeat? (a study)

    python -m studies.repeat_positions RUN_DIR [--material DIR] [--kinds chorale,piano,jumps,bach10]

Reads the JSON-lines logs of a benchmark run (``benchmarks.run_all``: one ``ITEM.jsonl``
per item under ``RUN_DIR``), the items' truth and their MIDI, and looks at every update
locked on the right piece more than 0.5 s from the truth: are the notes of the last
``--span-s`` seconds of MIDI before the reported position the same as those before the
true one (Jaccard overlap of the two stretches' piano rolls at least
:data:`follower.same_notes.SAME_NOTES`, the engine's own test for one piece stored twice)?
If so, the follower sits on the other copy of music written out twice, and nothing it has
heard since the copies last differed can tell it which copy the players are at.

Per kind it prints the benchmark's within 0.25 / 0.5 s, the share of updates off by more
than 0.5 s at the same notes, and within 0.5 s counting those as right: what the
follower's closeness is where the audio can decide, beside what the benchmark charges.
The benchmark's figures stay the ones that count; this says what they are made of.

Since 2026-12-06 the benchmark page carries this count itself (``benchmarks/copies.py``), with
a stricter test: the notes compared are those the truth played over the audio heard since the
excerpt began or the last jump (this study compares the 4 s of MIDI before each position, which
after a jump holds music that was never played), and the other place must lie 2 s or more from
the truth. This study stays for ``studies.solo_line`` and the figures of earlier notes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SPAN_S = 4.0     # MIDI seconds before each position whose notes are compared (the engine's MIN_SPAN_S)
OFF_S = 0.5      # updates further than this from the truth are examined


def locked_positions(records: list[dict], piece: str, truth) -> tuple[np.ndarray, np.ndarray]:
    """(reported position, true position) of the records following ``piece`` where the truth is defined."""
    from studies.position_by_tempo import locked_positions as locked

    _, pos, true_s = locked(records, piece, truth)
    return pos, true_s


def same_music(notes, a_s: float, b_s: float, span_s: float = SPAN_S) -> bool:
    """Whether the ``span_s`` of MIDI before ``a_s`` plays the same notes as that before ``b_s``."""
    from follower.same_notes import SAME_NOTES, overlap, span_roll

    o = overlap(span_roll(notes, a_s, 1.0, span_s), span_roll(notes, b_s, 1.0, span_s))
    return bool(np.isfinite(o) and o >= SAME_NOTES)


def item_counts(pos: np.ndarray, true_s: np.ndarray, notes, span_s: float = SPAN_S) -> dict:
    err = np.abs(pos - true_s)
    far = np.flatnonzero(err > OFF_S)
    same = sum(same_music(notes, float(pos[i]), float(true_s[i]), span_s) for i in far)
    return {"n": int(len(err)), "within_025": int(np.sum(err <= 0.25)), "within_05": int(np.sum(err <= OFF_S)),
            "same_notes": int(same)}


def table(rows: dict) -> str:
    lines = ["| material | locked updates | within 0.25 / 0.5 s | off > 0.5 s at the same notes | "
             "within 0.5 s, same notes counted right |", "|---|---:|---|---:|---:|"]
    for kind, c in rows.items():
        n = max(c["n"], 1)
        lines.append(f"| {kind} | {c['n']:,} | {100 * c['within_025'] / n:.0f} / {100 * c['within_05'] / n:.0f} % | "
                     f"{100 * c['same_notes'] / n:.1f} % | {100 * (c['within_05'] + c['same_notes']) / n:.0f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from benchmarks import paths
    from benchmarks.material import load_manifest
    from benchmarks.metrics import load_jsonl
    from benchmarks.warp import load_truth
    from follower.cliutil import run_main
    from studies.same_notes import load_notes

    p = argparse.ArgumentParser(prog="python -m studies.repeat_positions", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="folder of a run's ITEM.jsonl logs")
    p.add_argument("--material", type=Path, default=None, help="the benchmark material (default: the benchmark's)")
    p.add_argument("--kinds", default="chorale,piano,jumps,bach10", help="comma-separated item kinds")
    p.add_argument("--span-s", type=float, default=SPAN_S, help="MIDI seconds compared before each position "
                                                               "(default %(default)s)")

    def run(args) -> int:
        from follower.errors import ConfigError

        material = args.material or paths.work_dir() / "material"
        if not args.run.is_dir():
            raise ConfigError(f"{args.run}: no such run folder; give a folder of ITEM.jsonl logs "
                              "(data/bench/runs/follower-FINGERPRINT after python -m benchmarks.run_all)")
        if not (material / "manifest.json").is_file():
            raise ConfigError(f"{material}: no test material (no manifest.json); run python -m benchmarks.material "
                              "or give --material")
        rows, items = {}, []
        for item in load_manifest(material):
            log = args.run / f"{item.name}.jsonl"
            if item.kind not in args.kinds.split(",") or not log.is_file():
                continue
            pos, true_s = locked_positions(load_jsonl(log), item.piece, load_truth(Path(item.truth)))
            c = item_counts(pos, true_s, load_notes(Path(item.midi)), args.span_s)
            total = rows.setdefault(item.kind, dict.fromkeys(c, 0))
            for k, v in c.items():
                total[k] += v
            if c["same_notes"]:
                items.append(f"{item.name}: {c['same_notes']} of {c['n']} updates at the other copy")
        if not rows:
            print(f"no logs of kinds {args.kinds} under {args.run}")
            return 1
        print(table(rows))
        print("\n".join(items))
        return 0

    return run_main(run, p.parse_args(argv))


if __name__ == "__main__":
    import sys

    sys.exit(main())
