"""music21's own corpus as MIDI files: conversion, works and splits (``training corpus music21``).

music21 ships scores of many composers (Beethoven, Haydn and Mozart quartets, Palestrina's
masses, Monteverdi's madrigals, trecento pieces...) and folk collections in abc (the Essen
collection, O'Neill's, Ryan's Mammoth, Aird's Airs). Left out: its Bach entries (the chorales
are a corpus of their own here, with their tune-family split), its copy of Nottingham (the
``midi/nottingham`` corpus already), and its demos, exercises and lead sheets (fragments).

Layout: ``OUT/<collection>/<path>.mid`` for a file holding one score and
``OUT/<collection>/<path>/<k>.mid`` (k = 0000, 0001...) for each tune of a file holding many
(an abc collection is a music21 ``Opus``). Every written file is read back with
:func:`follower.midi.load_midi`; what cannot be parsed, written or read back is listed in
``OUT/report.csv`` and left out.

Splits, by **work**: one hash per work (80/10/10, :func:`training.data.corpus.hash_split`),
so every movement, number and part of a work lands on one side and adding files never moves
a work. A work is the folder of a multi-file work (``beethoven/opus59no1/``), the opus of
numbered files (``opus18no3``, ``opus18no4`` -> ``opus18``), the Mass of a Palestrina
movement (its ``!!!OPR`` header, settings I and II of one Mass together), the volume and
number of a trecento piece (parts a and b together), the book of a Monteverdi madrigal (the
numbered parts of a madrigal cycle are separate files), a file (Josquin's abc files, whose numbered tunes are the voices
of one chanson, are merged into one score of parts), and for the folk collections the tune's title, so a
tune that several collections (or one collection twice) hold stays on one side: a tune family
in the sense of the chorales' table. Tunes whose opening matches the soprano of a Bach10
chorale or of a chorale sharing its tune are held out (split ``bach10``), as in the chorale
corpus.

Tempo: a score's own metronome marks; where it has none, a quarter note = 120 bpm (music21's
own default for MIDI), written explicitly.
"""

from __future__ import annotations

import csv
import os
import re
import time
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from follower.errors import ConfigError

from .corpus import hash_split

SUFFIXES = (".krn", ".mxl", ".xml", ".abc", ".mus")
SUFFIXES_PREFERRED = (".mxl", ".xml", ".krn", ".abc", ".mus")
SKIP = ("bach", "nottingham-dataset", "demos", "theoryExercises", "leadSheet", "_metadataCache")
# the same score under a second name (Dichterliebe is op. 48: the same notes as opus48no2.mxl);
# written twice it would be two pieces, possibly on two sides of the split
DUPLICATES = ("schumann_robert/dichterliebe_no2.xml",)
FOLK = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
VOICES_AS_TUNES = ("josquin",)  # abc files whose numbered "tunes" are the voices of one piece
DEFAULT_BPM = 120.0
# what a written file is (its work is derived from source and title when splits.csv is written,
# so a change of the rules needs no new conversion)
INDEX_COLUMNS = ("file", "source", "number", "title", "seconds", "held_out")
DONE = "#done:"  # index row marking a many-tune file whose tunes were all tried (not a MIDI file)

# The openings (first six intervals in semitones, repeated notes merged) of the soprano of the
# Bach10 chorales and every chorale sharing their tune (training.cli.corpus.BACH10_FAMILIES),
# read from music21's chorales: a score that opens with one of these is that tune.
BACH10_OPENINGS = frozenset({
    (-3, 2, 1, 2, 2, -2), (-1, -2, -2, 2, 2, 1), (-1, -2, 2, 1, 2, 2), (3, -3, -2, 2, 2, 1),
    (2, 1, -1, 5, 2, 1), (2, 2, 1, -1, -2, -1), (3, 2, 2, 5, -2, -1), (-1, -2, -2, 5, 2, 2),
    (-2, 2, 2, -2, -2, -1), (2, -2, -3, -2, 2, 2),
})


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def collections(root: Path | None = None) -> list[str]:
    """The composer and collection folders converted (Bach, Nottingham and fragments left out)."""
    root = root or corpus_root()
    return sorted(d.name for d in root.iterdir() if d.is_dir() and d.name not in SKIP and not d.name.startswith("_")
                  and any(f.suffix in SUFFIXES for f in d.rglob("*")))


