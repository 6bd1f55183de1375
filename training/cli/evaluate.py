"""``training evaluate RUN``: the paper's two evaluations, learned model and chroma baseline."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..paths import data_root

    root = data_root()
    p = subparsers.add_parser(
        "evaluate", help="snippet retrieval and piece identification (synthesized and Bach10)",
        description="Evaluate RUN/best.pt as in Dorfer et al. (2018): two-way snippet retrieval "
                    "(2,000 pairs, R@1/5/10/25, MRR, median rank) on the test, test_slow and test_fast "
                    "splits and on the Bach10 recordings (pairs from their note alignment); piece "
                    "identification and performance retrieval (100 excerpts per query, each voting for "
                    "the pieces of its 25 nearest neighbours) on the test pieces and on Bach10 against "
                    "the full chorale corpus. The chroma baseline runs through the same protocols. "
                    "Writes RUN/metrics.json and RUN/figures/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="run folder written by `training train`")
    p.add_argument("--dataset", help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--bach10", default=str(root / "real" / "bach10"), help="Bach10 folder (NN-Name/ inside)")
    p.add_argument("--chorales", default=str(root / "midi" / "bach-chorales"),
                   help="chorale corpus: the database of the Bach10 piece identification")
    p.add_argument("--pairs", type=int, default=2000, help="snippet pairs per retrieval test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figures", help="figures folder (default RUN/figures)")
    p.add_argument("--no-cca", action="store_true", help="skip the post-hoc CCA measurement")
    p.add_argument("--snippets-only", action="store_true", help="skip piece identification (faster)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..evaluate.run import evaluate_run
    from ..evaluate.report import summary_lines

    torch.set_num_threads(args.threads)
    metrics = evaluate_run(args.run, dataset=args.dataset, bach10=args.bach10, chorales=args.chorales,
                           n_pairs=args.pairs, seed=args.seed, cca=not args.no_cca,
                           piece_eval=not args.snippets_only, figures_dir=args.figures)
    print("\n".join(summary_lines(metrics)))
    return 0
