"""``training student-audio BUNDLE -o RUN --dataset DATA``: a narrower audio encoder in the bundle's space."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
Train (resumable: the same line goes on after any stop; --max-minutes caps one call):

  training student-audio exported/default -o runs/student16 --dataset data/v2 \\
      --base-filters 16 --augment-audio --device cuda

then write the bundle (the score encoder, its indexes and the partial-window encoder are
kept; quantise the new float encoder to int8 as the shipped one is):

  training student-audio exported/default -o runs/student16 --write exported/student16
  training quantize exported/student16 -o exported/student16 --audio FILE...

On a lent GPU machine the same run goes through training/remote/train_on_gpu.sh
(MODE=student-audio).
"""


def register(subparsers) -> None:
    from ..fit.student_audio import StudentAudioConfig

    d = StudentAudioConfig()
    p = subparsers.add_parser(
        "student-audio", help="a narrower audio encoder trained into the bundle's embedding space (cheaper updates)",
        description="Train an audio encoder of fewer filters from random weights against the bundle's fixed score "
                    "encoder (InfoNCE to the pair's score embedding, plus a distillation term: 1 - cosine to the "
                    "bundle's own audio embedding of the same window), with early stopping on the validation MRR; "
                    "with --write, put the run's best student into a copy of the bundle as its audio encoder. "
                    "The score encoder and every index built with it stay valid.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder whose score encoder (and audio encoder, as teacher) to use")
    p.add_argument("-o", "--out", required=True, help="run folder (created; resumed if it has a checkpoint)")
    p.add_argument("--dataset", help="dataset folder of `training dataset build` (train and valid): train")
    p.add_argument("--write", metavar="OUT", help="instead of training: write bundle OUT (may be BUNDLE) with the "
                                                  "run's best student as its audio encoder")
    p.add_argument("--base-filters", type=int, default=d.base_filters,
                   help="filters of the student's first block; later blocks 2x, 4x, 4x (default %(default)s; the "
                        "cost per window grows about as the square)")
    p.add_argument("--distill-weight", type=float, default=d.distill_weight,
                   help="weight of 1 - cosine to the bundle's audio embedding (default %(default)s; 0: InfoNCE only)")
    p.add_argument("--augment-audio", action="store_true", help="rooms, microphones and noise on training snippets")
    p.add_argument("--augment-tempo", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                   help="time-stretch half of the training snippets to LOW-HIGH times their rendered tempo")
    p.add_argument("--lr", type=float, default=d.lr, help="initial Adam learning rate (default %(default)s)")
    p.add_argument("--epoch-pairs", type=int, default=d.epoch_pairs, help="default %(default)s")
    p.add_argument("--patience", type=int, default=d.patience, help="default %(default)s")
    p.add_argument("--refinements", type=int, default=d.refinements, help="default %(default)s")
    p.add_argument("--max-epochs", type=int, default=d.max_epochs, help="default %(default)s")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="wall-time cap of this call; rerun to go on (default 0 = none)")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda; a run may resume on another one")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from follower.bundle import read_config, verify
    from follower.errors import ConfigError

    from ..data.split import load_split
    from ..fit.student_audio import StudentAudioConfig, train_student_audio, write_bundle

    if args.write:
        out = write_bundle(args.bundle, args.out, args.write)
        print(f"wrote {args.write} (bundle {out['fingerprint']}; its indexes are unchanged): audio encoder of "
              f"{out['config']['base_filters']} filters from epoch {out['epoch']}, validation MRR "
              f"{out['valid_mrr']:.3f} (the bundle's own {out['teacher']['valid_mrr']:.3f}); "
              f"quantise it with `training quantize {args.write} -o {args.write} --audio FILE...`")
        return 0
    if not args.dataset:
        raise ConfigError("give --dataset DATA to train, or --write OUT to write a bundle from the run")
    torch.set_num_threads(args.threads)
    cfg = read_config(args.bundle)
    verify(args.bundle, cfg)
    scfg = StudentAudioConfig(base_filters=args.base_filters, distill_weight=args.distill_weight, lr=args.lr,
                              epoch_pairs=args.epoch_pairs, patience=args.patience, refinements=args.refinements,
                              max_epochs=args.max_epochs, seed=args.seed, augment_audio=args.augment_audio,
                              tempo_range=tuple(args.augment_tempo) if args.augment_tempo else None)
    train, valid = (load_split(args.dataset, name, cfg.snippets) for name in ("train", "valid"))
    r = train_student_audio(scfg, args.bundle, train, valid, Path(args.out), device=args.device,
                            max_minutes=args.max_minutes, progress=not args.no_progress)
    done = f"stopped by {r['stopped']}" if r["stopped"] else "rerun the same line to go on"
    print(f"best epoch {r['best_epoch']}: validation MRR {r['best'] or 0:.3f} (the bundle's audio encoder "
          f"{r['teacher']:.3f}); {r['epochs']} epochs, {done}")
    return 0
