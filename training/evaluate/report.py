"""Markdown tables of a metrics.json (printed by ``training evaluate``, pasted in docs/results.md)."""

from __future__ import annotations

SPLIT_ORDER = ("test", "test_slow", "test_fast", "bach10", "bach10_multitempo")
METHODS = (("learned", None), ("chroma", "baseline_chroma"))


def _group(metrics, key, group):
    return (metrics.get(key, {}) if key else metrics).get(group, {})


def snippet_table(metrics: dict) -> list:
    lines = ["| data | direction | method | R@1 | R@5 | R@10 | R@25 | MRR | median rank | n |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for split in SPLIT_ORDER:
        for direction in ("audio2score", "score2audio"):
            for label, key in METHODS:
                m = _group(metrics, key, "snippet").get(split, {}).get(direction)
                if m:
                    lines.append(f"| {split} | {direction.replace('2', ' → ')} | {label} | {m['r@1']:.3f} | "
                                 f"{m['r@5']:.3f} | {m['r@10']:.3f} | {m['r@25']:.3f} | {m['mrr']:.3f} | "
                                 f"{m['median_rank']:g} | {m['n']} |")
    return lines


def piece_table(metrics: dict) -> list:
    lines = ["| task | data | method | rank 1 | rank ≤ 5 | rank ≤ 10 | rank > 10 | n |",
             "|---|---|---|---|---|---|---|---|"]
    for group, label_g in (("piece_identification", "piece identification (audio → scores)"),
                           ("performance_retrieval", "performance retrieval (score → audio)")):
        for split in SPLIT_ORDER:
            for label, key in METHODS:
                m = _group(metrics, key, group).get(split)
                if m:
                    cells = " | ".join(f"{m[b]['count']} ({m[b]['ratio']:.2f})"
                                       for b in ("rank_1", "rank_le_5", "rank_le_10", "rank_gt_10"))
                    lines.append(f"| {label_g} | {split} | {label} | {cells} | {m['n']} |")
    return lines


def summary_lines(metrics: dict) -> list:
    out = ["", "Two-way snippet retrieval", ""] + snippet_table(metrics)
    if metrics.get("piece_identification"):
        out += ["", "Piece identification / performance retrieval", ""] + piece_table(metrics)
    cca = metrics.get("cca_posthoc")
    if cca:
        out += ["", f"post-hoc CCA (fitted on {cca['fit_pairs']} training pairs), test MRR audio→score: "
                    f"{cca['test_without']['audio2score']['mrr']:.3f} without, "
                    f"{cca['test_with']['audio2score']['mrr']:.3f} with"]
    return out
