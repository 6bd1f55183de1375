"""Where does the re-ranking's note test (follower.same_notes) put copies, settings of one tune and other music?

``python -m studies.same_notes --rolls W/bigcorpus/midi/rolls`` reads the chorale corpus
(``splits.csv`` names each chorale's tune family) and the roll sets' MIDI files as
``python -m benchmarks.big_corpus prepare`` writes them, and compares stretches of pairs of
pieces with :func:`follower.same_notes.span_roll` / :func:`~follower.same_notes.overlap`,
exactly as the engine does along two re-ranked paths:

* **copies**: a chorale and a roll-set file holding its notes (found over whole pieces at
  every transposition: the overlap of ``benchmarks.same_music``, at or above its
  threshold), and the chorale corpus's own pairs filed under two numbers;
* **one tune, another setting**: two chorales of one tune family that are not copies;
* **other music**: chorales of different tune families.

For every pair and every one of ``--points`` places in the first piece, the *most
similar* stretch of the second piece (every start on a 0.2 s grid, at the written tempo
and at the ratio of the two lengths) is taken, so the figures for settings and other
music are what a re-ranked path could find at worst, and those for copies what it finds
at best. Output: quantiles of each group per compared span, and the share of each group
at or above some thresholds (:data:`follower.same_notes.SAME_NOTES` among them).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from follower.same_notes import SAME_NOTES, overlap, span_roll

WHOLE_STEPS = 100     # whole-piece rolls for finding copies (benchmarks.same_music uses 400; 100 is enough to find them)
GRID_S = 0.2


def load_notes(path: Path):
    from follower.midi import load_midi

    n = load_midi(path).pitched
    return (n["start_s"].astype(np.float64), n["end_s"].astype(np.float64), n["pitch"].astype(np.int64))


def whole_roll(notes, steps: int = WHOLE_STEPS) -> np.ndarray:
    onset, end, pitch = notes
    roll = np.zeros((steps, 128), np.float32)
    if not len(onset):
        return roll
    length = max(float(end.max()), 1e-6)
    first = np.minimum((onset / length * steps).astype(np.int64), steps - 1)
    last = np.maximum((end / length * steps).astype(np.int64), first + 1)
    for a, b, p in zip(first, last, pitch):
        roll[a:b, p] = 1.0
    return roll


def find_copies(a_rolls, b_rolls, threshold: float):
    """[(i, j, shift)]: b_j transposed by ``shift`` semitones holds a_i's notes (whole-piece Jaccard)."""
    A = np.stack(a_rolls).reshape(len(a_rolls), WHOLE_STEPS, 128)
    B = np.stack(b_rolls).reshape(len(b_rolls), WHOLE_STEPS, 128)
    na = A.sum(axis=(1, 2))
    nb = B.sum(axis=(1, 2))
    found = {}
    for shift in range(-6, 6):
        Bs = np.roll(B, shift, axis=2)
        if shift > 0:
            Bs[:, :, :shift] = 0
        elif shift < 0:
            Bs[:, :, shift:] = 0
        inter = A.reshape(len(A), -1) @ Bs.reshape(len(Bs), -1).T
        jac = inter / np.maximum(na[:, None] + Bs.sum(axis=(1, 2))[None, :] - inter, 1)
        for i, j in zip(*np.nonzero(jac >= threshold)):
            if jac[i, j] > found.get((i, j), (0, -1))[1]:
                found[(i, j)] = (shift, jac[i, j])
    return [(i, j, s) for (i, j), (s, _) in sorted(found.items())]


def shifted(notes, shift: int):
    onset, end, pitch = notes
    keep = (pitch + shift >= 0) & (pitch + shift < 128)
    return onset[keep], end[keep], pitch[keep] + shift


