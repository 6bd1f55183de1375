"""Joining indexes built separately (on other machines, in shards, at other times) into one.

Indexes join only when their snippets live in one embedding space on one grid: the
same bundle fingerprint, embedding size, hop and frame rate. Pieces keep their order
(the first index's pieces, then the second's, ...). A piece id that an earlier index
already holds is either the same piece built twice (identical rows: the copy is
dropped) or another piece under the same name (it is kept, renamed
``<index name>/<id>``); both are reported. An approximate-search structure is not
carried over: it is rebuilt for the merged rows (:mod:`follower.ann`). The pieces' notes
(for the fine aligner) are carried when every index has them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BundleError
from .index import Index

GRID_KEYS = ("hop_frames", "frame_rate_hz")


def _same_piece(a: Index, i: int, b: Index, j: int) -> bool:
    ra, rb = a.rows(i), b.rows(j)
    return (ra.stop - ra.start == rb.stop - rb.start
            and np.array_equal(a.embeddings[ra], b.embeddings[rb])
            and np.array_equal(a.position_s[ra], b.position_s[rb]))


def merge_indexes(parts: list[Index], names: list[str] | None = None) -> tuple[Index, list[str]]:
    """One index of every piece of ``parts`` and the lines reporting duplicate ids.

    ``names`` label the parts in messages and renamed ids (default ``index1``, ...).
    Raises BundleError with one line when the parts cannot be joined.
    """
    if not parts:
        raise BundleError("nothing to merge: give at least one index")
    names = list(names) if names else [f"index{i + 1}" for i in range(len(parts))]
    first, first_name = parts[0], names[0]
    for part, name in zip(parts[1:], names[1:]):
        if part.score_encoder != first.score_encoder:
            raise BundleError(f"{name} was built with the {part.score_encoder} score encoder but {first_name} with "
                              f"the {first.score_encoder} one; rebuild one of them with the other's --score-encoder")
        if part.fingerprint != first.fingerprint:
            raise BundleError(f"{name} was built with bundle {part.fingerprint or '(unknown)'} but {first_name} "
                              f"with {first.fingerprint or '(unknown)'}; rebuild one of them with the other's bundle")
        if part.embeddings.shape[1] != first.embeddings.shape[1]:
            raise BundleError(f"{name} holds {part.embeddings.shape[1]}-d embeddings but {first_name} "
                              f"{first.embeddings.shape[1]}-d ones; they cannot be merged")
        for key in GRID_KEYS:
            if part.header.get(key) != first.header.get(key):
                raise BundleError(f"{name} has {key}={part.header.get(key)} but {first_name} has "
                                  f"{first.header.get(key)}; rebuild one with the other's --hop-frames")

    seen: dict[str, tuple[int, int]] = {}   # piece id -> (part, piece) that holds it
    report: list[str] = []
    keep_pieces, new_ids = [], []
    for k, (part, name) in enumerate(zip(parts, names)):
        keep = np.ones(part.n_pieces, dtype=bool)
        ids = part.piece_ids.astype(object)
        for p, pid in enumerate(part.piece_ids.tolist()):
            if pid not in seen:
                seen[pid] = (k, p)
                continue
            k0, p0 = seen[pid]
            if _same_piece(parts[k0], p0, part, p):
                keep[p] = False
                report.append(f"{name}: {pid} is already in {names[k0]} with identical snippets; kept once")
                continue
            new = f"{Path(name).name.split('.')[0]}/{pid}"
            n = 2
            while new in seen:
                new, n = f"{Path(name).name.split('.')[0]}~{n}/{pid}", n + 1
            seen[new] = (k, p)
            ids[p] = new
            report.append(f"{name}: {pid} is also in {names[k0]} with other snippets; kept as {new}")
        keep_pieces.append(keep)
        new_ids.append(ids[keep])

    dtype = np.result_type(*[p.embeddings.dtype for p in parts])
    counts = np.concatenate([np.diff(p.piece_start)[keep] for p, keep in zip(parts, keep_pieces)]).astype(np.int64)
    masks = [np.repeat(keep, np.diff(p.piece_start)) for p, keep in zip(parts, keep_pieces)]

    def joined(name, dt=None):
        out = np.concatenate([getattr(p, name)[m] for p, m in zip(parts, masks)])
        return out if dt is None else out.astype(dt, copy=False)

    notes = {}
    if all(p.has_notes for p in parts):  # the pieces' notes (the fine aligner's) go with their pieces
        per_piece = [np.diff(p.note_start)[keep] for p, keep in zip(parts, keep_pieces)]
        note_masks = [np.repeat(keep, np.diff(p.note_start)) for p, keep in zip(parts, keep_pieces)]
        notes = {name: np.concatenate([getattr(p, name)[m] for p, m in zip(parts, note_masks)])
                 for name in ("note_onset_s", "note_end_s", "note_pitch")}
        notes["note_start"] = np.concatenate([[0], np.cumsum(np.concatenate(per_piece))]).astype(np.int64)

    header = {k: v for k, v in first.header.items() if k != "ann"}
    header.update(
        n_pieces=int(len(counts)), n_snippets=int(counts.sum()),
        n_encoded=int(sum(p.header.get("n_encoded", p.n_snippets) for p in parts)),
        sources=sum((list(p.header.get("sources", [])) for p in parts), []),
        skipped=sum((list(p.header.get("skipped", [])) for p in parts), []),
        build_s=round(sum(float(p.header.get("build_s", 0.0)) for p in parts), 1),
        resumed_pieces=int(sum(p.header.get("resumed_pieces", 0) for p in parts)),
        merged_from=[str(n) for n in names], duplicates=report)
    merged = Index(
        header=header,
        embeddings=joined("embeddings", dtype),
        piece=np.repeat(np.arange(len(counts), dtype=np.int32), counts),
        position_s=joined("position_s", np.float32),
        position_beats=joined("position_beats", np.float32),
        piece_ids=np.array(np.concatenate(new_ids).tolist(), dtype=str),
        titles=np.array(np.concatenate([p.titles[keep] for p, keep in zip(parts, keep_pieces)]).tolist(), dtype=str),
        piece_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        duration_s=np.concatenate([p.duration_s[keep] for p, keep in zip(parts, keep_pieces)]).astype(np.float32),
        **notes,
    )
    return merged, report
