"""``training corpus bach|music21 -o DIR``: built-in corpora for users without MIDI data.

Writes the Bach chorales of the ``music21`` corpus (``corpus.chorales.Iterator``,
the Riemenschneider set) as type-1 MIDI files, one track per voice, at 120 bpm
where the score gives no tempo: the same material as the shared
``midi/bach-chorales`` folder. There is no ``splits.csv`` (tune families come
from our own table), so a build over this folder uses the hash split by file.

``training corpus music21 -o DIR`` writes the rest of music21's corpus (composers from
Palestrina to Schoenberg, the abc folk collections; not its Bach) one MIDI file per score or
tune, with a ``splits.csv`` by work (training/data/music21_corpus.py, docs/dataset.md).
"""

from __future__ import annotations

import csv
import os

# Bach10's chorales (BWV 255, 256, 274, 275, 296, 297, 326, 327, 364, 385) and every
# chorale sharing their melody, from the shared data's tune-family table.
BACH10_FAMILIES = {
    "bach_bwv114.7": "bach_bwv114.7", "bach_bwv256": "bach_bwv114.7", "bach_bwv257": "bach_bwv114.7",
    "bach_bwv258": "bach_bwv114.7", "bach_bwv255": "bach_bwv255", "bach_bwv48.3": "bach_bwv255",
    "bach_bwv274": "bach_bwv274", "bach_bwv62.6": "bach_bwv274", "bach_bwv275": "bach_bwv275",
    "bach_bwv296": "bach_bwv296", "bach_bwv297": "bach_bwv297", "bach_bwv326": "bach_bwv326",
    "bach_bwv327": "bach_bwv326", "bach_bwv364": "bach_bwv364", "bach_bwv385": "bach_bwv385",
}


def register(subparsers) -> None:
    p = subparsers.add_parser("corpus", help="write a built-in MIDI corpus", description=__doc__)
    sub = p.add_subparsers(dest="corpus_command", metavar="NAME")
    b = sub.add_parser("bach", help="Bach chorales from music21, one MIDI track per voice")
    b.add_argument("-o", "--out", required=True, help="folder for the .mid files")
    b.add_argument("--limit", type=int, default=None, help="write only the first N chorales")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_bach)
    m = sub.add_parser("music21", help="music21's other corpora (composers, folk collections; not Bach), split by work",
                       description="Write music21's corpus, minus its Bach chorales (`training corpus bach`) and "
                                   "its Nottingham copy, as MIDI: one file per score, one per tune of an abc "
                                   "collection, a quarter = 120 bpm where the score sets no tempo. splits.csv "
                                   "splits by work (movements, numbers and parts of one work, and tunes of one "
                                   "title, stay on one side); Bach10's tunes are held out. Resumable: rerun to "
                                   "continue; unreadable files are listed in DIR/report.csv.")
    m.add_argument("-o", "--out", required=True, help="folder for the .mid files (one subfolder per collection)")
    m.add_argument("--minutes", type=float, default=None,
                   help="stop starting new source files after this long (rerun to continue)")
    m.add_argument("--composers", default=None, metavar="NAME[,NAME]",
                   help="only these composer or collection folders of music21's corpus (e.g. haydn,mozart)")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=run_music21)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def chorale_name(corpus_name: str) -> str:
    """``bach_bwv10.7`` for music21's ``bach/bwv10.7`` (the shared folder's naming)."""
    return "bach_" + os.path.basename(corpus_name)


def write_held_out(out_dir) -> None:
    """splits.csv listing the Bach10 tune families as ``bach10``; unlisted files get the hash split."""
    path = os.path.join(out_dir, "splits.csv")
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "split", "tune_family"])
        for name, family in sorted(BACH10_FAMILIES.items()):
            w.writerow([name + ".mid", "bach10", family])
    os.replace(path + ".tmp", path)


def run_bach(args) -> int:
    from music21 import corpus
    from tqdm import tqdm

    from ..data.music21_corpus import write_score

    os.makedirs(args.out, exist_ok=True)
    names = list(corpus.chorales.Iterator(returnType="filename"))
    names = names if args.limit is None else names[:args.limit]
    written = 0
    for name in tqdm(names, unit="chorale", disable=args.quiet):
        path = os.path.join(args.out, chorale_name(name) + ".mid")
        if not os.path.exists(path):  # a rerun continues where it stopped
            write_score(corpus.parse(name), path)  # one track per voice, 120 bpm unless set
        written += 1
    write_held_out(args.out)
    print(f"{written} chorales in {args.out} (Bach10 tunes held out in splits.csv)")
    return 0


def run_music21(args) -> int:
    from ..data.music21_corpus import convert, split_rows

    composers = [c.strip() for c in args.composers.split(",") if c.strip()] if args.composers else None
    res = convert(args.out, composers=composers, minutes=args.minutes, progress=not args.quiet)
    rows = split_rows(args.out)
    counts = {s: sum(1 for r in rows if r[1] == s) for s in ("train", "valid", "test", "bach10")}
    print(f"{len(rows)} MIDI files in {args.out} ({res.written} written now, {res.kept} kept); "
          f"splits.csv by work: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if res.failed:
        print(f"{len(res.failed)} unreadable files or tunes skipped, listed in {os.path.join(args.out, 'report.csv')}")
    if res.stopped_at:
        print(f"stopped after {args.minutes:g} min before {res.stopped_at}; run the same command again to continue")
    return 0
