"""Verification of vote hypotheses along their paths (the second stage of fingerprinting).

The vote cells say "piece p, now at about position P". A hypothesis is checked by
walking back over the last ``window_s`` of audio queries: if p is played from P at
tempo r, the query of ``dt`` seconds ago should resemble the snippet at
``P - r * dt``. The hypothesis' score is the mean similarity along that path, the
best over a few tempi and small position shifts. Every query counts, not only the
ones whose true snippet made it into the top k, so a correct hypothesis stands out
even for a model whose single-snippet retrieval is modest.

Similarities are standardised per query against the whole index (z-scores, from
the index's mean embedding and covariance, computed once), so that scores and
thresholds mean the same for any model: 0 is what a random snippet scores, and a
correct path typically scores well above 1. Path points outside the piece count 0.
"""

from __future__ import annotations

import numba
import numpy as np

from .npsum import pairwise_sum


# No fastmath in these kernels: they add in exactly numpy's order (follower.npsum),
# so the scores are bit for bit those of the plain numpy version they replaced.
@numba.njit(cache=True, nogil=True)
def _path_cells(positions_s, pieces, piece_start, r, s, dt, cell_s, cell, lo, hi):
    """Snippet cell of every path point (n, v, h) and each hypothesis' cell range [lo, hi) inside its piece."""
    for i in range(len(positions_s)):
        cmin, cmax = np.iinfo(np.int64).max, np.iinfo(np.int64).min
        for a in range(len(r)):
            base = positions_s[i] + s[a]
            for t in range(len(dt)):
                c = np.int64(np.rint((base - r[a] * dt[t]) / cell_s))
                cell[i, a, t] = c
                cmin = min(cmin, c)
                cmax = max(cmax, c)
        length = piece_start[pieces[i] + 1] - piece_start[pieces[i]]
        lo[i] = max(cmin, 0)
        hi[i] = min(cmax + 1, length)


@numba.njit(cache=True, nogil=True)
def _path_means(sims, bias, cell, lo, hi, denom, out):
    """out[a] = sum over t of sims[cell[a, t] - lo, t] - bias[t] (0 outside [lo, hi)), / denom, in float32
    as numpy did."""
    v, h = cell.shape
    buf = np.empty(h, np.float32)
    for a in range(v):
        for t in range(h):
            c = cell[a, t]
            buf[t] = np.float32(sims[c - lo, t] - bias[t]) if lo <= c < hi else np.float32(0.0)
        out[a] = np.float32(pairwise_sum(buf, 0, h) / np.float32(denom))


