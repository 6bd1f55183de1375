"""Snippet retrieval against encoder width: the figure of docs/results.md, "Bundle v4".

    python -m studies.width_figure CHORALES.json PIANO.json -o FIGURE.png

CHORALES.json and PIANO.json are what ``training evaluate RUN... --compare -o X.md`` writes
beside X.md (the chorale test with Bach10, and the piano test). Every run is drawn at its
``base_filters`` (read from its run.json), filled where it was trained with ``--augment-audio``;
the run named ``shipped`` is a dashed line. The y axis is audio->score MRR on each test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PANELS = (("chorales", "test", "rendered chorales"), ("chorales", "bach10", "Bach10 (real recordings)"),
          ("piano", "test", "rendered piano (held-out soundfont)"))


def mrr(ranks) -> float:
    from training.evaluate.metrics import retrieval_metrics

    return retrieval_metrics(ranks)["mrr"]


def run_width(run: str) -> int:
    return int(json.loads((Path(run) / "run.json").read_text())["model_config"]["base_filters"])


def draw(tables: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 3.4))
    for ax, (table, split, title) in zip(axes, PANELS):
        runs = tables[table]
        for run, m in runs.items():
            value = mrr(m["pair_ranks"][split]["audio2score"])
            if Path(run).name == "shipped":
                ax.axhline(value, color="grey", ls="--", lw=1, label="bundle v3 (24, fine-tuned)")
                continue
            augmented = bool((m.get("variant") or {}).get("augment_audio"))
            ax.plot(run_width(run), value, "o", ms=7, color="C0" if augmented else "C1",
                    mfc="C0" if augmented else "none",
                    label="random start, --augment-audio" if augmented else "random start, no augmentation")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("--base-filters")
        ax.set_xticks([24, 32, 40, 48])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("audio→score MRR")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.width_figure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("chorales", help="compare JSON of the chorale test (with Bach10)")
    p.add_argument("piano", help="compare JSON of the piano test")
    p.add_argument("-o", "--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    try:
        tables = {"chorales": json.loads(Path(args.chorales).read_text()),
                  "piano": json.loads(Path(args.piano).read_text())}
        draw(tables, Path(args.out))
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e.__class__.__name__}: {e} (give the .json files that training evaluate --compare -o "
              "writes, with the run folders still in place)", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
