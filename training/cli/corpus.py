"""``training corpus bach -o DIR``: the built-in corpus for users without MIDI data.

Writes the Bach chorales of the ``music21`` corpus (``corpus.chorales.Iterator``,
the Riemenschneider set) as type-1 MIDI files, one track per voice, at 120 bpm
where the score gives no tempo: the same material as the shared
``midi/bach-chorales`` folder. There is no ``splits.csv`` (tune families come
from our own table), so a build over this folder uses the hash split by file.
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
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def chorale_name(corpus_name: str) -> str:
    """``bach_bwv10.7`` for music21's ``bach/bwv10.7`` (the shared folder's naming)."""
    return "bach_" + os.path.basename(corpus_name)


def write_chorale(score, path: str) -> None:
    """One track per part (voice), tempo 120 bpm unless the score sets one; atomic write."""
    from music21 import midi, tempo

    if not score.recurse().getElementsByClass(tempo.MetronomeMark):
        score.parts[0].insert(0, tempo.MetronomeMark(number=120))
    mf = midi.translate.music21ObjectToMidiFile(score)
    tmp = f"{path}.tmp"
    mf.open(tmp, "wb")
    try:
        mf.write()
    finally:
        mf.close()
    os.replace(tmp, path)


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

    os.makedirs(args.out, exist_ok=True)
    names = list(corpus.chorales.Iterator(returnType="filename"))
    names = names if args.limit is None else names[:args.limit]
    written = 0
    for name in tqdm(names, unit="chorale", disable=args.quiet):
        path = os.path.join(args.out, chorale_name(name) + ".mid")
        if not os.path.exists(path):  # a rerun continues where it stopped
            write_chorale(corpus.parse(name), path)
        written += 1
    write_held_out(args.out)
    print(f"{written} chorales in {args.out} (Bach10 tunes held out in splits.csv)")
    return 0
