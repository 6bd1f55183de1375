"""Building an index in shards: a slice of the corpus's files, embedded into an index of its own.

A shard is built by :func:`follower.index.build_index` itself (whatever makes it fast
serves the shards too), given its files one by one. Embedding a file alone names its
piece by the file's stem, so the shard's ids, titles that fell back to the id, and
sources are then set to what the whole-corpus build would have written: shards merged
in order (:func:`follower.merge.merge_indexes`) equal the serial build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .index import Index, build_index


def shard_files(files: list, n_shards: int) -> list[list]:
    """``files`` cut into ``n_shards`` contiguous runs of near-equal length (order kept)."""
    n_shards = max(1, min(int(n_shards), len(files)))
    bounds = np.linspace(0, len(files), n_shards + 1).round().astype(int)
    return [files[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def build_shard(files: list[tuple], bundle, *, hop_frames: int, dtype, sources=None,
                originals: list | None = None) -> Index:
    """The index of ``files`` [(path, piece id)], ids as given; one process, no progress bar.

    ``originals`` (same length) are the paths to report for skipped files when ``files``
    are local copies (a cluster worker writes the bytes it was sent to its own disk).
    """
    paths = [Path(f) for f, _ in files]
    index = build_index(paths, bundle, hop_frames=hop_frames, dtype=dtype, progress=False, workers=1)
    original = dict(zip(map(str, paths), map(str, originals or paths)))
    skipped = {s["file"] for s in index.header["skipped"]}
    kept = [(Path(f), pid) for f, pid in files if str(f) not in skipped]
    assert len(kept) == index.n_pieces, "a shard's pieces are its readable files, in order"
    # a piece without a title of its own got its id in the build; the shard's ids differ from those
    titles = [t if t != own else pid for t, own, (_, pid) in zip(index.titles.tolist(), index.piece_ids.tolist(), kept)]
    index.piece_ids = np.array([pid for _, pid in kept], dtype=str)
    index.titles = np.array(titles, dtype=str)
    for s in index.header["skipped"]:
        orig = original.get(s["file"], s["file"])
        s["reason"], s["file"] = s["reason"].replace(s["file"], orig), orig
    index.header["sources"] = [str(s) for s in (sources if sources is not None else originals or paths)]
    return index
