"""Corpora: what pieces exist, which split each belongs to, and how to load one.

A corpus is either a folder tree of ``.mid``/``.midi`` files (any size: Lakh's
176k files included; the tree is walked with ``os.scandir`` as a generator and
no file is opened until a worker renders it) or a Boulanger-Lewandowski ``.mat``
piano-roll set (JSB chorales, Nottingham, Piano-midi.de, MuseData).

Splits. A piece's split comes, in this order of precedence, from

1. ``--split-file`` (CSV with columns ``file,split`` and optionally
   ``tune_family``; ``file`` is the path relative to the corpus root or the bare
   file name),
2. a ``splits.csv`` of that form at the corpus root,
3. the ``.mat`` set's own official train/valid/test lists,
4. a deterministic hash of the piece's *group* (its tune family where known,
   else its relative path without extension) -- so one group never lands on two
   sides, and adding files never moves existing pieces between splits.

Only ``train``, ``valid`` and ``test`` pieces are used. Any other split name (in
particular ``bach10``: the chorales recorded in Bach10 and every chorale sharing
their tune) is held out: never rendered, never trained on.

Boulanger rolls carry no tempo. We give each row ``step_s`` seconds: 0.5 s for
JSB chorales (one row per quarter note, 120 bpm, like the MIDI chorales) and
0.25 s for the others (one row per eighth note at 120 bpm). A run of consecutive
active rows of a pitch becomes one note, so repeated notes of the same pitch
merge (the rolls cannot tell them apart).
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from follower.errors import BadMidiError, ConfigError
from follower.midi import NOTE_DTYPE, Score, load_midi

SPLITS = ("train", "valid", "test")
HELD_OUT_SPLITS = ("bach10",)  # documented name; any split not in SPLITS is held out
MIDI_SUFFIXES = (".mid", ".midi")
MAT_KEYS = {"traindata": "train", "validdata": "valid", "testdata": "test"}
DEFAULT_HASH_FRACTIONS = (0.8, 0.1, 0.1)  # train, valid, test
MAT_TICKS_PER_BEAT = 480


@dataclass(frozen=True)
class Piece:
    """One piece of a corpus, not yet loaded."""

    piece_id: str      # "<corpus>/<relative path without extension>", unique in a dataset
    corpus: str
    source: str        # a MIDI path, or "<file.mat>#<key>/<index>"
    split: str
    group: str         # pieces of one group always share a split (tune family)
    step_s: float = 0.0  # seconds per row, for .mat rolls only


def hash_unit(key: str, seed: int = 0) -> float:
    """A stable number in [0, 1) for ``key`` (sha1; Python's hash() is salted per run)."""
    digest = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def hash_split(group: str, fractions=DEFAULT_HASH_FRACTIONS, seed: int = 0) -> str:
    """``train``/``valid``/``test`` for a group, by a hash: deterministic and group-consistent."""
    u = hash_unit(group, seed)
    edges = np.cumsum(fractions) / np.sum(fractions)
    return SPLITS[min(int(np.searchsorted(edges, u, side="right")), len(SPLITS) - 1)]


def read_split_file(path) -> dict:
    """``{file: (split, group or None)}`` from a CSV with columns file,split[,tune_family]."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"split file {path} does not exist; give a CSV with columns file,split[,tune_family]")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or ())
        if not {"file", "split"} <= cols:
            raise ConfigError(f"split file {path} has columns {sorted(cols)}; expected file,split[,tune_family]")
        return {row["file"].strip(): (row["split"].strip(), (row.get("tune_family") or "").strip() or None)
                for row in reader}


def iter_midi_files(root) -> Iterator[str]:
    """Every .mid/.midi file under ``root``, depth first, sorted per folder; streams.

    ``os.scandir`` reads one directory at a time, so a Lakh-sized tree costs memory
    for one folder listing per level, never for the whole tree. Hidden entries are
    skipped; symlinked folders are not followed (they can loop).
    """
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError:
            continue  # unreadable folder: nothing to list
        subfolders = []
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                subfolders.append(e.path)
            elif e.name.lower().endswith(MIDI_SUFFIXES) and e.is_file():
                yield e.path
        stack.extend(reversed(subfolders))


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._/-]+", "_", text)


def midi_corpus(root, *, name: str | None = None, split_file=None, seed: int = 0) -> Iterator[Piece]:
    """Pieces of a folder tree of MIDI files, with their splits (see module doc)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"corpus folder {root} does not exist")
    name = name or root.name
    table = {}
    if split_file is not None:
        table = read_split_file(split_file)
    elif (root / "splits.csv").is_file():
        table = read_split_file(root / "splits.csv")
    for path in iter_midi_files(root):
        rel = os.path.relpath(path, root)
        stem = os.path.splitext(rel)[0].replace(os.sep, "/")
        entry = table.get(rel.replace(os.sep, "/")) or table.get(os.path.basename(rel))
        if entry:
            split, group = entry[0], entry[1] or stem
        else:
            group = stem
            split = hash_split(f"{name}/{group}", seed=seed)
        yield Piece(f"{name}/{_safe_id(stem)}", name, path, split, f"{name}/{group}")


def default_step_s(mat_path) -> float:
    """Seconds per row of a Boulanger roll: a quarter at 120 bpm for JSB, else an eighth."""
    return 0.5 if "jsb" in Path(mat_path).name.lower() else 0.25


