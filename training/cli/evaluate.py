"""``training evaluate RUN [RUN ...]``: the paper's two evaluations, or a comparison of several runs."""

from __future__ import annotations

import argparse

EPILOG = """\
One RUN: the full evaluation of the learned model beside the chroma baseline,
written to RUN/metrics.json and RUN/figures/ (what `training export` ships in
metrics.json). Several RUNs (or --compare): the learned-model part only, on the
same pair subsets for every run, each split loaded once; one row per run in a
markdown table (docs/improvements.md), RUN/compare_metrics.json per run; with two or
more runs also each later run's per-pair MRR difference against the first, with a 95 %
bootstrap interval (what the rule for shipping a bundle reads: better, worse or a tie).

examples:
  training evaluate runs/default_infonce_tempo --figures docs/figures/shipped
  training evaluate runs/a runs/b runs/c --threads 1 --reuse -o docs/compare.md
"""


def register(subparsers) -> None:
    from ..evaluate.run import BACH10_SCALES
    from ..paths import data_root

    root = data_root()
    p = subparsers.add_parser(
        "evaluate", help="snippet retrieval and piece identification (synthesized and Bach10); compare runs",
        description="Evaluate RUN/best.pt as in Dorfer et al. (2018): two-way snippet retrieval "
                    "(2,000 pairs, R@1/5/10/25, MRR, median rank) on the test, test_slow and test_fast "
                    "splits and on the Bach10 recordings (pairs from their note alignment); piece "
                    "identification and performance retrieval (100 excerpts per query, each voting for "
                    "the pieces of its 25 nearest neighbours) on the test pieces and on Bach10 against "
                    "the full chorale corpus. The chroma baseline runs through the same protocols.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) written by `training train`")
    p.add_argument("--dataset", help="dataset folder (default: the one the (first) run was trained on)")
    p.add_argument("--bach10", default=str(root / "real" / "bach10"),
                   help="Bach10 folder, NN-Name/ inside (default: %(default)s)")
    p.add_argument("--chorales", default=str(root / "midi" / "bach-chorales"),
                   help="chorale corpus: the database of the Bach10 piece identification (default: %(default)s)")
    p.add_argument("--pairs", type=int, default=2000, help="snippet pairs per retrieval test (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    p.add_argument("--threads", type=int, default=2,
                   help="torch CPU threads (default %(default)s; 1 when the cores are shared: "
                        "oversubscribed OpenMP threads spin)")
    g = p.add_argument_group("one run")
    g.add_argument("--figures", help="figures folder (default RUN/figures)")
    g.add_argument("--no-cca", action="store_true", help="skip the post-hoc CCA measurement")
    g.add_argument("--snippets-only", action="store_true", help="skip piece identification (faster)")
    g = p.add_argument_group("several runs")
    g.add_argument("--compare", action="store_true", help="the comparison table even for a single RUN")
    g.add_argument("--reuse", action="store_true", help="take RUN/compare_metrics.json where it exists")
    g.add_argument("--piece-index", metavar="INDEX",
                   help="also identify the test renders against every piece of this follower index (e.g. "
                        "`follower index build ../shared/data/midi/piano-midi` for all of piano-midi.de), built "
                        "with the runs' score encoder")
    g.add_argument("--bach10-scales", default=",".join(map(str, BACH10_SCALES)),
                   help="tempo scales of the chorale database for Bach10 piece identification, 1.0 first "
                        "(default: %(default)s)")
    g.add_argument("-o", "--out", help="also write the table (markdown) and all metrics (.json beside it)")
    p.set_defaults(func=run)


def _run_dataset(run) -> str | None:
    import json
    from pathlib import Path

    from ..run_dir import RUN_JSON

    path = Path(run) / RUN_JSON
    return json.loads(path.read_text()).get("info", {}).get("dataset") if path.is_file() else None


def run(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    if len(args.runs) > 1 or args.compare:
        return _compare(args)
    from ..evaluate.report import summary_lines
    from ..evaluate.run import evaluate_run

    metrics = evaluate_run(args.runs[0], dataset=args.dataset, bach10=args.bach10, chorales=args.chorales,
                           n_pairs=args.pairs, seed=args.seed, cca=not args.no_cca,
                           piece_eval=not args.snippets_only, figures_dir=args.figures)
    print("\n".join(summary_lines(metrics)))
    return 0


def _compare(args) -> int:
    import json
    from pathlib import Path

    from follower.errors import ConfigError

    from ..evaluate.compare import compare_runs, comparison_table
    from ..evaluate.paired import paired_table

    dataset = args.dataset or _run_dataset(args.runs[0])
    if not dataset or not Path(dataset, "dataset.json").is_file():
        raise ConfigError(f"{dataset or args.runs[0]}: no dataset to compare on (no dataset.json); "
                          "give --dataset DIR")
    try:
        scales = [float(x) for x in args.bach10_scales.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--bach10-scales {args.bach10_scales!r}; expected numbers such as 1.0,0.7") from None
    results = compare_runs(args.runs, dataset=dataset, bach10=args.bach10, chorales=args.chorales,
                           n_pairs=args.pairs, seed=args.seed, bach10_scales=scales, reuse=args.reuse,
                           piece_index=args.piece_index)
    table = comparison_table(results)
    paired = paired_table(results)  # empty for one run, or runs evaluated on other pairs
    if paired:
        table += "\n\n" + paired
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0