def source_files(root: Path | None = None, composers=None) -> list[Path]:
    """The score files to convert: the composers first, then the folk collections, the smaller
    first in each (a run stopped by its time limit then holds every composer, and the folk
    tunes, about one a second with their repeats played out, in part)."""
    root = root or corpus_root()
    names = collections(root)
    if composers:
        unknown = sorted(set(composers) - set(names))
        if unknown:
            hint = " (the Bach chorales are `training corpus bach`)" if "bach" in unknown else ""
            raise ConfigError(f"--composers {','.join(unknown)}: not in music21's corpus{hint}; "
                              f"choose from {','.join(names)}")
        names = [n for n in names if n in composers]
    by_size = []
    for name in names:
        files = _one_format_each(f for f in (root / name).rglob("*") if f.suffix in SUFFIXES and f.is_file()
                                 and not f.stem.endswith("_old")  # an older copy of the madrigal beside it
                                 and f.relative_to(root).as_posix() not in DUPLICATES)
        by_size.append((name in FOLK, sum(f.stat().st_size for f in files), name, files))
    return [f for *_, files in sorted(by_size) for f in files]


def _one_format_each(files) -> list[Path]:
    """One file per score where music21 holds it in several formats (Beethoven's op. 18 no. 1 in
    MusicXML and Humdrum, C. P. E. Bach's and Ciconia's in MuseData too): MusicXML preferred."""
    best: dict = {}
    for f in files:
        key = f.with_suffix("")
        if key not in best or SUFFIXES_PREFERRED.index(f.suffix) < SUFFIXES_PREFERRED.index(best[key].suffix):
            best[key] = f
    return sorted(best.values())


# ---------------------------------------------------------------------------------------- works

def normalise_title(title: str) -> str:
    """Title as a tune key: ASCII, lower case, no article, punctuation or trailing number."""
    text = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode().lower()
    text = re.sub(r"\(.*?\)|\[.*?\]|,?\s*s\.\s*\d+.*$", " ", text)  # "(variant)", Essen's ", S. 26"
    words = re.findall(r"[a-z]+", text)
    if words and words[0] in ("the", "a", "an", "der", "die", "das"):
        words = words[1:]
    return "-".join(words)


def palestrina_mass(path: Path) -> str | None:
    """The Mass of a Palestrina movement (``!!!OPR``), its setting number (I, II) dropped."""
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("!!!OPR:"):
                    return re.sub(r"\s*\([IVX]+\)\s*$", "", line[7:].strip())
                if not line.startswith("!"):
                    break
    except OSError:
        pass
    return None


def work_of(source: Path, root: Path, title: str | None = None) -> str:
    """The work a score belongs to (see the module doc); pieces of one work share a split."""
    rel = source.relative_to(root)
    collection = rel.parts[0]
    if collection in FOLK and title:
        return "tune/" + (normalise_title(title) or rel.stem)
    if collection == "palestrina":
        mass = palestrina_mass(source)
        if mass:
            return f"palestrina/{normalise_title(mass)}"
    # a folder is one work (its movements: beethoven/opus59no1/movement2)
    stem = rel.parts[1] if len(rel.parts) > 2 else rel.stem.replace("_old", "")
    if collection == "trecento":
        m = re.match(r"PMFC_\d+[-_](?:[A-Za-z]+[-_])?\d+", stem)  # volume and number: 03a and 03b together
        return f"{collection}/{m.group(0) if m else stem}"
    # a number within an opus or a book: opus18no3 -> opus18, polonaise_op1n2 -> polonaise_op1,
    # madrigal.3.12 -> madrigal.3, mazurka06-2 -> mazurka06
    return f"{collection}/{re.sub(r'(?:[-_.]|no?)[0-9]+[a-z]?$', '', stem) or stem}"


def opening(score, n: int = 6) -> tuple:
    """The first ``n`` intervals of a part's line (repeats merged), per part: the tune's incipit."""
    out = []
    for part in getattr(score, "parts", None) or [score]:
        pitches = [x.pitch.midi for x in part.flatten().notes if x.isNote]
        merged = [p for k, p in enumerate(pitches) if k == 0 or p != pitches[k - 1]]
        out.append(tuple(b - a for a, b in zip(merged, merged[1:]))[:n])
    return tuple(out)


def is_bach10_tune(score) -> bool:
    return any(o in BACH10_OPENINGS for o in opening(score))


