"""`training quantize-shared`: the shared-trunk score encoder in int8, for cheaper index builds; its
indexes name it and stay apart from the float pair's."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from follower.bundle import SCORE_HEAD_INT8_ONNX, SCORE_TRUNK_INT8_ONNX, load_bundle, read_config
from follower.errors import BundleError
from follower.index import build_index, load_index

pytest.importorskip("pretty_midi")
from test_shared_head import _piece  # noqa: E402
from training.fit.quantize_shared import QuantizeSharedConfig, quantize_shared  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "default"


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    root = tmp_path_factory.mktemp("midi")
    for i in range(8):
        _piece(root / f"p{i}.mid", seed=20 + i)
    return root


@pytest.fixture(scope="module")
def quantised(pieces, tmp_path_factory):
    if not read_config(SHIPPED).has_score_encoder("shared"):
        pytest.skip("the shipped bundle carries no shared trunk + head")
    out = tmp_path_factory.mktemp("q") / "bundle"
    return out, quantize_shared(SHIPPED, out, [pieces])


def test_the_int8_pair_joins_the_bundle_without_renaming_it(quantised):
    out, measured = quantised
    old, new = read_config(SHIPPED), read_config(out)
    assert new.fingerprint == old.fingerprint                      # the follower's encoders are unchanged
    assert new.has_score_encoder("shared-int8") and (out / SCORE_TRUNK_INT8_ONNX).is_file()
    assert len({new.index_fingerprint, new.index_fingerprint_for("shared"), measured["index_fingerprint"]}) == 3
    assert measured["calibration_files"] == measured["check_files"] == 4
    assert measured["cosine_to_float_mean"] >= 0.995 and measured["check_snippets"] > 100
    assert new.training["score_shared_quantization"]["cosine_to_float_min"] == measured["cosine_to_float_min"]


def test_an_index_built_with_it_records_it_and_embeds_like_the_float_pair(quantised, pieces, tmp_path, capsys):
    from follower.cli import main

    out, _ = quantised
    path = tmp_path / "int8.index.npz"
    assert main(["index", "build", str(pieces), "-o", str(path), "--bundle", str(out),
                 "--score-encoder", "shared-int8", "--workers", "1", "--quiet"]) == 0
    assert "shared-int8 score encoder" in capsys.readouterr().out
    index = load_index(path)
    assert index.score_encoder == "shared-int8"
    index.check_bundle(read_config(out), index_path=path, bundle_path=out)  # the live follower reads it
    ref = build_index([pieces], load_bundle(out, score_encoder="shared"), hop_frames=4, workers=1, progress=False)
    a, b = index.embeddings.astype(np.float32), ref.embeddings.astype(np.float32)
    assert a.shape == b.shape
    assert np.mean(np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)) > 0.99


def test_bundles_without_the_pair_and_a_failed_check_are_one_clear_error(quantised, pieces, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(SHIPPED, bare, ignore=shutil.ignore_patterns("*.index.npz"))
    cfg = read_config(bare)
    from follower.bundle import SCORE_HEAD_ONNX, SCORE_TRUNK_ONNX, write_config

    sha = {k: v for k, v in cfg.sha256.items() if k not in (SCORE_TRUNK_ONNX, SCORE_HEAD_ONNX)}
    write_config(bare, type(cfg).from_dict({**cfg.to_dict(), "sha256": sha}))
    with pytest.raises(BundleError, match="training shared-head"):
        quantize_shared(bare, tmp_path / "o1", [pieces])
    with pytest.raises(BundleError, match="mean cosine"):
        quantize_shared(SHIPPED, tmp_path / "o2", [pieces], QuantizeSharedConfig(min_cosine=1.0))
    assert not (tmp_path / "o2" / SCORE_HEAD_INT8_ONNX).exists()
