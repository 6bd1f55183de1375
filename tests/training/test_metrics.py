import numpy as np
import pytest

from follower.errors import ConfigError
from training.evaluate.metrics import (identification_summary, piece_rank, piece_votes, ranks_of_diagonal,
                              retrieval_metrics, two_way_retrieval)


def test_ranks_known_matrix():
    sim = np.array([[0.9, 0.1, 0.2],
                    [0.8, 0.5, 0.1],
                    [0.3, 0.4, 0.1]])
    assert ranks_of_diagonal(sim).tolist() == [1, 2, 3]
    assert ranks_of_diagonal(sim.T).tolist() == [1, 1, 3]  # 0.1 ties with 0.1: pessimistic


def test_ties_are_pessimistic():
    assert ranks_of_diagonal(np.zeros((4, 4))).tolist() == [4, 4, 4, 4]


def test_retrieval_metrics_values():
    m = retrieval_metrics([1, 2, 5, 10, 30])
    assert m["r@1"] == pytest.approx(0.2)
    assert m["r@5"] == pytest.approx(0.6)
    assert m["r@10"] == pytest.approx(0.8)
    assert m["r@25"] == pytest.approx(0.8)
    assert m["mrr"] == pytest.approx(np.mean([1, 1 / 2, 1 / 5, 1 / 10, 1 / 30]))
    assert m["median_rank"] == 5


def test_two_way_on_seeded_vectors_with_known_ranks():
    # score embeddings are orthonormal directions; audio query i is built so that exactly
    # want[i] - 1 wrong candidates score higher than its true counterpart
    rng = np.random.default_rng(0)
    n, d = 12, 16
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0][:n]
    want = rng.integers(1, n + 1, size=n)
    audio = np.empty_like(basis)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        rng.shuffle(others)
        above = others[: want[i] - 1]
        audio[i] = 0.5 * basis[i] + sum((0.6 + 0.01 * t) * basis[j] for t, j in enumerate(above))
    metrics, ranks = two_way_retrieval(audio, basis)
    assert ranks["audio2score"].tolist() == want.tolist()
    assert metrics["audio2score"]["r@1"] == pytest.approx(np.mean(want == 1))
    assert metrics["audio2score"]["mrr"] == pytest.approx(np.mean(1 / want))


def test_perfect_embeddings():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(50, 8))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    metrics, _ = two_way_retrieval(e, e)
    assert metrics["audio2score"]["r@1"] == 1.0 and metrics["score2audio"]["mrr"] == 1.0


def test_piece_votes_and_rank():
    db = np.eye(6)[[0, 1, 2, 3, 4, 5]]
    db_piece = np.array([0, 0, 1, 1, 2, 2])
    q = np.array([[1.0, 0.9, 0, 0, 0, 0.1]])  # nearest 2: rows 0, 1 (piece 0)
    votes = piece_votes(q, db, db_piece, 3, k=2)
    assert votes.tolist() == [2, 0, 0]
    assert piece_rank(votes, 0) == 1
    assert piece_rank(votes, 2) == 3  # tie at zero votes counts as worst


def test_identification_summary():
    s = identification_summary([1, 1, 3, 7, 12])
    assert s["rank_1"] == {"count": 2, "ratio": 0.4}
    assert s["rank_le_5"]["count"] == 3 and s["rank_le_10"]["count"] == 4 and s["rank_gt_10"]["count"] == 1


def test_bad_inputs_one_line():
    with pytest.raises(ConfigError, match="expected square"):
        ranks_of_diagonal(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="expected equal"):
        two_way_retrieval(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ConfigError, match="one each"):
        piece_votes(np.zeros((1, 2)), np.zeros((3, 2)), [0, 1], 2)
