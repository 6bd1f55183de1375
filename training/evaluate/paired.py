"""Paired differences between runs evaluated on the same snippet pairs, with bootstrap intervals.

The rule for shipping a new bundle is "better on Bach10 *and* piano, no worse on the
chorales". Two MRRs of 2,000 pairs each differ by a few thousandths from noise alone,
so the decision reads the per-pair difference: ``training evaluate --compare`` draws the
same seeded pairs for every run (:func:`training.evaluate.protocols.choose_pairs`),
keeps each run's per-pair ranks, and this module resamples the pairs (2,000 bootstrap
draws) for a 95 % interval of the MRR difference against the first run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIRECTIONS = ("audio2score", "score2audio")
N_BOOTSTRAP = 2000


def mrr_difference(ranks_a, ranks_b, *, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> dict:
    """MRR of b minus MRR of a over the same pairs: the difference and its 95 % bootstrap interval."""
    ra = 1.0 / np.asarray(ranks_a, np.float64)
    rb = 1.0 / np.asarray(ranks_b, np.float64)
    if ra.shape != rb.shape or ra.ndim != 1 or not len(ra):
        raise ValueError(f"per-pair ranks of shapes {ra.shape} and {rb.shape}; expected the same pairs")
    d = rb - ra
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    boot = d[idx].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"a": float(ra.mean()), "b": float(rb.mean()), "diff": float(d.mean()), "lo": float(lo),
            "hi": float(hi), "n": int(len(d))}


def paired_rows(results: dict) -> list[dict]:
    """Every later run against the first, per split and direction the two have per-pair ranks for."""
    runs = list(results)
    if len(runs) < 2:
        return []
    base = results[runs[0]].get("pair_ranks", {})
    rows = []
    for run in runs[1:]:
        other = results[run].get("pair_ranks", {})
        for split in base:
            if split not in other:
                continue
            for direction in DIRECTIONS:
                a, b = base[split].get(direction), other[split].get(direction)
                if a is None or b is None or len(a) != len(b):
                    continue  # a run evaluated with other --pairs: not the same pairs
                rows.append({"base": runs[0], "run": run, "split": split, "direction": direction,
                             **mrr_difference(a, b)})
    return rows


def paired_table(results: dict) -> str:
    """Markdown: MRR of the first run -> each later run, the difference and its 95 % interval."""
    rows = paired_rows(results)
    if not rows:
        return ""
    lines = [f"Paired against {Path(rows[0]['base']).name} (same pairs; 95 % bootstrap interval, "
             f"{N_BOOTSTRAP} resamples):", "",
             "| run | split | direction | MRR | difference [95 % interval] |", "|---|---|---|---|---|"]
    for r in rows:
        sure = "better" if r["lo"] > 0 else "worse" if r["hi"] < 0 else "tie"
        lines.append(f"| {Path(r['run']).name} | {r['split']} | {r['direction']} | {r['a']:.3f} -> {r['b']:.3f} "
                     f"| {r['diff']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] {sure} |")
    return "\n".join(lines)
