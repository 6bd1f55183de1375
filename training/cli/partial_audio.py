"""``training partial-audio BUNDLE -o OUT --dataset DATA``: add an audio encoder for the windows of music starting."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
The shipped encoder (exported/default/audio_encoder.partial.onnx) was made by:

  training dataset build --preset v2 --cache data/v2-cache --train-renders 1 \\
      --max-per-split 20,6,0 --max-pairs-per-render 100 --max-valid-pairs-per-render 64 -o data/v2bal
  training partial-audio exported/default -o exported/default --dataset data/v2bal

The bundle's score encoder and its indexes stay as they are; the bundle's fingerprint
changes (the follower's first windows are embedded by the new encoder). Stopped, the
same line resumes from --checkpoint.
"""


def register(subparsers) -> None:
    from ..fit.partial_audio import PartialAudioConfig

    d = PartialAudioConfig()
    p = subparsers.add_parser(
        "partial-audio", help="fine-tune an audio encoder for partly filled windows (the music starting)",
        description="Fine-tune a copy of the bundle's audio encoder on training snippets whose first frames are "
                    "silenced (30-100 % of each kept), against the bundle's fixed score embeddings, and add it "
                    "to the bundle as audio_encoder.partial.onnx: the follower embeds a window with it while the "
                    "window's first frames are silent, as when the music starts. The best epoch by the "
                    "validation MRR of such windows is kept; it is written only if it beats the full-window "
                    "encoder there.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder (written by `training export`)")
    p.add_argument("-o", "--out", required=True, help="bundle folder to write (may be BUNDLE)")
    p.add_argument("--dataset", required=True, help="dataset folder of `training dataset build` (train and valid)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file, written after every epoch (default runs/partial-audio/checkpoint.pt)")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="default %(default)s; a stopped run given more goes on from --checkpoint")
    p.add_argument("--patience", type=int, default=d.patience, help="default %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default %(default)s)")
    p.add_argument("--augment-tempo", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                   help="time-stretch half of the training snippets to LOW-HIGH times their rendered tempo "
                        "(e.g. 0.5 1.6: real players leave the written tempo both ways); default: no stretch")
    p.add_argument("--augment-audio", action="store_true",
                   help="colour, reverberate and add noise to the training snippets (rooms and microphones)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from follower.bundle import read_config, verify
    from follower.errors import BundleError

    from ..data.split import load_split
    from ..fit.partial_audio import PartialAudioConfig, add_to_bundle, train_partial_audio

    torch.set_num_threads(args.threads)
    cfg = read_config(args.bundle)
    verify(args.bundle, cfg)
    pcfg = PartialAudioConfig(epochs=args.epochs, patience=args.patience, lr=args.lr, seed=args.seed,
                              tempo_range=tuple(args.augment_tempo) if args.augment_tempo else None,
                              augment_audio=args.augment_audio)
    checkpoint = Path(args.checkpoint or "runs/partial-audio/checkpoint.pt")
    train, valid = (load_split(args.dataset, name, cfg.snippets) for name in ("train", "valid"))
    result = train_partial_audio(pcfg, args.bundle, train, valid, checkpoint, progress=not args.quiet)
    m = result["measured"]
    m["dataset"] = str(Path(args.dataset).resolve())
    if m["best_epoch"] == 0:
        raise BundleError("no epoch beat the full-window encoder on partly filled validation windows; "
                          "nothing written (more epochs, another --lr, or more training pairs)")
    out = add_to_bundle(args.bundle, args.out, result)
    before, after = m["valid_mrr_full_window_encoder"], m["valid_mrr"]
    print(f"wrote {args.out}/audio_encoder.partial.onnx (bundle {out['fingerprint']}; its indexes are unchanged): "
          "validation MRR of partly filled windows "
          + ", ".join(f"{k} sounding {before[k]:.3f} -> {after[k]:.3f}" for k in after if k != "mean")
          + f" (epoch {m['best_epoch']})")
    return 0
