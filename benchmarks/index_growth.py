"""Identification as the index grows, with real distractors.

``benchmarks/latency.py`` times the search up to 1M snippets with random vectors;
random vectors never look like music, so they cannot tell whether recall holds.
Here the chorale index is merged with the piano-midi.de index (the same bundle;
no re-embedding: both are score-snippet embeddings in one space), and the chorale
and Bach10 items are replayed against the union: ~8x more snippets, all real music.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def merge_indexes(paths: list[Path], out: Path) -> Path:
    """Concatenate follower indexes built with one bundle into one index file."""
    from follower.errors import BundleError
    from follower.index import ARRAYS, Index, load_index, save_index

    parts = [load_index(p) for p in paths]
    fingerprints = {p.fingerprint for p in parts}
    if len(fingerprints) != 1:
        raise BundleError(f"indexes {', '.join(map(str, paths))} come from different bundles {sorted(fingerprints)}")
    ids = np.concatenate([p.piece_ids for p in parts])
    if len(set(ids.tolist())) != len(ids):
        raise BundleError("the indexes share piece ids; merging them would make pieces ambiguous")
    piece_offsets = np.cumsum([0] + [p.n_pieces for p in parts])
    row_offsets = np.cumsum([0] + [p.n_snippets for p in parts])
    header = dict(parts[0].header)
    header.update(n_pieces=int(piece_offsets[-1]), n_snippets=int(row_offsets[-1]),
                  n_encoded=int(sum(p.header.get("n_encoded", p.n_snippets) for p in parts)),
                  sources=sum((p.header.get("sources", []) for p in parts), []),
                  skipped=sum((p.header.get("skipped", []) for p in parts), []),
                  merged_from=[str(p) for p in paths])
    arrays = {
        "embeddings": np.concatenate([p.embeddings for p in parts]),
        "piece": np.concatenate([p.piece + off for p, off in zip(parts, piece_offsets)]).astype(np.int32),
        "position_s": np.concatenate([p.position_s for p in parts]),
        "position_beats": np.concatenate([p.position_beats for p in parts]),
        "piece_ids": ids,
        "titles": np.concatenate([p.titles for p in parts]),
        "piece_start": np.concatenate([[0]] + [p.piece_start[1:] + off for p, off in zip(parts, row_offsets)]),
        "duration_s": np.concatenate([p.duration_s for p in parts]),
    }
    assert set(arrays) == set(ARRAYS)
    if all(p.has_notes for p in parts):  # the frame-level aligner's notes travel with their pieces
        note_offsets = np.cumsum([0] + [len(p.note_onset_s) for p in parts])
        arrays.update(note_start=np.concatenate([[0]] + [p.note_start[1:] + off for p, off in zip(parts, note_offsets)]),
                      note_onset_s=np.concatenate([p.note_onset_s for p in parts]),
                      note_end_s=np.concatenate([p.note_end_s for p in parts]),
                      note_pitch=np.concatenate([p.note_pitch for p in parts]))
    return save_index(Index(header=header, **arrays), out)


def index_summary(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["header"]))
    return {"pieces": header["n_pieces"], "snippets": header["n_snippets"], "hop_frames": header.get("hop_frames")}
