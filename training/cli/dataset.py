"""``training dataset build``: render corpora with FluidSynth into aligned snippet pairs."""

from __future__ import annotations

import argparse

EPILOG = """\
With no --corpus, builds the default dataset from the shared data folder
(training.paths.data_root(), i.e. $SCOREFOLLOW_DATA or ../shared/data): the Bach
chorales with their splits.csv (bach10 rows never used) and 300 Nottingham tunes
(hash split), 2 training soundfonts, TimGM6mb held out for the test renders.

Dataset v2 (--preset v2; docs/dataset.md): the default's corpora plus piano-midi.de
(its splits.csv; rendered on grand pianos with the sustain pedal) and 300 MuseData
pieces; five training soundfonts, tempo 0.5-1.6x, one excerpt of at most 60 written
seconds per render, synthetic rooms, microphone colouring, noise and level drift on
the training renders. Its test sets per corpus reuse its renders through --cache.

Dataset v3 (--preset v3): v2 plus music21's own corpus (composers, Palestrina, Monteverdi,
trecento, folk collections; not its Bach), one corpus per collection folder of
DATA/midi/music21 with its splits.csv by work; write it first with
`training corpus music21 -o DATA/midi/music21`. String quartets render on strings, keyboard
works on a grand piano, the rest on the mixed families; 60 tunes per folk collection and
150 Palestrina movements, every other piece.

Examples:
  training dataset build                                   # default, into data/default
  training dataset build --preset v2 -o data/v2            # dataset v2
  training dataset build --preset v2 --only piano-midi --max-per-split 0,0,1000 \\
      --cache data/v2/cache -o data/v2-test-piano           # its piano test split alone
  training dataset build -o data/small --corpus ../shared/data/midi/bach-chorales --max-per-split 20,5,5
  training dataset build -o data/lakh --corpus ~/lmd_full@20000 --train-renders 1
  training dataset build -o data/jsb --corpus ../shared/data/rolls/JSB_Chorales.mat

Rerunning the same command resumes: finished renders are kept in DIR/cache.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="build the audio/piano-roll snippet dataset",
                              description="Render MIDI corpora with FluidSynth and cut aligned audio/piano-roll snippet pairs.")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    b = sub.add_parser("build", help="render corpora and cut aligned snippet pairs", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("-o", "--out", default=None, help="dataset folder (default: data/default in the checkout)")
    b.add_argument("--preset", choices=("default", "v2", "v3"), default="default",
                   help="corpora and render settings to start from (default: %(default)s)")
    b.add_argument("--only", action="append", default=None, metavar="NAME",
                   help="keep only the preset's corpora of this name (folder name or .mat stem; repeatable)")
    b.add_argument("--corpus", action="append", default=None, metavar="PATH[@N]",
                   help="MIDI folder tree or Boulanger .mat set; @N keeps N pieces chosen by hash (repeatable)")
    b.add_argument("--piano-corpus", action="append", default=None, metavar="PATH[@N]",
                   help="like --corpus, rendered on one grand piano per render with the sustain pedal")
    b.add_argument("--excerpt-s", type=float, default=None,
                   help="each render plays one window of at most this many written seconds (0 = whole "
                        "pieces; default 0, v2: 60)")
    b.add_argument("--tempo-range", default=None, metavar="LOW,HIGH",
                   help="tempo ratios of train/valid renders, drawn log-uniform (default 0.8,1.25; v2: 0.5,1.6)")
    b.add_argument("--test-tempi", default=None, metavar="T,...",
                   help="tempo ratios of the test renders among 1.0 (test), 0.8 (test_slow), 1.25 (test_fast) "
                        "(default: all three; the others stay empty)")
    b.add_argument("--max-pairs-per-render", type=int, default=None, metavar="N",
                   help="keep at most N onset pairs per training render, evenly spread (balances dense piano "
                        "writing against chorales; default: all)")
    b.add_argument("--max-valid-pairs-per-render", type=int, default=None, metavar="N",
                   help="the same for validation renders, so that the validation MRR that selects the model "
                        "weighs each corpus by its pieces, not its note density (default: all)")
    b.add_argument("--cache", default=None, metavar="DIR",
                   help="render cache folder (default DATASET/cache); builds with the same settings may share one")
    b.add_argument("--split-file", default=None, metavar="CSV",
                   help="CSV file,split[,tune_family] for the MIDI corpora (default: their splits.csv, else a hash split)")
    b.add_argument("--max-per-split", default=None, metavar="TRAIN,VALID,TEST",
                   help="at most this many pieces per split and corpus, chosen by hash (e.g. 20,5,5)")
    b.add_argument("--train-soundfonts", nargs="+", default=None, metavar="SF",
                   help="soundfonts (path or file name in /usr/share/sounds/sf2|sf3) for train and valid renders")
    b.add_argument("--test-soundfont", default=None, metavar="SF", help="held-out soundfont for the test renders")
    b.add_argument("--train-renders", type=int, default=None, help="renders per training piece (default 2)")
    b.add_argument("--valid-renders", type=int, default=None, help="renders per validation piece (default 1)")
    b.add_argument("--mat-step-s", type=float, default=None,
                   help="seconds per row of .mat rolls (default 0.5 for JSB, 0.25 otherwise)")
    b.add_argument("--workers", type=int, default=None, help="render processes (default: all cores)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=run)
    f = sub.add_parser("figure", help="plot one aligned pair (spectrogram beside piano roll) to a PNG")
    f.add_argument("dataset", help="a built dataset folder")
    f.add_argument("-o", "--out", required=True, help="PNG file")
    f.add_argument("--split", default="test", help="split to draw from (default: test, tempo 1.0)")
    f.add_argument("--pair", type=int, default=None, help="pair index (default: a busy one, seeded)")
    f.set_defaults(func=run_figure)
    k = sub.add_parser("pack", help="train + valid splits in one small quantised file (to train on another machine)",
                       description="Quantise a built dataset's train and valid splits (spectrograms to uint8 on "
                                   "one scale, rolls to bits, zip-compressed) into one file of at most --max-mb; "
                                   "whole training renders are left out, by a fixed hash order, if it does not "
                                   "fit. `training dataset unpack` restores a dataset folder for `training train`.")
    k.add_argument("dataset", help="a built dataset folder")
    k.add_argument("-o", "--out", required=True, help="packed file to write (.npz)")
    k.add_argument("--max-mb", type=float, default=60.0, help="size limit in MiB (default %(default)s)")
    k.add_argument("--skip-renders", type=int, default=0, metavar="N",
                   help="leave out the N training renders an earlier pack kept (it prints 'train renders N of "
                        "...'): the next part of a dataset too large for one file (default %(default)s)")
    k.set_defaults(func=run_pack)
    u = sub.add_parser("unpack", help="restore a dataset folder (train + valid) from a packed file")
    u.add_argument("packed", help="file written by `training dataset pack`")
    u.add_argument("-o", "--out", required=True, help="dataset folder to write")
    u.set_defaults(func=run_unpack)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def run_pack(args) -> int:
    from ..data.pack import pack

    r = pack(args.dataset, args.out, max_mb=args.max_mb, skip_renders=args.skip_renders)
    print(f"wrote {args.out}: {r['bytes'] / 2 ** 20:.1f} MiB; train renders {r['renders']['train'][0]} of "
          f"{r['renders']['train'][1]} ({r['pairs']['train']} pairs), valid {r['renders']['valid'][0]} "
          f"({r['pairs']['valid']} pairs)")
    return 0


def run_unpack(args) -> int:
    from ..data.pack import unpack

    counts = unpack(args.packed, args.out)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v} pairs" for k, v in counts.items()))
    return 0


def config_from_args(args):
    import dataclasses

    from follower.errors import ConfigError

    from ..data.build import CorpusSpec, DatasetConfig, default_corpora, v2_settings, v3_settings

    # options added with dataset v2 default to "not given" (callers may build the namespace themselves)
    for name in ("only", "piano_corpus", "excerpt_s", "tempo_range", "test_tempi", "max_pairs_per_render",
                 "max_valid_pairs_per_render"):
        if not hasattr(args, name):
            setattr(args, name, None)
    preset = getattr(args, "preset", "default")
    if preset == "v3" and not (args.corpus or args.piano_corpus):
        kw = v3_settings()  # needs the music21 corpus folder; one line says how to write it
    elif preset in ("v2", "v3"):
        kw = v2_settings()  # v3 renders as v2 does; --corpus replaces the corpora
    else:
        kw = {"corpora": default_corpora()}
    if args.corpus or args.piano_corpus:
        kw["corpora"] = tuple(dataclasses.replace(CorpusSpec.parse(c), split_file=args.split_file,
                                                  step_s=args.mat_step_s, ensemble=ensemble)
                              for cs, ensemble in ((args.corpus, "mixed"), (args.piano_corpus, "piano"))
                              for c in cs or ())
    if args.only:
        names = {c.name for c in kw["corpora"]}
        unknown = sorted(set(args.only) - names)
        if unknown:
            raise ConfigError(f"--only {', '.join(unknown)}: no such corpus; the corpora are {', '.join(sorted(names))}")
        kw["corpora"] = tuple(c for c in kw["corpora"] if c.name in args.only)
    kw["seed"] = args.seed
    if args.excerpt_s is not None:
        kw["excerpt_s"] = args.excerpt_s
    if args.max_pairs_per_render is not None:
        kw["max_pairs_per_render"] = args.max_pairs_per_render
    if args.max_valid_pairs_per_render is not None:
        kw["max_valid_pairs_per_render"] = args.max_valid_pairs_per_render
    if args.test_tempi:
        try:
            kw["test_tempi"] = tuple(float(x) for x in args.test_tempi.split(","))
        except ValueError:
            raise ConfigError(f"--test-tempi {args.test_tempi!r}; expected ratios such as 1.0,0.8") from None
    if args.tempo_range:
        try:
            lo, hi = (float(x) for x in args.tempo_range.split(","))
        except ValueError:
            raise ConfigError(f"--tempo-range {args.tempo_range!r}; expected LOW,HIGH such as 0.5,1.6") from None
        kw["tempo_range"] = (lo, hi)
    if args.max_per_split:
        try:
            n = [int(x) for x in args.max_per_split.split(",")]
            assert len(n) == 3 and min(n) >= 0
        except (ValueError, AssertionError):
            raise ConfigError(f"--max-per-split {args.max_per_split!r}; expected three counts TRAIN,VALID,TEST") from None
        kw["max_per_split"] = tuple(zip(("train", "valid", "test"), n))
    if args.train_soundfonts:
        kw["train_soundfonts"] = tuple(args.train_soundfonts)
    for name in ("test_soundfont", "train_renders", "valid_renders"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    return DatasetConfig(**kw)


def run(args) -> int:
    from follower.paths import REPO_ROOT

    from ..data.build import build_dataset

    cfg = config_from_args(args)
    out = args.out or str(REPO_ROOT / "data" / "default")
    summary = build_dataset(cfg, out, workers=args.workers, progress=not args.quiet, cache_dir=args.cache)
    for split, c in summary["splits"].items():
        print(f"{split:10s} {c['pieces']:5d} pieces {c['renders']:5d} renders {c['audio_h']:7.2f} h "
              f"{c['pairs']:8d} pairs")
    print(f"rendered now: {summary['rendered']} renders ({summary['rendered_audio_h']:.2f} h of audio); "
          f"skipped inputs: {summary['skipped']} (see {out}/report.csv); held out: {summary['held_out']}")
    print(f"dataset: {out}")
    return 0


def run_figure(args) -> int:
    from follower.errors import ConfigError

    from ..data.figure import pick_pair, plot_pair
    from ..data.split import load_split

    data = load_split(args.dataset, args.split)
    if data.n_pairs == 0:
        raise ConfigError(f"split {args.split!r} of {args.dataset} has no pairs")
    pair = pick_pair(data) if args.pair is None else args.pair
    if not 0 <= pair < data.n_pairs:
        raise ConfigError(f"--pair {pair} out of range; the split has {data.n_pairs} pairs")
    plot_pair(data, pair, args.out)
    print(f"pair {pair} -> {args.out}")
    return 0
