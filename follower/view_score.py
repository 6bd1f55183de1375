"""The live view's piano roll of a piece: its notes and beat grid as JSON, read from the piece's MIDI file.

An index built since December 2026 carries its pieces' notes (for the fine aligner),
and the page draws those when the MIDI file is not at hand (an installed wheel, a
copied index), with a beat grid from the snippets' beat positions. Otherwise, an
index records the folders (or files) it was built from (``header["sources"]``) and each piece's id is its MIDI
path relative to such a folder, without the suffix. So the MIDI file of a piece is
looked up under, in order: the folders given with ``--view-midi``; each source as
written in the index header, taken relative to the working directory, to the
checkout and to the index's own folder; and ``$SCOREFOLLOW_DATA/midi/<source
folder name>``. A piece whose file is not found still gets its duration from the
index (the page draws the timeline and the cursor, and says what is missing).

Only ids that are in the index are looked up (a request never names a path), and
files are only read.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from .errors import BadMidiError
from .index import MIDI_SUFFIXES
from .paths import REPO_ROOT

MAX_NOTES = 50_000  # a longer piece is cut here: the page draws a window, and the JSON stays < 2 MB


def candidate_folders(index, index_path=None, midi_dirs=()) -> list[Path]:
    """Where a piece's MIDI file may be, best first, each folder once (see the module docstring)."""
    out: list[Path] = [Path(d) for d in midi_dirs]
    bases = [Path.cwd(), REPO_ROOT] + ([Path(index_path).resolve().parent] if index_path else [])
    data = os.environ.get("SCOREFOLLOW_DATA")
    for src in index.header.get("sources", []) or []:
        src = Path(str(src))
        out += [src] if src.is_absolute() else [b / src for b in bases]
        if data:
            out.append(Path(data) / "midi" / src.name)
    seen, unique = set(), []
    for p in out:
        key = os.path.normpath(str(p))
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def find_piece_midi(piece_id: str, folders) -> Path | None:
    """The MIDI file of ``piece_id`` (``folder/<id>.mid`` or ``.midi``; a source that is a file named by its stem)."""
    for folder in folders:
        if folder.is_file():
            if folder.with_suffix("").name == piece_id:
                return folder
            continue
        for suffix in MIDI_SUFFIXES + tuple(s.upper() for s in MIDI_SUFFIXES):
            f = folder / f"{piece_id}{suffix}"
            if f.is_file():
                return f
    return None


def roll_json(index, piece: int, folders) -> dict:
    """What the page draws for piece number ``piece``: notes (start_s, end_s, pitch), beat times, or why not."""
    from .midi import load_midi

    pid = str(index.piece_ids[piece])
    duration = float(index.duration_s[piece])
    out = {"piece": pid, "title": str(index.titles[piece]), "duration_s": round(duration, 3), "notes": [],
           "beats_s": [], "pitch_lo": 48, "pitch_hi": 84, "source": None, "missing": None}
    path = find_piece_midi(pid, folders)
    if path is None and index.has_notes:
        start_s, end_s, pitch = index.notes(piece)
        keep = slice(0, MAX_NOTES)
        out["source"] = "index"
        if len(pitch):
            out["notes"] = np.round(np.stack([start_s[keep], end_s[keep], pitch[keep]], axis=1)
                                    .astype(np.float64), 3).tolist()
            out["pitch_lo"], out["pitch_hi"] = int(pitch.min()), int(pitch.max())
        rows = index.rows(piece)
        pos, beats = index.position_s[rows].astype(np.float64), index.position_beats[rows].astype(np.float64)
        if len(beats) > 1:
            out["beats_s"] = np.round(np.interp(np.arange(0, np.floor(beats[-1]) + 1), beats, pos), 3).tolist()
        return out
    if path is None:
        where = ", ".join(str(f) for f in folders) or "(the index names no source folders)"
        out["missing"] = (f"no MIDI file for {pid} under {where}; start the follower with "
                          "--view-midi DIR (the folder the index was built from) to see its notes")
        return out
    try:
        score = load_midi(path)
    except BadMidiError as e:
        out["missing"] = str(e)
        return out
    notes = score.pitched[:MAX_NOTES]
    out["source"] = str(path)
    if len(notes):
        out["notes"] = np.round(np.stack([notes["start_s"], notes["end_s"], notes["pitch"]], axis=1), 3).tolist()
        out["pitch_lo"], out["pitch_hi"] = int(notes["pitch"].min()), int(notes["pitch"].max())
    end_beat = float(score.seconds_to_beats(max(duration, score.duration_s)))
    out["beats_s"] = np.round(score.beats_to_seconds(np.arange(0, np.floor(end_beat) + 1)), 3).tolist()
    return out


class PieceScores:
    """The roll JSON of each piece of an index, made on first request and kept (one lookup per piece)."""

    def __init__(self, index, index_path=None, midi_dirs=()):
        self.index = index
        self.folders = candidate_folders(index, index_path, midi_dirs)
        self._number = {str(pid): i for i, pid in enumerate(index.piece_ids)}
        self._cache: dict = {}
        self._lock = threading.Lock()

    def get(self, piece_id: str) -> dict | None:
        """The piece's roll JSON, or None when the index has no such piece."""
        number = self._number.get(piece_id)
        if number is None:
            return None
        with self._lock:  # two browser tabs asking at once read the file once
            if piece_id not in self._cache:
                self._cache[piece_id] = roll_json(self.index, number, self.folders)
            return self._cache[piece_id]
