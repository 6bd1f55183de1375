"""``python -m training.cli.experiments train DATASET -o RUN [--loss infonce] [--augment-audio]``.

The variants of docs/improvements.md on the same training loop as ``training train``
(:func:`training.fit.loop.train`): every option of ``training train`` (the same parser),
plus the loss (``--loss hinge|infonce``, ``--temperature``) and the acoustic
augmentation of the training audio (``--augment-audio``, :mod:`training.augment.acoustic`)
and the time-stretch of the training audio to slower tempi (``--augment-tempo``,
:mod:`training.augment.tempo`).
With neither option it trains exactly what ``training train`` trains. The variant is
recorded in RUN/run.json (``info.variant``); ``training evaluate RUN`` and
``training export RUN`` work on the result as on any run.
"""

from __future__ import annotations

import sys

from follower.cliutil import main_for
from follower.errors import ConfigError

DESCRIPTION = """\
Training variants for docs/improvements.md (same loop and options as `training train`):

  python -m training.cli.experiments train DATASET -o RUN --loss infonce
  python -m training.cli.experiments train DATASET -o RUN --augment-audio
  python -m training.cli.experiments train DATASET -o RUN --loss infonce --augment-tempo
"""


def register(subparsers) -> None:
    from . import train as train_cli

    train_cli.register(subparsers)
    p = subparsers.choices["train"]
    p.description = (p.description or "") + (
        " Variants: --loss infonce (symmetric InfoNCE at a fixed temperature instead of the "
        "ranking hinge loss) and --augment-audio (random EQ, reverb smear and noise floor on "
        "the training spectrogram snippets) and --augment-tempo (time-stretch half of the training "
        "audio snippets to 0.6-1.0 of their rendered tempo).")
    p.add_argument("--loss", choices=("hinge", "infonce"), default="hinge",
                   help="hinge: the paper's ranking loss (margin 0.7); infonce: symmetric cross-entropy")
    p.add_argument("--temperature", type=float, default=0.1, help="InfoNCE temperature")
    p.add_argument("--augment-audio", action="store_true",
                   help="augment training audio snippets (EQ/tilt, reverb smear, noise floor)")
    p.add_argument("--augment-tempo", action="store_true",
                   help="time-stretch half of the training audio snippets to 0.6-1.0 of the rendered tempo "
                        "(real performers play slower than the MIDI: Bach10 at about 0.6-0.8)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..augment.acoustic import AudioAugmentConfig, AugmentedSplit
    from ..augment.tempo import TempoAugmentConfig, TempoStretchedSplit
    from ..data.split import dataset_configs, dataset_info, load_split
    from ..model.contrastive import make_loss
    from ..model.encoders import ModelConfig
    from ..fit.loop import TrainConfig, train

    cfg = TrainConfig(lr=args.lr, batch_size=args.batch_size, weight_decay=args.weight_decay,
                      epoch_pairs=args.epoch_pairs, valid_pairs=args.valid_pairs, patience=args.patience,
                      refinements=args.refinements, max_epochs=args.max_epochs,
                      max_minutes=args.max_minutes, seed=args.seed, threads=args.threads)
    loss_fn = make_loss(args.loss, margin=cfg.margin, temperature=args.temperature)
    channels = [c.strip() for c in getattr(args, "roll_channels", "").split(",") if c.strip()]
    snippets, features = dataset_configs(args.dataset, channels) if channels else dataset_configs(args.dataset)
    ds = dataset_info(args.dataset)
    print(f"loading {args.dataset} ...", flush=True)
    train_split = load_split(args.dataset, "train", snippets)
    valid_split = load_split(args.dataset, "valid", snippets)
    variant = {"loss": args.loss, "temperature": args.temperature if args.loss == "infonce" else None,
               "augment_audio": None, "augment_tempo": None}
    if args.augment_tempo:  # stretch first: the acoustic effects then act on the stretched snippet
        tempo = TempoAugmentConfig()
        train_split = TempoStretchedSplit(train_split, tempo, seed=args.seed + 3)
        variant["augment_tempo"] = tempo.to_dict()
    if args.augment_audio:
        aug = AudioAugmentConfig(frame_rate_hz=features.frame_rate_hz)
        train_split = AugmentedSplit(train_split, aug, seed=args.seed + 2)
        variant["augment_audio"] = aug.to_dict()
    _refuse_other_variant(Path(args.out), variant, args.restart)
    print(f"{len(train_split.pairs)} training pairs, {len(valid_split.pairs)} validation pairs; "
          f"loss {args.loss}, audio augmentation {'on' if args.augment_audio else 'off'}, "
          f"tempo stretch {'on' if args.augment_tempo else 'off'}, "
          f"roll channels {','.join(snippets.roll_channels)}", flush=True)
    info = {"dataset": str(Path(args.dataset).resolve()), "train_pairs": int(len(train_split.pairs)),
            "valid_pairs": int(len(valid_split.pairs)), "variant": variant,
            "corpora": [c.get("path") for c in ds.get("config", {}).get("corpora", [])],
            "train_soundfonts": ds.get("config", {}).get("train_soundfonts"),
            "test_soundfont": ds.get("config", {}).get("test_soundfont")}
    train(train_split, valid_split, args.out, cfg, restart=args.restart,
          model_config=ModelConfig.for_snippets(snippets, features), snippet_config=snippets,
          feature_config=features, info=info, progress=not args.no_progress, loss_fn=loss_fn)
    return 0


def _refuse_other_variant(run, variant: dict, restart: bool) -> None:
    """A run resumed with another loss or augmentation would silently mix two variants."""
    import json

    from ..run_dir import CHECKPOINT, RUN_JSON

    if restart or not (run / CHECKPOINT).is_file() or not (run / RUN_JSON).is_file():
        return
    before = json.loads((run / RUN_JSON).read_text()).get("info", {}).get("variant")
    before = dict(before or {"loss": "hinge", "temperature": None, "augment_audio": None})  # `training train`
    before.setdefault("augment_tempo", None)  # runs from before --augment-tempo existed
    if before != variant:
        raise ConfigError(f"{run} was trained with variant {before}, not {variant}; use the same options "
                          "to resume, or --restart to start over")


def main(argv=None) -> int:
    return main_for("python -m training.cli.experiments", DESCRIPTION, [sys.modules[__name__]], argv)


if __name__ == "__main__":
    sys.exit(main())
