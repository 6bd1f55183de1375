"""Exact cosine k-nearest-neighbour search: one numba kernel, one pass over the index.

The embeddings are L2-normalised (inside the ONNX graphs), so cosine similarity is a
dot product. One pass computes each row's score and keeps the best ``k`` in a small
sorted buffer, so memory traffic is a single read of the index (1M x 32 float32 =
128 MB) and no N-sized temporary is allocated per query; the 32-long dot product is
vectorised by LLVM (fastmath allows reassociation of the sum).

The kernel is compiled with ``cache=True`` (on-disk cache next to this file, or in
``NUMBA_CACHE_DIR``) and never at import: :func:`warm_up` compiles (or loads) it
before the audio stream opens, so the first audio frame never waits for LLVM.
"""

from __future__ import annotations

import numpy as np

import numba


@numba.njit(inline="always", nogil=True)
def _insert(out_idx, out_score, k, s, i):
    """Row ``i`` of score ``s`` into the sorted buffers (best first; k is a few dozen at most); the new
    worst kept score."""
    j = k - 1
    while j > 0 and out_score[j - 1] < s:
        out_score[j] = out_score[j - 1]
        out_idx[j] = out_idx[j - 1]
        j -= 1
    out_score[j] = s
    out_idx[j] = i
    return out_score[k - 1]


@numba.njit(cache=True, fastmath=True, nogil=True)
def _topk_dot(index, query, k, out_idx, out_score):
    """Fill out_idx/out_score (length k) with the k best rows, best first."""
    n, d = index.shape
    for j in range(k):
        out_idx[j] = -1
        out_score[j] = -np.inf
    worst = -np.inf
    for i in range(n):
        s = np.float32(0.0)
        for c in range(d):
            s += index[i, c] * query[c]
        if s > worst:
            worst = _insert(out_idx, out_score, k, s, i)
    return 0


@numba.njit(cache=True, fastmath=True, nogil=True)
def _topk_dot_many(index, queries, k, out_idx, out_score):
    """:func:`_topk_dot` for each row of ``queries`` (m, d) in one pass over the index: out_idx/out_score (m, k).

    Each row is read once for all m queries, where m calls would read the index m times. The dot
    product of a row and a query is :func:`_topk_dot`'s loop, so a query gets here the bits it gets
    alone (tests/follower/test_knn.py)."""
    n, d = index.shape
    m = queries.shape[0]
    worst = np.empty(m, np.float32)
    for q in range(m):
        worst[q] = -np.inf
        for j in range(k):
            out_idx[q, j] = -1
            out_score[q, j] = -np.inf
    for i in range(n):
        for q in range(m):
            s = np.float32(0.0)
            for c in range(d):
                s += index[i, c] * queries[q, c]
            if s > worst[q]:
                worst[q] = _insert(out_idx[q], out_score[q], k, s, i)
    return 0


def topk(index: np.ndarray, query: np.ndarray, k: int):
    """The ``k`` rows of ``index`` (n, d) with the largest dot product with ``query`` (d,).

    Returns (indices int64, scores float32), best first; ties keep the lower row
    first. ``index`` must be C-contiguous float32 (see :func:`as_search_matrix`).
    """
    k = int(min(k, len(index)))
    out_idx = np.empty(k, dtype=np.int64)
    out_score = np.empty(k, dtype=np.float32)
    if k <= 0:
        return out_idx, out_score
    _topk_dot(index, np.ascontiguousarray(query, dtype=np.float32), k, out_idx, out_score)
    return out_idx, out_score


def topk_many(index: np.ndarray, queries: np.ndarray, k: int):
    """:func:`topk` of each row of ``queries`` (m, d), bit for bit: (indices (m, k) int64, scores (m, k) float32).

    For queries known together (``follower replay --fast`` embeds a block's windows ahead): the index is
    read once per call, not once per query, which halves the time per query on these machines
    (docs/benchmarks.md)."""
    k = int(min(k, len(index)))
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    out_idx = np.empty((len(queries), max(k, 0)), dtype=np.int64)
    out_score = np.empty((len(queries), max(k, 0)), dtype=np.float32)
    if k > 0 and len(queries):
        _topk_dot_many(index, queries, k, out_idx, out_score)
    return out_idx, out_score


def many_as_one(index: np.ndarray, k: int, n: int = 4) -> bool:
    """Whether :func:`topk_many` gives ``n`` rows of ``index`` (slightly moved) exactly what :func:`topk` gives
    each. The two kernels share their loop, and LLVM compiles it alike for one processor; this checks it
    on the one at hand, once, as :func:`follower.ahead.batches_exact` checks the encoder."""
    if len(index) == 0:
        return True
    rng = np.random.default_rng(0)
    q = index[rng.integers(0, len(index), n)] + rng.normal(0, 0.05, (n, index.shape[1])).astype(np.float32)
    rows, scores = topk_many(index, q, k)
    return all(np.array_equal(r, a) and np.array_equal(s, b) for r, s, (a, b) in zip(rows, scores, (topk(index, x, k) for x in q)))


def as_search_matrix(embeddings: np.ndarray) -> np.ndarray:
    """The layout the kernel reads: C-contiguous float32 (indexes may store float16)."""
    return np.ascontiguousarray(embeddings, dtype=np.float32)


def warm_up(embed_dim: int = 32, k: int = 25) -> None:
    """Compile (or load from the cache) the kernel for the types the follower uses."""
    rng = np.random.default_rng(0)
    index = rng.standard_normal((max(k, 64), embed_dim)).astype(np.float32)
    topk(index, index[0], k)
    topk_many(index, index[:2], k)
