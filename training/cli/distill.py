"""``training distill BUNDLE -o OUT``: add a small score encoder, distilled from the bundle's, for fast index builds."""

from __future__ import annotations

import argparse

EPILOG = """\
The small encoder measured in docs/improvements.md (p) (not shipped: it loses too much
retrieval accuracy) was made by these functions in two learning-rate cycles (a script
that kept the best weights on 3,000 of the validation windows), the equivalent of:
(train-split pieces of the chorales, Nottingham, piano-midi.de and MuseData, one thread)

  C="../shared/data/midi/bach-chorales:80 ../shared/data/midi/nottingham:16 \\
     ../shared/data/midi/piano-midi:50 ../shared/data/rolls/MuseData.mat:20"
  nice -n 10 training distill exported/default -o OUT --corpus $C --minutes 24 --save a.pt --min-cosine 0
  nice -n 10 training distill exported/default -o OUT --corpus $C --minutes 22 --init-from a.pt \\
      --lr 0.0015 --batch 96

Then: follower index build CORPUS -o INDEX --bundle OUT --score-encoder small. The index
records which score encoder made it; the follower reads it with the bundle's audio
encoder. OUT may be BUNDLE itself; nothing else in the bundle changes.
"""


def register(subparsers) -> None:
    from ..fit.distill import DistillConfig

    d = DistillConfig()
    p = subparsers.add_parser(
        "distill", help="a small score encoder distilled from the bundle's, for fast index builds",
        description="Train a small score encoder (training.model.student) to reproduce the bundle's score "
                    "encoder's embeddings of piano-roll windows of the corpora's train pieces, and write it "
                    "into the bundle as score_encoder.small.onnx. Below --min-cosine (mean cosine to the "
                    "full encoder on validation pieces) nothing is written.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder (written by `training export`)")
    p.add_argument("-o", "--out", required=True, help="bundle folder to write (may be BUNDLE)")
    p.add_argument("--corpus", nargs="+", required=True, metavar="PATH[:MAX]",
                   help="MIDI folders (their splits.csv, else a hash split) or Boulanger .mat sets; :MAX caps "
                        "the windows per piece (0: all)")
    p.add_argument("--minutes", type=float, default=d.minutes, help="training time (default %(default)s)")
    p.add_argument("--batch", type=int, default=d.batch, help="default %(default)s")
    p.add_argument("--widths", default="16,32,64,64", help="channels of the four convolutions (default %(default)s)")
    p.add_argument("--min-cosine", type=float, default=0.95,
                   help="mean cosine to the full encoder needed to write the bundle (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default %(default)s)")
    p.add_argument("--init-from", metavar="PT", help="student weights of an earlier run (--save) to go on from")
    p.add_argument("--save", metavar="PT", help="also write the student's torch weights here")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def parse_corpus(items) -> tuple:
    from follower.errors import ConfigError

    paths, caps = [], []
    for item in items:
        path, sep, cap = item.rpartition(":") if ":" in item else (item, "", "0")
        path = path if sep else item
        try:
            caps.append(int(cap))
        except ValueError:
            raise ConfigError(f"--corpus {item}: the part after ':' must be a whole number of windows") from None
        paths.append(path)
    return tuple(paths), tuple(caps)


def run(args) -> int:
    import numpy as np

    from follower.bundle import SCORE_ONNX, Encoder, read_config
    from follower.errors import BundleError, ConfigError
    from follower.snippets import roll_input

    from ..fit.distill import DistillConfig, add_to_bundle, embed, train_student
    from ..fit.distill_data import DistillDataConfig, split_windows, teacher_embeddings
    from ..model.student import StudentConfig

    cfg = read_config(args.bundle)
    paths, caps = parse_corpus(args.corpus)
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise ConfigError(f"--widths {args.widths}: give four whole numbers, e.g. 16,32,64,64") from None
    data_cfg = DistillDataConfig(corpora=paths, max_per_piece=caps, seed=args.seed)
    student_cfg = StudentConfig(roll_channels=len(cfg.snippets.roll_channels), n_pitches=cfg.snippets.n_pitches,
                                roll_frames=cfg.snippets.roll_frames, embed_dim=cfg.embed_dim, widths=widths)
    teacher = Encoder(f"{args.bundle}/{SCORE_ONNX}", threads=1, spinning=False)
    fps = cfg.features.frame_rate_hz
    data = {}
    for split in ("train", "valid"):
        w = split_windows(data_cfg, split, cfg.snippets, fps, progress=not args.quiet)
        data[split] = {"rolls": w.rolls, "teacher": teacher_embeddings(teacher, w.rolls, cfg.snippets,
                                                                       progress=not args.quiet)}
        print(f"{split}: {len(w.rolls)} windows of {len(w.pieces)} pieces", flush=True)
    import torch

    init = None
    if args.init_from:
        try:
            saved = torch.load(args.init_from, weights_only=True)
            init = saved["state"]
        except (OSError, KeyError, RuntimeError, TypeError) as e:
            raise ConfigError(f"--init-from {args.init_from}: not student weights written by --save ({e})") from None
        if tuple(saved.get("config", {}).get("widths", ())) != student_cfg.widths:
            raise ConfigError(f"--init-from {args.init_from}: widths {saved.get('config', {}).get('widths')} differ "
                              f"from --widths {args.widths}")
    train_cfg = DistillConfig(minutes=args.minutes, batch=args.batch, lr=args.lr, seed=args.seed)
    model, rows = train_student(data["train"], data["valid"], cfg.snippets, student_cfg, train_cfg,
                                log=(lambda s: None) if args.quiet else print, init_state=init)
    if args.save:
        torch.save({"state": model.state_dict(), "config": student_cfg.to_dict()}, args.save)
    cos = (embed(model, data["valid"]["rolls"], cfg.snippets) * data["valid"]["teacher"]).sum(1)
    if not cos.mean() >= args.min_cosine:
        raise BundleError(f"the small score encoder agrees with the full one only to a mean cosine of "
                          f"{cos.mean():.4f} on validation windows (< {args.min_cosine}); train longer or wider")
    measured = {"valid_cosine_mean": round(float(cos.mean()), 5), "valid_cosine_p05": round(float(np.quantile(cos, 0.05)), 5),
                "train_windows": len(data["train"]["rolls"]), "valid_windows": len(data["valid"]["rolls"]),
                "steps": rows[-1]["step"], "data": data_cfg.to_dict(), "training": train_cfg.to_dict()}
    check = roll_input(data["valid"]["rolls"][:64], cfg.snippets)
    m = add_to_bundle(args.bundle, args.out, model, measured, check)
    print(f"wrote {args.out}/score_encoder.small.onnx (bundle {m['fingerprint']}; its indexes: score side "
          f"{m['small_index_fingerprint']}): mean cosine to the full score encoder {m['valid_cosine_mean']:.4f} "
          f"on {m['valid_windows']} validation windows")
    return 0