# ----------------------------------------------------------------------------------- conversion

def write_score(score, path) -> None:
    """One track per part with music21's own MIDI writer (its tempo marks and instruments kept),
    a quarter = 120 bpm unless the score sets a tempo; atomic write."""
    from music21 import midi, repeat, tempo

    if not score.recurse().getElementsByClass(tempo.MetronomeMark):
        parts = getattr(score, "parts", None)
        (parts[0] if parts else score).insert(0, tempo.MetronomeMark(number=DEFAULT_BPM))
    try:
        mf = midi.translate.music21ObjectToMidiFile(score)  # repeats played out, as a performer would
    except repeat.ExpanderException:
        # music21 cannot expand badly formed repeats (a Chopin mazurka, two Haydn movements):
        # write the music as notated, once through
        mf = midi.translate.music21ObjectToMidiFile(without_repeats(score))
    tmp = f"{path}.tmp"
    mf.open(tmp, "wb")
    try:
        mf.write()
    finally:
        mf.close()
    os.replace(tmp, path)


def without_repeats(score):
    """The score with its repeat signs, volta brackets and jumps removed (in place)."""
    from music21 import bar, repeat, spanner

    for barline in list(score.recurse().getElementsByClass(bar.Repeat)):
        barline.activeSite.replace(barline, bar.Barline(barline.type))
    for mark in list(score.recurse().getElementsByClass(repeat.RepeatExpression)):
        mark.activeSite.remove(mark)
    for bracket in list(score.recurse().getElementsByClass(spanner.RepeatBracket)):
        bracket.activeSite.remove(bracket)
    return score


def scores_of(parsed, collection: str = "") -> list:
    """The scores of a parsed file: the tunes of an Opus, else the file's one score.

    Josquin's abc files hold one voice per tune number: they become one score of parts."""
    from music21 import stream

    if not isinstance(parsed, stream.Opus):
        return [parsed]
    return [parsed.mergeScores()] if collection in VOICES_AS_TUNES else list(parsed.scores)


def targets(out: Path, rel: Path, n: int) -> list[Path]:
    """``rel.mid``, or ``rel/0000.mid``... for the tunes of a many-tune file (the name keeps its
    dots: madrigal.3.1 and madrigal.3.2 are two files)."""
    base = out / rel.parent / rel.stem
    return [base.parent / (base.name + ".mid")] if n == 1 else [base / f"{k:04d}.mid" for k in range(n)]


@dataclass
class Conversion:
    """What a run did: files written now, kept from an earlier run, and the failures."""

    written: int = 0
    kept: int = 0
    failed: list = field(default_factory=list)    # (source, tune or "", reason), earlier runs' included
    stopped_at: str | None = None                 # source file the time limit stopped before


