"""``training shared-head BUNDLE -o OUT``: add the shared-trunk pair for fast index builds (follower.score_trunk)."""

from __future__ import annotations

import argparse

EPILOG = """\
The shipped pair (exported/default/score_trunk.onnx, score_head.shared.onnx) was made by:

  training shared-head exported/default -o exported/default \\
      --corpus ../shared/data/midi/bach-chorales ../shared/data/midi/nottingham ../shared/data/midi/piano-midi

Then: follower index build CORPUS -o INDEX --score-encoder shared. The index records
that it was built so; the follower reads it with the bundle's audio encoder. OUT may
be BUNDLE itself: nothing else in the bundle changes, and its other indexes stay valid.
"""


def register(subparsers) -> None:
    from ..fit.shared_head import SharedHeadConfig

    d = SharedHeadConfig()
    p = subparsers.add_parser(
        "shared-head", help="fine-tune a score head for shared-trunk index builds (several times faster)",
        description="Cut the bundle's score encoder before its third pooling into a trunk, run once over each "
                    "piece by `follower index build --score-encoder shared`, and a head that embeds each snippet "
                    "from the trunk's columns; fine-tune the head so that it gives, from columns computed in the "
                    "piece, the full encoder's embedding of the snippet alone (train-split windows of the "
                    "corpora; validation pieces check it). Below --min-cosine nothing is written.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder (written by `training export`)")
    p.add_argument("-o", "--out", required=True, help="bundle folder to write (may be BUNDLE)")
    p.add_argument("--corpus", nargs="+", required=True, metavar="PATH",
                   help="MIDI folders (their splits.csv, else a hash split) or Boulanger .mat sets")
    p.add_argument("--windows", type=int, default=d.max_train_windows, help="training windows (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="default %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default %(default)s)")
    p.add_argument("--min-cosine", type=float, default=0.99,
                   help="mean cosine to the full encoder's embeddings on validation windows needed to write "
                        "the bundle (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from follower.bundle import SCORE_ONNX, read_config, verify
    from follower.errors import BundleError

    from ..fit.shared_head import SharedHeadConfig, add_to_bundle, train_head

    torch.set_num_threads(1)
    cfg = read_config(args.bundle)
    verify(args.bundle, cfg)
    head_cfg = SharedHeadConfig(corpora=tuple(args.corpus), max_train_windows=args.windows, epochs=args.epochs,
                                lr=args.lr, seed=args.seed)
    result = train_head(head_cfg, f"{args.bundle}/{SCORE_ONNX}", cfg.snippets, cfg.features.frame_rate_hz,
                        progress=not args.quiet)
    got = result["measured"]["valid_cosine_mean"]
    if not got >= args.min_cosine:
        raise BundleError(f"the shared-trunk head agrees with the full score encoder only to a mean cosine of "
                          f"{got:.4f} on validation windows (< {args.min_cosine}); train on more windows or epochs")
    m = add_to_bundle(args.bundle, args.out, result)
    print(f"wrote {args.out}/score_trunk.onnx and score_head.shared.onnx (bundle {m['fingerprint']}; its shared "
          f"indexes: score side {m['shared_index_fingerprint']}): mean cosine to the full score encoder "
          f"{got:.4f} on {m['valid_windows']} validation windows ({m['valid_cosine_mean_before']:.4f} before)")
    return 0
