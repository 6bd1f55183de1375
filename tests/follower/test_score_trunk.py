"""Shared-trunk index builds: the cut is faithful, chunks and phases do not change a snippet's
embedding, and the index records the encoder and is read only by bundles that carry the pair."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from follower.bundle import (SCORE_HEAD_ONNX, SCORE_ONNX, SCORE_TRUNK_ONNX, Encoder, load_bundle, read_config,
                             sha256_file, write_config)
from follower.errors import BundleError
from follower.index import build_index
from follower.midi import load_midi
from follower.score_trunk import SharedScoreEncoder
from follower.snippets import cut, roll_input, score_roll

from conftest import one_line_error

onnx = pytest.importorskip("onnx", reason="the trunk is cut with the onnx package (training extra)")
from training.fit.shared_head import split_encoder, trunk_geometry  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "default"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The shipped score encoder cut in two, with its own (not fine-tuned) head."""
    out = tmp_path_factory.mktemp("pair")
    trunk, head = split_encoder(SHIPPED / SCORE_ONNX, 2)
    onnx.save(trunk, str(out / SCORE_TRUNK_ONNX))
    onnx.save(head, str(out / SCORE_HEAD_ONNX))
    return out, trunk_geometry(trunk)


@pytest.fixture(scope="module")
def piece_input(corpus):
    cfg = read_config(SHIPPED)
    roll = score_roll(load_midi(corpus / "piece2.mid"), cfg.snippets, cfg.features.frame_rate_hz)
    return cfg, roll


def test_the_cut_is_faithful_and_its_geometry_is_that_of_two_poolings(pair, piece_input):
    folder, geometry = pair
    assert geometry == {"stride_frames": 4, "reach_frames": 2 + 1 + 4 + 2 + 8}
    cfg, roll = piece_input
    shared = SharedScoreEncoder(folder / SCORE_TRUNK_ONNX, folder / SCORE_HEAD_ONNX, geometry)
    x = roll_input(cut(roll, np.arange(0, len(roll), 37), cfg.snippets.roll_frames), cfg.snippets)
    # each window alone through trunk + head is the full encoder
    np.testing.assert_allclose(shared(x), Encoder(SHIPPED / SCORE_ONNX)(x), atol=1e-5)


def test_chunks_and_phases_do_not_change_a_snippets_embedding(pair, piece_input):
    folder, geometry = pair
    cfg, roll = piece_input
    x = roll_input(roll[None], cfg.snippets)[0]
    width = cfg.snippets.roll_frames
    starts = np.array([-21, -19, 3, 4, 5, 6, 87, 150, len(roll) - 30, len(roll) - 21])  # every residue mod 4
    one_pass = SharedScoreEncoder(folder / SCORE_TRUNK_ONNX, folder / SCORE_HEAD_ONNX, geometry, chunk_columns=10_000)
    chunked = SharedScoreEncoder(folder / SCORE_TRUNK_ONNX, folder / SCORE_HEAD_ONNX, geometry, chunk_columns=3)
    together = one_pass.embed_piece(x, starts, width)
    np.testing.assert_allclose(chunked.embed_piece(x, starts, width), together, atol=1e-5)
    for i, s in enumerate(starts):  # a snippet's embedding does not depend on which others are embedded
        np.testing.assert_allclose(one_pass.embed_piece(x, [s], width)[0], together[i], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # in context the edge columns see the music beyond the window: close to, not equal to, the window alone
    alone = Encoder(SHIPPED / SCORE_ONNX)(roll_input(cut(roll, starts + width // 2, width), cfg.snippets))
    cos = (together * alone).sum(1)
    assert cos.min() > 0.9 and cos.mean() < 0.99999


@pytest.fixture(scope="module")
def shared_bundle(pair, tmp_path_factory):
    folder, geometry = pair
    out = tmp_path_factory.mktemp("shared") / "bundle"
    shutil.copytree(SHIPPED, out, ignore=shutil.ignore_patterns("*.index.npz", SCORE_TRUNK_ONNX, SCORE_HEAD_ONNX))
    for name in (SCORE_TRUNK_ONNX, SCORE_HEAD_ONNX):
        shutil.copyfile(folder / name, out / name)
    cfg = read_config(out)
    sha = {k: v for k, v in cfg.sha256.items() if k not in (SCORE_TRUNK_ONNX, SCORE_HEAD_ONNX)}
    write_config(out, type(cfg).from_dict({**cfg.to_dict(), "shared_trunk": geometry, "sha256": {
        **sha, SCORE_TRUNK_ONNX: sha256_file(out / SCORE_TRUNK_ONNX), SCORE_HEAD_ONNX: sha256_file(out / SCORE_HEAD_ONNX)}}))
    return out


def test_a_shared_index_is_the_same_from_one_or_two_workers_and_names_its_encoder(shared_bundle, corpus):
    bundle = load_bundle(shared_bundle, score_encoder="shared")
    one = build_index([corpus], bundle, hop_frames=4, progress=False, workers=1)
    two = build_index([corpus], bundle, hop_frames=4, progress=False, workers=2)
    np.testing.assert_array_equal(one.embeddings, two.embeddings)
    np.testing.assert_array_equal(one.position_s, two.position_s)
    cfg = read_config(shared_bundle)
    assert one.score_encoder == "shared" and one.header["index_fingerprint"] == cfg.index_fingerprint_for("shared")
    assert len({cfg.index_fingerprint_for(n) for n in ("full", "shared")}) == 2
    one.check_bundle(cfg)
    bare = read_config(SHIPPED)
    if not bare.has_score_encoder("shared"):
        with pytest.raises(BundleError, match="built with the shared score encoder"):
            one.check_bundle(bare)
    # close to the full encoder's index of the same corpus: the same space, the audio encoder reads it
    full = build_index([corpus], load_bundle(shared_bundle), hop_frames=4, progress=False, workers=1)
    cos = (one.embeddings.astype(np.float32) * full.embeddings.astype(np.float32)).sum(1)
    assert cos.mean() > 0.95


def test_a_bundle_without_the_pair_or_its_geometry_is_refused_in_one_line(shared_bundle, corpus, tmp_path):
    shutil.copytree(shared_bundle, tmp_path / "b")
    cfg = read_config(tmp_path / "b")
    write_config(tmp_path / "b", type(cfg).from_dict({**cfg.to_dict(), "shared_trunk": {}}))
    with pytest.raises(BundleError, match="lacks the trunk's stride_frames"):
        load_bundle(tmp_path / "b", score_encoder="shared")
    write_config(tmp_path / "b", type(cfg).from_dict({**cfg.to_dict(), "sha256": {
        k: v for k, v in cfg.sha256.items() if k != SCORE_TRUNK_ONNX}}))
    r = subprocess.run([sys.executable, "-m", "follower.cli", "index", "build", str(corpus), "-o",
                        str(tmp_path / "x.npz"), "--bundle", str(tmp_path / "b"), "--score-encoder", "shared",
                        "--quiet", "--workers", "1"], capture_output=True, text=True)
    one_line_error(r, "has no shared score encoder (score_head.shared.onnx); make one with: training shared-head")
