"""``training train DATASET -o RUN``: train the two encoders (resumable)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train the audio and score encoders",
        description="Train the dual encoders of Dorfer et al. (2018) on DATASET's train pairs with "
                    "the pairwise ranking loss; early stopping on validation MRR followed by "
                    "learning-rate halving rounds from the best weights. Writes RUN/log.csv (train "
                    "loss, validation loss and MRR per epoch), RUN/loss.png, RUN/best.pt and "
                    "RUN/checkpoint.pt; rerunning the same command resumes from the checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("dataset", help="dataset folder written by `training dataset build`")
    p.add_argument("-o", "--out", required=True, help="run folder (created; resumed if it has a checkpoint)")
    p.add_argument("--epoch-pairs", type=int, default=10_000, help="training pairs per epoch")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.002, help="initial Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--patience", type=int, default=5,
                   help="epochs without a better validation MRR before halving the learning rate")
    p.add_argument("--refinements", type=int, default=3, help="learning-rate halving rounds before stopping")
    p.add_argument("--valid-pairs", type=int, default=2000, help="validation pairs for loss and MRR")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=0.0, help="wall-time cap, 0 = none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--roll-channels", default="sustain,onset",
                   help="piano-roll channels the score encoder reads (comma-separated: sustain, onset)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=run)

    c = subparsers.add_parser(
        "cca", help="add the paper's CCA layer to a trained run (post hoc)",
        description="Fit a linear CCA on the embeddings of training pairs of RUN/best.pt and write "
                    "RUN_CCA/best.pt with it as a fixed projection at the end of both encoders "
                    "(then evaluate and export RUN_CCA as any run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("run", help="run folder written by `training train`")
    c.add_argument("-o", "--out", required=True, help="new run folder")
    c.add_argument("--dataset", help="dataset folder (default: the run's)")
    c.add_argument("--pairs", type=int, default=5000, help="training pairs to fit the CCA on")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=run_cca)


def run_cca(args) -> int:
    import torch

    from ..fit.cca import fit_cca_run

    torch.set_num_threads(2)
    info = fit_cca_run(args.run, args.out, dataset=args.dataset, n_pairs=args.pairs, seed=args.seed)
    print(f"wrote {args.out}/best.pt; canonical correlations {info['canonical_correlations'][:4]} ...")
    print(f"validation MRR without CCA {info['valid_mrr_without']}, with {info['valid_mrr_with']}")
    return 0


def run(args) -> int:
    from pathlib import Path

    from ..data.split import dataset_configs, dataset_info, load_split
    from ..model.encoders import ModelConfig
    from ..fit.loop import TrainConfig, train

    cfg = TrainConfig(lr=args.lr, batch_size=args.batch_size, weight_decay=args.weight_decay,
                      epoch_pairs=args.epoch_pairs, valid_pairs=args.valid_pairs, patience=args.patience,
                      refinements=args.refinements, max_epochs=args.max_epochs,
                      max_minutes=args.max_minutes, seed=args.seed, threads=args.threads)
    channels = [c.strip() for c in args.roll_channels.split(",") if c.strip()]
    snippets, features = dataset_configs(args.dataset, channels)
    ds = dataset_info(args.dataset)
    print(f"loading {args.dataset} ...", flush=True)
    train_split = load_split(args.dataset, "train", snippets)
    valid_split = load_split(args.dataset, "valid", snippets)
    print(f"{len(train_split.pairs)} training pairs, {len(valid_split.pairs)} validation pairs", flush=True)
    info = {"dataset": str(Path(args.dataset).resolve()), "train_pairs": int(len(train_split.pairs)),
            "valid_pairs": int(len(valid_split.pairs)),
            "dataset_settings": {k: v for k, v in ds.items() if k in ("summary",)},
            "corpora": [c.get("path") for c in ds.get("config", {}).get("corpora", [])],
            "train_soundfonts": ds.get("config", {}).get("train_soundfonts"),
            "test_soundfont": ds.get("config", {}).get("test_soundfont")}
    train(train_split, valid_split, args.out, cfg, restart=args.restart, model_config=ModelConfig.for_snippets(snippets, features),
          snippet_config=snippets, feature_config=features, info=info, progress=not args.no_progress)
    return 0
