"""The banded DTW of the offline alignment (follower/dtw.py) on features with a known warp."""

import numpy as np

from follower.dtw import band_dtw


def _features(seed=0, n=60, d=8):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(n, d))
    return rng, Y / np.linalg.norm(Y, axis=1, keepdims=True)


def _noisy(rng, rows):
    X = rows + 0.1 * rng.normal(size=rows.shape)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_free_ends_find_an_excerpt_played_at_half_speed():
    rng, Y = _features()
    truth = np.repeat(np.arange(10, 40), 2)  # score frames 10..39, each heard for two audio frames
    X = _noisy(rng, Y[truth])
    n = len(X)
    path = band_dtw(X, Y, np.zeros(n, int), np.full(n, len(Y)), offset=1.0, penalty=0.1, free_ends=True)
    assert np.all(np.diff(path, axis=0) >= 0)
    assert path[0].tolist() == [0, 10] and path[-1].tolist() == [n - 1, 39]
    assert np.mean(path[:, 1] == truth[path[:, 0]]) > 0.95


def test_fixed_ends_run_from_the_first_score_frame_to_the_last_within_a_band():
    rng, Y = _features(1)
    truth = np.clip(np.round(np.arange(80) * 59 / 79 + 3 * np.sin(np.arange(80) / 9)), 0, 59).astype(int)
    X = _noisy(rng, Y[truth])
    lo = np.clip(truth - 6, 0, None)
    hi = np.clip(truth + 7, None, len(Y))
    lo[0], hi[-1] = 0, len(Y)
    lo, hi = np.minimum.accumulate(lo[::-1])[::-1], np.maximum.accumulate(hi)
    path = band_dtw(X, Y, lo, hi, offset=1.0, penalty=0.1, free_ends=False)
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [79, 59]
    assert all(lo[i] <= j < hi[i] for i, j in path)
    assert np.mean(np.abs(path[:, 1] - truth[path[:, 0]]) <= 1) > 0.9
