"""Merging follower indexes of one bundle into one (real distractors for the growth benchmark)."""


import numpy as np
import pytest


from benchmarks.index_growth import index_summary, merge_indexes
from follower.errors import BundleError
from follower.index import FORMAT, FORMAT_VERSION, Index, load_index, save_index


def tiny_index(ids, rows_per_piece, fingerprint="fp", seed=0):
    rng = np.random.default_rng(seed)
    n = rows_per_piece * len(ids)
    e = rng.standard_normal((n, 4)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return Index(header={"format": FORMAT, "format_version": FORMAT_VERSION, "bundle_fingerprint": fingerprint,
                         "hop_frames": 4, "n_pieces": len(ids), "n_snippets": n, "sources": ["x"], "skipped": []},
                 embeddings=e.astype(np.float16), piece=np.repeat(np.arange(len(ids), dtype=np.int32), rows_per_piece),
                 position_s=np.tile(np.arange(rows_per_piece) * 0.2, len(ids)).astype(np.float32),
                 position_beats=np.tile(np.arange(rows_per_piece) * 0.4, len(ids)).astype(np.float32),
                 piece_ids=np.array(ids), titles=np.array([i.upper() for i in ids]),
                 piece_start=np.arange(len(ids) + 1, dtype=np.int64) * rows_per_piece,
                 duration_s=np.full(len(ids), rows_per_piece * 0.2, np.float32))


def test_merge_keeps_every_piece_and_its_rows(tmp_path):
    a = save_index(tiny_index(["a1", "a2"], 3), tmp_path / "a.npz")
    b = save_index(tiny_index(["b1", "b2", "b3"], 5, seed=1), tmp_path / "b.npz")
    merged = load_index(merge_indexes([a, b], tmp_path / "ab.npz"))  # load_index validates the arrays
    assert merged.piece_ids.tolist() == ["a1", "a2", "b1", "b2", "b3"]
    assert merged.piece_start.tolist() == [0, 3, 6, 11, 16, 21]
    rows = merged.rows(3)  # b2
    np.testing.assert_array_equal(merged.piece[rows], 3)
    np.testing.assert_array_equal(merged.embeddings[rows], load_index(b).embeddings[5:10])
    assert index_summary(tmp_path / "ab.npz") == {"pieces": 5, "snippets": 21, "hop_frames": 4}


def test_merge_refuses_other_bundles_and_clashing_ids(tmp_path):
    a = save_index(tiny_index(["a1"], 2), tmp_path / "a.npz")
    other = save_index(tiny_index(["z1"], 2, fingerprint="other"), tmp_path / "o.npz")
    with pytest.raises(BundleError, match="different bundles"):
        merge_indexes([a, other], tmp_path / "x.npz")
    with pytest.raises(BundleError, match="share piece ids"):
        merge_indexes([a, a], tmp_path / "y.npz")
