"""``training train DATASET -o RUN`` (every option of the shipped recipe) and ``training cca``."""

from __future__ import annotations

import argparse

EPILOG = """\
The shipped bundle (exported/default) was trained with:
  training train data/default -o runs/default_infonce_tempo --loss infonce --augment-tempo \\
      --max-minutes 70 --patience 3 --refinements 2

Model v2 (docs/results.md): fine-tuned from the shipped encoders on dataset v2, one
thread, in the background; rerun the same line to go on after any stop:
  nice -n 10 training train data/v2 -o runs/v2_finetune --init-from exported/default \\
      --loss infonce --lr 0.0002 --epoch-pairs 2000 --patience 3 --refinements 2 --threads 1

Rerunning the same command resumes from RUN/checkpoint.pt (--max-minutes and
--max-epochs may change between runs; any other change is refused: use --restart).
"""


def register(subparsers) -> None:
    from follower.snippets import SnippetConfig

    from ..augment.tempo import TempoAugmentConfig
    from ..fit.loop import TrainConfig
    from ..model.losses import LOSSES

    d = TrainConfig()
    tempo = TempoAugmentConfig()
    p = subparsers.add_parser(
        "train", help="train the audio and score encoders", epilog=EPILOG,
        description="Train the dual encoders of Dorfer et al. (2018) on DATASET's train pairs; early "
                    "stopping on validation MRR followed by learning-rate halving rounds from the best "
                    "weights. Writes RUN/log.csv (train loss, validation loss and MRR per epoch), "
                    "RUN/loss.png, RUN/best.pt, RUN/checkpoint.pt and RUN/run.json (every setting).",
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, max_help_position=32))
    p.add_argument("dataset", help="dataset folder written by `training dataset build`")
    p.add_argument("-o", "--out", required=True, help="run folder (created; resumed if it has a checkpoint)")
    g = p.add_argument_group("loss")
    g.add_argument("--loss", choices=tuple(LOSSES), default=d.loss,
                   help=f"hinge: the paper's ranking loss (margin {d.margin}); infonce: symmetric "
                        f"cross-entropy over the batch, as CLIP (default {d.loss})")
    g.add_argument("--temperature", type=float, default=d.temperature,
                   help=f"InfoNCE temperature (default {d.temperature})")
    g = p.add_argument_group("augmentation of the training audio (validation and test stay as rendered)")
    g.add_argument("--augment-tempo", action="store_true",
                   help=f"time-stretch {tempo.p_stretch:.0%}% of the snippets to {tempo.scale_range[0]}-"
                        f"{tempo.scale_range[1]} of the rendered tempo (real players are slower than "
                        "the MIDI: Bach10 at about 0.6-0.8)")
    g.add_argument("--augment-audio", action="store_true",
                   help="random EQ/tilt, reverb smear and noise floor on the spectrogram snippets")
    g.add_argument("--augment-partial", action="store_true",
                   help="silence the first frames of 30%% of the snippets, keeping 30-100%% of them: the "
                        "partly filled windows the follower hears when music starts")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epoch-pairs", type=int, default=d.epoch_pairs,
                   help=f"training pairs per epoch (default {d.epoch_pairs})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    g.add_argument("--lr", type=float, default=d.lr, help=f"initial Adam learning rate (default {d.lr})")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help=f"on the convolution weights (default {d.weight_decay})")
    g.add_argument("--patience", type=int, default=d.patience,
                   help=f"epochs without a better validation MRR before halving the learning rate "
                        f"(default {d.patience})")
    g.add_argument("--refinements", type=int, default=d.refinements,
                   help=f"learning-rate halving rounds before stopping (default {d.refinements})")
    g.add_argument("--valid-pairs", type=int, default=d.valid_pairs,
                   help=f"validation pairs for loss and MRR (default {d.valid_pairs})")
    g.add_argument("--max-epochs", type=int, default=d.max_epochs, help=f"default {d.max_epochs}")
    g.add_argument("--max-minutes", type=float, default=d.max_minutes,
                   help="wall-time cap; the run stops at an epoch boundary with the best weights kept "
                        "(default 0 = none)")
    g.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    g = p.add_argument_group("model size (the paper's: 24 filters, 32 dimensions)")
    g.add_argument("--base-filters", type=int, default=24, metavar="N",
                   help="filters of the first block of both encoders; the later blocks have 2N, 4N, 4N "
                        "(default 24; the audio encoder's cost per update grows about as N squared)")
    g.add_argument("--embed-dim", type=int, default=32, metavar="D",
                   help="embedding dimensions (default 32; the index grows with D)")
    g = p.add_argument_group("inputs and machine")
    g.add_argument("--roll-channels", default=",".join(SnippetConfig().roll_channels),
                   help="piano-roll channels the score encoder reads, comma-separated: sustain, onset "
                        f"(default {','.join(SnippetConfig().roll_channels)})")
    g.add_argument("--threads", type=int, default=d.threads,
                   help=f"torch CPU threads (default {d.threads}; 1 per run when runs share the cores)")
    g.add_argument("--device", default="cpu",
                   help="torch device to train on: cpu (default) or cuda; a run may resume on another one")
    g.add_argument("--init-from", metavar="BUNDLE", default=None,
                   help="start from a bundle's encoders (e.g. exported/default) instead of random weights; "
                        "its validation MRR is epoch 0, kept until an epoch beats it")
    g.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    g.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
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

    from follower.errors import ConfigError

    from ..augment.acoustic import AudioAugmentConfig, AugmentedSplit
    from ..augment.partial import PartialWindowConfig, PartialWindowSplit
    from ..augment.tempo import TempoAugmentConfig, TempoStretchedSplit
    from ..data.split import dataset_configs, dataset_info, load_split
    from ..fit.loop import TrainConfig, train
    from ..model.encoders import ModelConfig

    cfg = TrainConfig(loss=args.loss, temperature=args.temperature, lr=args.lr, batch_size=args.batch_size,
                      weight_decay=args.weight_decay, epoch_pairs=args.epoch_pairs, valid_pairs=args.valid_pairs,
                      patience=args.patience, refinements=args.refinements, max_epochs=args.max_epochs,
                      max_minutes=args.max_minutes, seed=args.seed, threads=args.threads)
    channels = [c.strip() for c in args.roll_channels.split(",") if c.strip()]
    snippets, features = dataset_configs(args.dataset, channels)
    ds = dataset_info(args.dataset)
    print(f"loading {args.dataset} ...", flush=True)
    train_split = load_split(args.dataset, "train", snippets)
    valid_split = load_split(args.dataset, "valid", snippets)
    variant = {"loss": cfg.loss, "temperature": cfg.temperature if cfg.loss == "infonce" else None,
               "augment_audio": None, "augment_tempo": None, "augment_partial": None}
    if args.augment_tempo:  # stretch first: the acoustic effects then act on the stretched snippet
        tempo = TempoAugmentConfig()
        train_split = TempoStretchedSplit(train_split, tempo, seed=cfg.seed + 3)
        variant["augment_tempo"] = tempo.to_dict()
    if args.augment_audio:
        aug = AudioAugmentConfig(frame_rate_hz=features.frame_rate_hz)
        train_split = AugmentedSplit(train_split, aug, seed=cfg.seed + 2)
        variant["augment_audio"] = aug.to_dict()
    if args.augment_partial:  # last: a window fills from silence whatever was played into it
        partial = PartialWindowConfig()
        train_split = PartialWindowSplit(train_split, partial, seed=cfg.seed + 4)
        variant["augment_partial"] = partial.to_dict()
    model_config = ModelConfig.for_snippets(snippets, features, base_filters=args.base_filters,
                                            embed_dim=args.embed_dim)
    init_model = None
    if args.init_from:
        import numpy as np

        from ..model.from_onnx import model_from_bundle

        variant["init_from"] = str(Path(args.init_from).resolve())
        # BatchNorm statistics from training inputs: the batches fine-tuning will see
        idx = np.sort(np.random.default_rng(cfg.seed + 5).choice(len(train_split.pairs),
                                                                 min(500, len(train_split.pairs)), replace=False))
        init_model, init_snip, init_feat, init_info = model_from_bundle(
            args.init_from, calibration={"audio": train_split.audio_batch(idx), "roll": train_split.roll_batch(idx)})
        if init_snip != snippets or init_feat != features:
            raise ConfigError(f"{args.init_from} reads other snippets or features than {args.dataset} "
                              "(roll channels, frames, spectrogram settings); they must match to start from it")
        print(f"starting from {args.init_from} (fingerprint {init_info['from_bundle']['fingerprint']}, "
              f"torch vs onnx max diff {max(init_info['from_bundle']['max_abs_diff_vs_onnx'].values()):.1e})",
              flush=True)
    _refuse_other_variant(Path(args.out), variant, args.restart)
    print(f"{len(train_split.pairs)} training pairs, {len(valid_split.pairs)} validation pairs; "
          f"loss {cfg.loss}, tempo stretch {'on' if args.augment_tempo else 'off'}, "
          f"audio augmentation {'on' if args.augment_audio else 'off'}, "
          f"partial windows {'on' if args.augment_partial else 'off'}, "
          f"roll channels {','.join(snippets.roll_channels)}", flush=True)
    info = {"dataset": str(Path(args.dataset).resolve()), "train_pairs": int(len(train_split.pairs)),
            "valid_pairs": int(len(valid_split.pairs)), "variant": variant,
            "corpora": [c.get("path") for c in ds.get("config", {}).get("corpora", [])],
            "train_soundfonts": ds.get("config", {}).get("train_soundfonts"),
            "test_soundfont": ds.get("config", {}).get("test_soundfont")}
    train(train_split, valid_split, args.out, cfg, restart=args.restart,
          model_config=model_config, snippet_config=snippets,
          feature_config=features, info=info, progress=not args.no_progress, init_model=init_model,
          device=args.device)
    return 0


def _refuse_other_variant(run, variant: dict, restart: bool) -> None:
    """A run resumed with another loss or augmentation would silently mix two variants."""
    import json

    from follower.errors import ConfigError

    from ..run_dir import CHECKPOINT, RUN_JSON

    if restart or not (run / CHECKPOINT).is_file() or not (run / RUN_JSON).is_file():
        return
    before = json.loads((run / RUN_JSON).read_text()).get("info", {}).get("variant")
    before = dict(before or {"loss": "hinge", "temperature": None, "augment_audio": None})  # no variant recorded
    before.setdefault("augment_tempo", None)  # runs from before the tempo stretch existed
    before.setdefault("augment_partial", None)  # runs from before partial windows existed
    before.setdefault("init_from", None)      # runs from before warm starts existed
    variant = {"init_from": None, **variant}
    if before != variant:
        raise ConfigError(f"{run} was trained with variant {before}, not {variant}; use the same options "
                          "to resume, or --restart to start over")