def index_statistics(index, search: np.ndarray, sample_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean embedding and covariance of ``search`` (the index's rows; a seeded sample of ``sample_rows``
    where it has more), which standardise every query's similarities. Kept with the index where ``search``
    is its own search matrix: every engine over it (the pair of ``follower.two_speeds``, each file of a
    batch replay) standardises alike, and the sample and product are paid once (0.1 s at 200,000 rows)."""
    def make():
        rng = np.random.default_rng(0)
        sample = search if len(search) <= sample_rows else search[rng.choice(len(search), sample_rows, replace=False)]
        mu = sample.mean(axis=0, dtype=np.float64)
        centred = np.ascontiguousarray(sample - mu.astype(np.float32))
        return mu, (centred.T @ centred).astype(np.float64) / max(len(sample) - 1, 1)  # one sgemm

    if search is not index.__dict__.get("search_matrix"):  # (rows of the caller's own: not the index's to keep)
        return make()
    return index.kept(("verify_statistics", sample_rows), make)


class PathVerifier:
    def __init__(self, index, search: np.ndarray, *, update_s: float, window_s: float = 4.0,
                 min_window_s: float = 2.5, tempi=(0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4), shifts_s=(-0.2, 0.0, 0.2),
                 sample_rows: int = 100_000):
        self.index = index
        self._E = search
        self._mu, self._cov = index_statistics(index, search, sample_rows)
        self._tempi = np.asarray(tempi, np.float64)
        self._shifts = np.asarray(shifts_s, np.float64)
        self.window_s = window_s
        self._min_queries = int(min_window_s / update_s)
        h = int(np.ceil(window_s / update_s)) + 1
        self._q = np.zeros((h, search.shape[1]), np.float32)
        self._bias = np.zeros(h, np.float32)
        self._t = np.full(h, -np.inf)
        self._i = 0
        self._cell_s = index.cell_s  # snippet i of a piece is centred at i * cell_s
        self._piece_start = np.asarray(index.piece_start, np.int64)
        r, s = np.meshgrid(self._tempi, self._shifts, indexing="ij")
        self._r, self._s = r.ravel(), s.ravel()                          # the (tempo, shift) variants

    def warm_up(self) -> None:
        """Compile (or load) the kernels before audio starts."""
        cell, lo, hi = np.zeros((1, 1, 2), np.int64), np.zeros(1, np.int64), np.ones(1, np.int64)
        _path_cells(np.zeros(1), np.zeros(1, np.int64), self._piece_start, self._r[:1], self._s[:1], np.zeros(2),
                    self._cell_s, cell, lo, hi)
        _path_means(np.zeros((1, 2), np.float32), np.zeros(2, np.float32), cell[0], 0, 1, 2, np.zeros(1))

    def reset(self) -> None:
        self._t[:] = -np.inf

    def standardise(self, q: np.ndarray) -> tuple[float, float]:
        """(scale, bias) such that ``sims * scale - bias`` are z-scores of ``q``'s similarities."""
        q64 = q.astype(np.float64)
        sd = float(np.sqrt(max(q64 @ self._cov @ q64, 1e-12)))
        return 1.0 / sd, float(self._mu @ q64) / sd

    def add(self, centre_s: float, q: np.ndarray, standard: tuple[float, float] | None = None) -> None:
        """Remember a query, scaled so that ``E @ q' - bias`` is its z-score against the index.

        ``standard``: :meth:`standardise` of ``q`` where the caller has it already."""
        scale, bias = standard if standard is not None else self.standardise(q)
        self._q[self._i] = q * scale
        self._bias[self._i] = bias
        self._t[self._i] = centre_s
        self._i = (self._i + 1) % len(self._t)

    def history_s(self, now_s: float) -> float:
        """Seconds of audio queries the verification can walk back over now."""
        recent = self._t[now_s - self._t <= self.window_s + 1e-9]
        return float(now_s - recent.min()) if len(recent) else 0.0

    def score(self, pieces, positions_s, now_s: float):
        """Best path score for each hypothesis (piece, position of the window centre now).

        Returns (score, tempo, position_s) arrays: the z-score of the best path, its
        tempo and its (shifted) position now.
        """
        pieces = np.asarray(pieces, np.int64)
        positions_s = np.asarray(positions_s, np.float64)
        n = len(pieces)
        recent = np.nonzero(now_s - self._t <= self.window_s + 1e-9)[0]
        if n == 0 or len(recent) == 0:
            return np.zeros(n), np.ones(n), positions_s
        dt = now_s - self._t[recent]                                     # (h,)
        r, s = self._r, self._s                                          # (v,)
        cell = np.empty((n, len(r), len(recent)), np.int64)            # (n, v, h)
        lo, hi = np.empty(n, np.int64), np.empty(n, np.int64)
        _path_cells(positions_s, pieces, self._piece_start, r, s, dt, self._cell_s, cell, lo, hi)
        qt, bias = self._q[recent].T, self._bias[recent]
        denom = max(len(recent), self._min_queries)  # a short history must not decide alone
        z = np.zeros((n, len(r)))
        E, ps = self._E, self._piece_start
        for i, p, a, b in zip(range(n), pieces.tolist(), lo.tolist(), hi.tolist()):  # Python ints: cheaper per call
            if b <= a:  # every path lies outside the piece: score 0
                continue
            # similarities of the recent queries with the stretch of the piece the paths cross
            # (one product per hypothesis, as before: BLAS rounds a row differently in another
            # slice; np.dot, not @, costs less per call and gives the same bits)
            start = int(ps[p])
            sims = np.dot(E[start + a:start + b], qt)                # (m, h)
            _path_means(sims, bias, cell[i], a, b, denom, z[i])
        best = np.argmax(z, axis=1)
        k = np.arange(n)
        return z[k, best], r[best], positions_s + s[best]
