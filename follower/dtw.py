"""Offline dynamic time warping within a band, for ``follower align`` (numba, no dense matrix).

The cost of matching audio frame ``i`` with score frame ``j`` is ``offset - X[i] . Y[j]``
(feature rows pre-scaled so that the dot product is a weighted sum of cosine
similarities), computed on the fly, so that only the band's step choices are
stored (one byte a cell). Row ``i`` may only visit score frames ``lo[i] <= j < hi[i]``;
a full band (``lo = 0``, ``hi = n_score``) is ordinary DTW.

Steps: diagonal (1, 1) at the cell's cost; audio only (1, 0) or score only (0, 1) at
the cell's cost plus ``penalty``, so that a held note or a skipped grace costs
something but is possible, at any local tempo. With ``free_ends`` the path may start
and end anywhere in the score (a recording of an excerpt); otherwise it runs from
the first score frame to the last.
"""

from __future__ import annotations

import numba
import numpy as np

DIAG, AUDIO, SCORE = 0, 1, 2


@numba.njit(cache=True, fastmath=True, nogil=True)
def _band_dtw(X, Y, lo, hi, offset, penalty, free_ends):
    n = X.shape[0]
    width = 0
    for i in range(n):
        width = max(width, hi[i] - lo[i])
    steps = np.full((n, width), -1, np.int8)
    prev = np.full(Y.shape[0] + 1, np.inf)
    cur = np.full(Y.shape[0] + 1, np.inf)
    d = X.shape[1]
    for i in range(n):
        for j in range(lo[i], hi[i]):
            c = offset
            for k in range(d):
                c -= X[i, k] * Y[j, k]
            best = np.inf
            step = -1
            if i == 0:
                if free_ends or j == 0:  # a path starts here
                    best, step = 0.0, DIAG
            else:
                if j > 0 and prev[j - 1] < best:
                    best, step = prev[j - 1], DIAG
                if prev[j] + penalty < best:
                    best, step = prev[j] + penalty, AUDIO
            if j > lo[i] and cur[j - 1] + penalty < best:
                best, step = cur[j - 1] + penalty, SCORE
            cur[j] = best + c
            steps[i, j - lo[i]] = step
        # cells outside the band are unreachable
        for j in range(lo[i]):
            cur[j] = np.inf
        for j in range(hi[i], Y.shape[0] + 1):
            cur[j] = np.inf
        if i < n - 1:
            for j in range(Y.shape[0] + 1):
                prev[j] = cur[j]
                cur[j] = np.inf
    return steps, cur


def band_dtw(X: np.ndarray, Y: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, offset: float,
             penalty: float, free_ends: bool) -> np.ndarray:
    """The cheapest path as an (m, 2) array of (audio frame, score frame), both non-decreasing."""
    X = np.ascontiguousarray(X, np.float32)
    Y = np.ascontiguousarray(Y, np.float32)
    lo = np.ascontiguousarray(lo, np.int64)
    hi = np.ascontiguousarray(hi, np.int64)
    steps, last = _band_dtw(X, Y, lo, hi, float(offset), float(penalty), bool(free_ends))
    n = len(X)
    if free_ends:
        j = int(np.argmin(last[:len(Y)]))
    else:
        j = len(Y) - 1
    if not np.isfinite(last[j]):
        raise ValueError("no path through the band")  # a bug, never the user's input
    return _backtrack(steps, lo, n - 1, j)


@numba.njit(cache=True)
def _backtrack(steps, lo, i, j):
    out = np.empty((i + j + 2, 2), np.int64)
    k = 0
    while True:
        out[k, 0] = i
        out[k, 1] = j
        k += 1
        s = steps[i, j - lo[i]]
        if i == 0 and s == DIAG:
            break
        if s == DIAG:
            i -= 1
            j -= 1
        elif s == AUDIO:
            i -= 1
        else:
            j -= 1
        if i < 0 or j < 0:
            break
    return out[:k][::-1].copy()
