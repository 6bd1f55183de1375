"""Retrieval metrics of the paper's two evaluations (numpy only).

Ranks are 1-based and pessimistic on ties: a query's rank is the number of
candidates scoring at least as high as the true one (itself included), so a
constant similarity gives the worst rank, never the best.
"""

from __future__ import annotations

import numpy as np

from follower.errors import ConfigError

RECALL_AT = (1, 5, 10, 25)
PIECE_RANK_BINS = ("rank_1", "rank_le_5", "rank_le_10", "rank_gt_10")


def ranks_of_diagonal(sim: np.ndarray) -> np.ndarray:
    """Rank of candidate ``i`` for query ``i`` in each row of a square similarity matrix."""
    sim = np.asarray(sim)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ConfigError(f"similarity matrix of shape {sim.shape}; expected square (queries x candidates)")
    true = np.diagonal(sim)[:, None]
    return (sim >= true).sum(axis=1).astype(np.int64)


def retrieval_metrics(ranks) -> dict:
    """R@k (k in 1, 5, 10, 25), MRR, median and mean rank of 1-based ranks."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim != 1 or len(r) == 0 or (r < 1).any():
        raise ConfigError(f"ranks must be a non-empty 1-d array of values >= 1, got shape {r.shape}")
    out = {f"r@{k}": float(np.mean(r <= k)) for k in RECALL_AT}
    out.update(mrr=float(np.mean(1.0 / r)), median_rank=float(np.median(r)), mean_rank=float(r.mean()),
               n=int(len(r)))
    return out


def two_way_retrieval(audio_emb: np.ndarray, score_emb: np.ndarray) -> tuple[dict, dict]:
    """Paper §4: each query against all candidates of the other modality (pair i <-> i).

    Returns (metrics, ranks), both keyed "audio2score" and "score2audio".
    """
    a, s = np.asarray(audio_emb, np.float64), np.asarray(score_emb, np.float64)
    if a.shape != s.shape or a.ndim != 2:
        raise ConfigError(f"embedding arrays of shapes {a.shape} and {s.shape}; expected equal (n, d)")
    sim = a @ s.T
    ranks = {"audio2score": ranks_of_diagonal(sim), "score2audio": ranks_of_diagonal(sim.T)}
    return {k: retrieval_metrics(v) for k, v in ranks.items()}, ranks


def piece_votes(query_emb: np.ndarray, db_emb: np.ndarray, db_piece: np.ndarray, n_pieces: int,
                *, k: int = 25) -> np.ndarray:
    """Paper §5: each query excerpt votes for the pieces of its ``k`` nearest database snippets.

    Returns the vote count of every piece, shape (n_pieces,).
    """
    db_piece = np.asarray(db_piece, dtype=np.int64)
    if len(db_piece) != len(db_emb):
        raise ConfigError(f"{len(db_piece)} piece ids for {len(db_emb)} database embeddings; expected one each")
    k = min(k, len(db_emb))
    sim = np.asarray(query_emb, np.float32) @ np.asarray(db_emb, np.float32).T
    nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    return np.bincount(db_piece[nearest].ravel(), minlength=n_pieces)


def piece_rank(votes: np.ndarray, true_piece: int) -> int:
    """1-based rank of the true piece by votes, pessimistic on ties."""
    votes = np.asarray(votes)
    return int((votes >= votes[true_piece]).sum())


def identification_summary(ranks) -> dict:
    """Counts and ratios of pieces identified at rank 1, <= 5, <= 10 and > 10 (paper Table 4)."""
    r = np.asarray(ranks, dtype=np.int64)
    n = len(r)
    if n == 0:
        raise ConfigError("no queries to summarise")
    counts = {"rank_1": int((r == 1).sum()), "rank_le_5": int((r <= 5).sum()),
              "rank_le_10": int((r <= 10).sum()), "rank_gt_10": int((r > 10).sum())}
    out = {name: {"count": c, "ratio": c / n} for name, c in counts.items()}
    out.update(n=n, mrr=float(np.mean(1.0 / r)), median_rank=float(np.median(r)))
    return out
