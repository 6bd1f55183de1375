"""A bundle's second, small score encoder: indexes say which one made them, and a mismatch is refused."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from follower.bundle import SCORE_ONNX, SCORE_SMALL_ONNX, load_bundle, read_config, sha256_file, write_config
from follower.errors import BundleError
from follower.index import build_index, load_index, save_index

from conftest import one_line_error


def _with_small_encoder(bundle_dir, out, *, scale: float = 1.0):
    """A copy of the bundle carrying score_encoder.small.onnx: the chroma score graph, its
    to-pitch-class weights scaled by ``scale`` (1.0: the same embeddings from another file)."""
    import onnx
    from onnx import numpy_helper

    shutil.copytree(bundle_dir, out)
    model = onnx.load(str(out / SCORE_ONNX))
    model.doc_string = "a small score encoder"
    for i, init in enumerate(model.graph.initializer):
        if init.name == "to_pc":
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * scale, "to_pc"))
    onnx.save(model, str(out / SCORE_SMALL_ONNX))
    cfg = read_config(out)
    write_config(out, type(cfg).from_dict({**cfg.to_dict(), "score_from": cfg.fingerprint, "sha256": {
        **cfg.sha256, SCORE_SMALL_ONNX: sha256_file(out / SCORE_SMALL_ONNX)}}))
    return out


@pytest.fixture(scope="module")
def small_bundle(chroma_bundle, tmp_path_factory):
    return _with_small_encoder(chroma_bundle, tmp_path_factory.mktemp("small") / "bundle")


def test_the_index_records_the_small_encoder_and_only_bundles_with_it_read_it(small_bundle, chroma_bundle, corpus,
                                                                               corpus_index, tmp_path):
    bundle = load_bundle(small_bundle, score_encoder="small")
    index = load_index(save_index(build_index([corpus], bundle, hop_frames=2, progress=False), tmp_path / "s.npz"))
    cfg = read_config(small_bundle)
    assert index.score_encoder == "small" and index.header["index_fingerprint"] == cfg.index_fingerprint_for("small")
    assert cfg.index_fingerprint_for("small") != cfg.index_fingerprint  # never passes for the full one's
    # the same graph in both files: the same embeddings, so the rows are those of the full encoder's index
    full = load_index(corpus_index)
    np.testing.assert_array_equal(index.embeddings, full.embeddings)
    index.check_bundle(cfg)                       # the bundle that built it reads it
    full.check_bundle(cfg)                        # and still reads the indexes of its full encoder
    assert cfg.index_fingerprint == read_config(chroma_bundle).index_fingerprint
    with pytest.raises(BundleError, match=r"built with the small score encoder \(score_encoder.small.onnx\), "
                                          r"which .* does not carry; .*--score-encoder small"):
        index.check_bundle(read_config(chroma_bundle))


def test_an_index_of_another_small_encoder_is_refused(small_bundle, corpus, tmp_path):
    shutil.copytree(small_bundle, tmp_path / "base")
    (tmp_path / "base" / SCORE_SMALL_ONNX).unlink()
    cfg = read_config(tmp_path / "base")
    write_config(tmp_path / "base", type(cfg).from_dict(
        {**cfg.to_dict(), "sha256": {k: v for k, v in cfg.sha256.items() if k != SCORE_SMALL_ONNX}}))
    other = _with_small_encoder(tmp_path / "base", tmp_path / "other", scale=2.0)
    index = build_index([corpus], load_bundle(small_bundle, score_encoder="small"), hop_frames=4, progress=False)
    with pytest.raises(BundleError, match="another score encoder or snippet settings .*small one"):
        index.check_bundle(read_config(other))


def test_a_bundle_without_it_is_refused_in_one_line(chroma_bundle, small_bundle, corpus, tmp_path):
    with pytest.raises(BundleError, match="has no small score encoder"):
        load_bundle(chroma_bundle, score_encoder="small")
    r = subprocess.run([sys.executable, "-m", "follower.cli", "index", "build", str(corpus), "-o",
                        str(tmp_path / "x.npz"), "--bundle", str(chroma_bundle), "--score-encoder", "small",
                        "--quiet", "--workers", "1"], capture_output=True, text=True)
    one_line_error(r, "has no small score encoder")
    r = subprocess.run([sys.executable, "-m", "follower.cli", "index", "build", str(corpus), "-o",
                        str(tmp_path / "y.npz"), "--bundle", str(small_bundle), "--score-encoder", "small",
                        "--quiet", "--workers", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "small score encoder" in r.stdout
    assert load_index(tmp_path / "y.npz").score_encoder == "small"


def test_a_changed_small_encoder_file_is_caught_by_its_checksum(small_bundle, tmp_path):
    shutil.copytree(small_bundle, tmp_path / "b")
    (tmp_path / "b" / SCORE_SMALL_ONNX).write_bytes(b"damaged")
    with pytest.raises(BundleError, match="checksum differs"):
        load_bundle(tmp_path / "b")
