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
    """Join follower indexes built with one bundle into one index file (:mod:`follower.merge`).

    Stricter than ``follower index merge``: a piece id in two indexes is refused, not
    kept once or renamed, because the growth benchmark counts every piece as distinct.
    """
    from follower.errors import BundleError
    from follower.index import load_index, save_index
    from follower.merge import merge_indexes as join

    parts = [load_index(p) for p in paths]
    fingerprints = {p.fingerprint for p in parts}
    if len(fingerprints) != 1:
        raise BundleError(f"indexes {', '.join(map(str, paths))} come from different bundles {sorted(fingerprints)}")
    ids = np.concatenate([p.piece_ids for p in parts])
    if len(set(ids.tolist())) != len(ids):
        raise BundleError("the indexes share piece ids; merging them would make pieces ambiguous")
    merged, _ = join(parts, [str(p) for p in paths])
    return save_index(merged, out)


def index_summary(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["header"]))
    return {"pieces": header["n_pieces"], "snippets": header["n_snippets"], "hop_frames": header.get("hop_frames")}
