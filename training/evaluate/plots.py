"""Figures of ``training evaluate``: rank histograms, a similarity matrix, piece-identification bars."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..run_dir import LOSS_PNG

NAMES = {"learned": "learned (CNN)", "baseline_chroma": "chroma baseline"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rank_histograms(out: Path, ranks: dict) -> None:
    plt = _plt()
    splits = sorted({s for _, s in ranks}, key=lambda s: ["test", "test_slow", "test_fast", "bach10"].index(s)
                    if s in ("test", "test_slow", "test_fast", "bach10") else 9)
    for split in splits:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
        for ax, direction in zip(axes, ("audio2score", "score2audio")):
            for name in ("learned", "baseline_chroma"):
                r = ranks.get((name, split), {}).get(direction)
                if r is None:
                    continue
                bins = np.unique(np.round(np.logspace(0, np.log10(max(r.max(), 2) + 1), 30)))
                ax.hist(r, bins=bins, alpha=0.55, label=f"{NAMES[name]} (median {np.median(r):.0f})")
            ax.set_xscale("log")
            ax.set_xlabel("rank of the true counterpart")
            ax.set_title(f"{split}: {direction.replace('2', ' -> ')}", fontsize=9)
            ax.legend(fontsize=7)
        axes[0].set_ylabel("queries")
        fig.tight_layout()
        fig.savefig(out / f"rank_hist_{split}.png", dpi=110)
        plt.close(fig)


def similarity_matrix(out: Path, example: dict) -> None:
    plt = _plt()
    sim, pos = example["sim"], example["position_s"]
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(sim, cmap="magma", origin="lower", aspect="auto",
                   extent=(pos[0], pos[-1], pos[0], pos[-1]))
    ax.set_xlabel("score snippet position (s, MIDI timeline)")
    ax.set_ylabel("audio snippet position (s, MIDI timeline)")
    ax.set_title(f"cosine similarity, test piece {example['piece']}", fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(out / "similarity_test_piece.png", dpi=110)
    plt.close(fig)


def piece_bars(out: Path, metrics: dict) -> None:
    plt = _plt()
    rows = []
    for group in ("piece_identification", "performance_retrieval"):
        for split, v in metrics.get(group, {}).items():
            b = metrics.get("baseline_chroma", {}).get(group, {}).get(split)
            rows.append((f"{'piece id' if group == 'piece_identification' else 'perf. retr.'}\n{split}",
                         v["rank_1"]["ratio"], b["rank_1"]["ratio"] if b else np.nan))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 3.6))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label=NAMES["learned"])
    ax.bar(x + 0.2, [r[2] for r in rows], 0.4, label=NAMES["baseline_chroma"])
    ax.set_xticks(x, [r[0] for r in rows], fontsize=7)
    ax.set_ylabel("ratio identified at rank 1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "piece_identification.png", dpi=110)
    plt.close(fig)


def write_figures(out: Path, metrics: dict, plots: dict, run: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rank_histograms(out, plots.get("ranks", {}))
    if "similarity" in plots:
        similarity_matrix(out, plots["similarity"])
    piece_bars(out, metrics)
    if (run / LOSS_PNG).is_file():
        shutil.copy(run / LOSS_PNG, out / "training_curves.png")