def read_index(out: Path) -> dict:
    path = out / "index.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def convert(out, *, composers=None, minutes: float | None = None, root: Path | None = None,
            files=None, progress: bool = True) -> Conversion:
    """Write music21's corpus as MIDI under ``out``; resumable, bad files reported, not raised.

    A file whose MIDI files are all listed in ``out/index.csv`` is not parsed again; the
    time limit is checked before each source file (an abc collection is parsed whole).
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root else corpus_root()
    files = source_files(root, composers) if files is None else [Path(f) for f in files]
    index = read_index(out)
    done_sources = {row["source"] for name, row in index.items() if name.startswith(DONE)}
    result, t0, attempted = Conversion(), time.time(), set()
    new_index = not (out / "index.csv").is_file()
    with open(out / "index.csv", "a", newline="") as fi:
        writer = csv.writer(fi)
        if new_index:
            writer.writerow(INDEX_COLUMNS)
        bar = tqdm(files, unit="file", desc="music21 -> MIDI", disable=not progress)
        try:
            for source in bar:
                rel = source.relative_to(root)
                if rel.as_posix() in done_sources or _single_done(out, rel, index):
                    result.kept += _count_kept(out, rel, index)
                    continue
                if minutes is not None and time.time() - t0 > minutes * 60:
                    result.stopped_at = str(rel)
                    break
                attempted.add(rel.as_posix())
                with warnings.catch_warnings():  # music21 warns of every overfull bar: noise under the bar
                    warnings.simplefilter("ignore")
                    _convert_file(source, rel, root, out, index, writer, fi, result)
                bar.set_postfix(written=result.written, failed=len(result.failed))
        finally:  # an interrupted run still leaves its report and splits for what it wrote
            bar.close()
            # failures of files not tried this time (a many-tune file's tunes are not retried) stay listed
            result.failed = [r for r in _read_report(out) if r[0] not in attempted] + result.failed
            _write_report(out, result.failed)
            write_splits(out, root)
    return result


def _convert_file(source: Path, rel: Path, root: Path, out: Path, index: dict, writer, fi, result) -> None:
    from music21 import converter

    try:
        scores = scores_of(converter.parse(source), rel.parts[0])
    except Exception as e:  # noqa: BLE001 - music21 raises many kinds on a file it cannot read
        result.failed.append((rel.as_posix(), "", _reason(e)))
        return
    for k, (score, path) in enumerate(zip(scores, targets(out, rel, len(scores)))):
        name = path.relative_to(out).as_posix()
        if name in index and path.is_file():
            result.kept += 1
            continue
        row = _write_one(score, source, root, path, name, None if len(scores) == 1 else k)
        if isinstance(row, str):
            result.failed.append((rel.as_posix(), "" if len(scores) == 1 else str(k), row))
            continue
        writer.writerow(row)
        fi.flush()  # a file on disk is in the index: an interrupted run loses no work
        index[name] = dict(zip(INDEX_COLUMNS, row))
        result.written += 1
    if len(scores) > 1:  # a many-tune file is done once all its tunes were tried
        writer.writerow([DONE + rel.as_posix(), rel.as_posix(), "", "", "", ""])
        fi.flush()


def _single_done(out: Path, rel: Path, index: dict) -> bool:
    (path,) = targets(out, rel, 1)
    return path.relative_to(out).as_posix() in index and path.is_file()


def _count_kept(out: Path, rel: Path, index: dict) -> int:
    if _single_done(out, rel, index):
        return 1
    prefix = (rel.with_suffix("")).as_posix() + "/"
    return sum(1 for name in index if name.startswith(prefix))


def _write_one(score, source: Path, root: Path, path: Path, name: str, number):
    """The index row of one written score, or the reason it could not be written."""
    from follower.midi import load_midi

    title = (score.metadata.title if score.metadata is not None else None) or ""
    try:
        held = is_bach10_tune(score)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_score(score, path)
        notes = load_midi(path).notes  # the project's own reader must take it
        seconds = float(notes["end_s"].max()) if len(notes) else 0.0
        if not len(notes):
            raise ValueError("no notes")
    except Exception as e:  # noqa: BLE001 - music21's writer and our reader: one line, the file left out
        if path.exists():
            path.unlink()
        return _reason(e)
    return [name, source.relative_to(root).as_posix(), "" if number is None else str(number),
            " ".join(title.split()), f"{seconds:.2f}", "1" if held else ""]


def _reason(e: Exception) -> str:
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _read_report(out: Path) -> list:
    if not (out / "report.csv").is_file():
        return []
    with open(out / "report.csv", newline="") as f:
        return [tuple(row) for row in list(csv.reader(f))[1:]]


def _write_report(out: Path, failed) -> None:
    with open(out / "report.csv.tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "tune", "reason"])
        w.writerows(failed)
    os.replace(out / "report.csv.tmp", out / "report.csv")


def split_rows(out, root: Path | None = None) -> list:
    """``(file, split, work)`` for every written file: hash of the work, ``bach10`` held out."""
    root = Path(root) if root else corpus_root()
    rows = []
    for name, row in sorted(read_index(Path(out)).items()):
        if not name.startswith(DONE) and (Path(out) / name).is_file():
            work = work_of(root / row["source"], root, row["title"])
            rows.append((name, "bach10" if row["held_out"] else hash_split(f"music21:{work}"), work))
    return rows


def write_splits(out, root: Path | None = None) -> None:
    """``splits.csv`` at the root (the whole folder as one corpus) and in each collection
    folder (files relative to it: one corpus per collection, as the v3 preset reads them)."""
    out = Path(out)
    rows = split_rows(out, root)
    tables = {out: rows}
    for name, split, work in rows:
        collection, rest = name.split("/", 1)
        tables.setdefault(out / collection, []).append((rest, split, work))
    for folder, table in tables.items():
        tmp = folder / "splits.csv.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "split", "tune_family"])
            w.writerows(table)
        os.replace(tmp, folder / "splits.csv")