def mat_corpus(path, *, step_s: float | None = None) -> Iterator[Piece]:
    """Pieces of a Boulanger .mat set, with its official splits."""
    path = Path(path)
    mat = _load_mat(path)
    step = default_step_s(path) if step_s is None else float(step_s)
    if step <= 0:
        raise ConfigError(f"step_s={step} must be positive (seconds per piano-roll row)")
    name = path.stem
    for key, split in MAT_KEYS.items():
        for i in range(len(mat.get(key, ()))):
            pid = f"{name}/{split}_{i:04d}"
            yield Piece(pid, name, f"{path}#{key}/{i}", split, pid, step)


def _load_mat(path: Path) -> dict:
    import scipy.io

    if not path.is_file():
        raise ConfigError(f"piano-roll set {path} does not exist")
    try:
        raw = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises ValueError, TypeError, MatReadError...
        raise ConfigError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from e
    found = {k: raw[k][0] for k in MAT_KEYS if k in raw}
    if not found:
        raise ConfigError(f"{path}: no traindata/validdata/testdata arrays; expected a Boulanger-Lewandowski set")
    return found


def iter_corpus(spec, *, split_file=None, seed: int = 0, step_s: float | None = None) -> Iterator[Piece]:
    """Pieces of a folder of MIDI files or of a .mat roll set."""
    spec = Path(spec)
    if spec.suffix.lower() == ".mat":
        return mat_corpus(spec, step_s=step_s)
    return midi_corpus(spec, split_file=split_file, seed=seed)


def select(pieces, *, max_pieces: int | None = None, max_per_split: dict | None = None,
           seed: int = 0) -> list:
    """Usable pieces (train/valid/test), optionally a hash-chosen subset; keeps O(limit) memory.

    The subset is the ``max_pieces`` pieces with the smallest hash of their id (and
    at most ``max_per_split[split]`` per split): uniform over the corpus, stable
    when files are added, and computed while streaming.
    """
    heaps: dict = {s: [] for s in SPLITS}
    kept: list = []
    bounded = max_pieces is not None or max_per_split
    for piece in pieces:
        if piece.split not in SPLITS:
            continue
        if not bounded:
            kept.append(piece)
            continue
        limit = (max_per_split or {}).get(piece.split, max_pieces)
        if max_pieces is not None and limit is not None:
            limit = min(limit, max_pieces)
        key = -_select_hash(piece.piece_id, seed)
        heap = heaps[piece.split]
        if limit is None:
            kept.append(piece)
        elif len(heap) < limit:
            heapq.heappush(heap, (key, piece.piece_id, piece))
        elif limit > 0 and key > heap[0][0]:
            heapq.heapreplace(heap, (key, piece.piece_id, piece))
    for heap in heaps.values():
        kept.extend(p for _, _, p in heap)
    if max_pieces is not None and len(kept) > max_pieces:
        kept.sort(key=lambda p: _select_hash(p.piece_id, seed))
        kept = kept[:max_pieces]
    return sorted(kept, key=lambda p: p.piece_id)


def _select_hash(piece_id: str, seed: int) -> float:
    # salted differently from hash_split: the same hash would pick only the pieces
    # with the smallest split hash, i.e. a subset that is all "train"
    return hash_unit(f"select:{piece_id}", seed)


def held_out(pieces) -> Iterator[Piece]:
    return (p for p in pieces if p.split not in SPLITS)


def roll_to_score(roll, step_s: float, path: str = "<roll>") -> Score:
    """A Score from a binary (steps, 88) roll of MIDI pitches 21..108, ``step_s`` seconds per row."""
    roll = np.asarray(roll) > 0
    if roll.ndim != 2 or roll.shape[1] != 88:
        raise BadMidiError(f"{path}: piano roll has shape {roll.shape}; expected (steps, 88)")
    padded = np.zeros((roll.shape[0] + 2, 88), dtype=np.int8)
    padded[1:-1] = roll
    d = np.diff(padded, axis=0)
    # nonzero on the transpose walks pitch by pitch in time order, so the k-th onset
    # and the k-th offset belong to the same note
    on_pitch, on_step = np.nonzero(d.T == 1)
    _, off_step = np.nonzero(d.T == -1)
    if len(on_step) == 0:
        raise BadMidiError(f"{path}: piano roll contains no notes")
    notes = np.zeros(len(on_step), dtype=NOTE_DTYPE)
    notes["start_s"] = on_step * step_s
    notes["end_s"] = off_step * step_s
    notes["pitch"] = on_pitch + 21
    notes["velocity"] = 80
    notes = notes[np.argsort(notes["start_s"], kind="stable")]
    us_per_beat = np.array([step_s * 1e6])  # one row = one beat of the tempo map
    return Score(path, notes, MAT_TICKS_PER_BEAT, np.array([0], dtype=np.int64), us_per_beat, np.array([0.0]))


_MAT_CACHE: dict = {}


def load_piece(piece: Piece) -> Score:
    """The piece's Score, or BadMidiError with one clear line."""
    if "#" in piece.source and piece.source.split("#", 1)[0].lower().endswith(".mat"):
        mat_path, where = piece.source.split("#", 1)
        key, index = where.split("/")
        if mat_path not in _MAT_CACHE:  # one worker renders many pieces of one set
            _MAT_CACHE.clear()
            _MAT_CACHE[mat_path] = _load_mat(Path(mat_path))
        return roll_to_score(_MAT_CACHE[mat_path][key][int(index)], piece.step_s, piece.source)
    return load_midi(piece.source)
