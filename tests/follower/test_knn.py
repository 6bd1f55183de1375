"""The numba top-k kernel against a numpy brute force."""

import numpy as np
import pytest

from follower import knn


def brute_force(index, query, k):
    scores = index @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return order, scores[order]


@pytest.mark.parametrize("n,d,k", [(1, 8, 1), (50, 32, 25), (5000, 32, 25), (2000, 72, 7), (10, 16, 25)])
def test_topk_equals_brute_force(n, d, k):
    rng = np.random.default_rng(n + d + k)
    index = rng.standard_normal((n, d)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    for _ in range(5):
        q = rng.standard_normal(d).astype(np.float32)
        q /= np.linalg.norm(q)
        idx, scores = knn.topk(index, q, k)
        ref_idx, ref_scores = brute_force(index, q, k)
        assert len(idx) == min(n, k)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
        np.testing.assert_array_equal(idx, ref_idx)


def test_ties_keep_the_lower_row_first():
    index = np.ones((6, 4), np.float32) / 2
    idx, scores = knn.topk(index, index[0], 3)
    np.testing.assert_array_equal(idx, [0, 1, 2])
    np.testing.assert_allclose(scores, 1.0)


def test_float16_index_is_searched_as_float32():
    rng = np.random.default_rng(0)
    e = rng.standard_normal((300, 32))
    e16 = (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float16)
    m = knn.as_search_matrix(e16)
    assert m.dtype == np.float32 and m.flags.c_contiguous
    idx, _ = knn.topk(m, m[17], 1)
    assert idx[0] == 17


@pytest.mark.parametrize("n,d,k,m", [(1, 8, 1, 3), (50, 32, 25, 8), (5000, 32, 25, 64), (2000, 72, 7, 5), (10, 16, 25, 2)])
def test_many_queries_at_once_get_each_query_alone_bit_for_bit(n, d, k, m):
    """replay --fast searches the windows it embedded ahead together: nothing may change. Rounded rows and
    repeated queries make ties."""
    rng = np.random.default_rng(n + d + k + m)
    index = rng.standard_normal((n, d)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    index[: n // 3] = np.round(index[: n // 3], 1)
    queries = np.concatenate([index[rng.integers(0, n, m // 2)], rng.standard_normal((m - m // 2, d))]).astype(np.float32)
    idx, scores = knn.topk_many(index, queries, k)
    assert idx.shape == scores.shape == (m, min(n, k))
    for q, i, s in zip(queries, idx, scores):
        alone_i, alone_s = knn.topk(index, q, k)
        assert np.array_equal(i, alone_i) and np.array_equal(s, alone_s)
    assert knn.topk_many(index, queries[:0], k)[0].shape == (0, min(n, k))


def test_the_engine_searches_together_only_where_the_kernels_agree_on_this_processor():
    rng = np.random.default_rng(3)
    index = rng.standard_normal((500, 32)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    assert knn.many_as_one(index, 25) and knn.many_as_one(index[:0], 25)