def best_local(a, b, points: int, heard_s: float, rng) -> list[float]:
    """For ``points`` places in a, the best overlap of any stretch of b (see the module docstring)."""
    len_a, len_b = float(a[1].max()), float(b[1].max())
    out = []
    for pos in rng.uniform(heard_s, len_a, size=points):
        ra = span_roll(a, pos, 1.0, heard_s)
        best = np.nan
        for tempo in {1.0, len_b / len_a}:
            for end in np.arange(heard_s * tempo, len_b + 1e-9, GRID_S):
                o = overlap(ra, span_roll(b, end, tempo, heard_s))
                if not np.isnan(o) and not (o <= best):
                    best = o
        out.append(best)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.same_notes", description=__doc__.split("\n\n")[0])
    p.add_argument("--chorales", default="../shared/data/midi/bach-chorales", help="the chorale corpus (with splits.csv)")
    p.add_argument("--rolls", required=True, help="the roll sets written as MIDI (W/bigcorpus/midi/rolls)")
    p.add_argument("--points", type=int, default=6, help="places compared per pair")
    p.add_argument("--pairs", type=int, default=120, help="pairs of other music sampled")
    p.add_argument("--spans", default="3,8", help="compared audio spans, s")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from benchmarks.same_music import SAME_MUSIC
    from tqdm import tqdm

    rng = np.random.default_rng(args.seed)
    chorales = Path(args.chorales)
    if not (chorales / "splits.csv").is_file():
        print(f"error: {chorales}/splits.csv not found; give --chorales the chorale corpus folder", file=sys.stderr)
        return 2
    if not any(Path(args.rolls).rglob("*.mid")):
        print(f"error: no .mid files under {args.rolls}; write the roll sets with "
              "`python -m benchmarks.big_corpus prepare` and give --rolls W/bigcorpus/midi/rolls", file=sys.stderr)
        return 2
    family = {r["file"].rsplit(".mid", 1)[0]: r["tune_family"] for r in csv.DictReader(open(chorales / "splits.csv"))}
    names = sorted(family)
    notes = {n: load_notes(chorales / f"{n}.mid") for n in tqdm(names, desc="chorales", unit="file")}
    roll_files = sorted(Path(args.rolls).rglob("*.mid"))
    roll_notes = {f: load_notes(f) for f in tqdm(roll_files, desc="roll sets", unit="file")}
    roll_files = [f for f in roll_files if len(roll_notes[f][0])]
    whole = [whole_roll(notes[n]) for n in names]
    copies = [(names[i], roll_files[j], s) for i, j, s in
              find_copies(whole, [whole_roll(roll_notes[f]) for f in roll_files], SAME_MUSIC)]
    inner = [(names[i], names[j], 0) for i, j, s in find_copies(whole, whole, SAME_MUSIC) if i < j and s == 0]
    copy_set = {(a, b) for a, b, _ in inner}
    settings = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                if family[a] == family[b] and (a, b) not in copy_set]
    others = []
    while len(others) < args.pairs:
        a, b = rng.choice(names, 2, replace=False)
        if family[a] != family[b]:
            others.append((a, b))
    print(f"{len(copies)} roll-set copies of chorales, {len(inner)} chorale pairs with the same notes, "
          f"{len(settings)} pairs of settings of one tune, {len(others)} pairs of other music")
    groups = {
        "copies (roll sets)": [(notes[a], shifted(roll_notes[f], s)) for a, f, s in copies],
        "copies (two numbers)": [(notes[a], notes[b]) for a, b, _ in inner],
        "one tune, another setting": [(notes[a], notes[b]) for a, b in settings],
        "other music": [(notes[a], notes[b]) for a, b in others],
    }
    marks = sorted({0.5, 0.6, 0.7, 0.8, SAME_NOTES})
    print(f"\nbest local overlap (Jaccard of duration rolls; the engine's threshold {SAME_NOTES})\n")
    print("| span | group | pairs | places | min | p5 | median | p95 | max | "
          + " | ".join(f">= {m:g}" for m in marks) + " |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(marks))
    for heard_s in (float(s) for s in args.spans.split(",")):
        for label, pairs in groups.items():
            vals = []
            for a, b in tqdm(pairs, desc=f"{label}, {heard_s:g} s", unit="pair", leave=False):
                vals += best_local(a, b, args.points, heard_s, rng)
            v = np.array([x for x in vals if not np.isnan(x)])
            if not len(v):
                continue
            q = np.quantile(v, [0, 0.05, 0.5, 0.95, 1])
            print(f"| {heard_s:g} s | {label} | {len(pairs)} | {len(v)} | "
                  + " | ".join(f"{x:.2f}" for x in q) + " | "
                  + " | ".join(f"{np.mean(v >= m):.1%}" for m in marks) + " |", flush=True)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
