"""Index building, storage, and the bundle/index match."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from follower.bundle import load_bundle
from follower.errors import BundleError
from follower.index import build_index, load_index, save_index
from follower.midi import load_midi


def test_index_holds_every_piece_with_positions(chroma_bundle, corpus, corpus_index):
    index = load_index(corpus_index)
    bundle = load_bundle(chroma_bundle)
    assert list(index.piece_ids) == [f"piece{i}" for i in range(7)] + ["set_b/piece7"]
    assert index.titles[3] == "Test piece 3"
    assert index.fingerprint == bundle.config.index_fingerprint
    assert index.header["bundle_fingerprint"] == bundle.config.fingerprint
    index.check_bundle(bundle.config)
    assert index.embeddings.dtype == np.float16 and index.embeddings.shape[1] == bundle.config.embed_dim
    np.testing.assert_allclose(np.linalg.norm(index.embeddings.astype(np.float32), axis=1), 1.0, atol=2e-3)
    fps = bundle.config.features.frame_rate_hz
    rows = index.rows(3)
    pos = index.position_s[rows]
    np.testing.assert_allclose(np.diff(pos), 2 / fps, rtol=1e-4)  # every 2 frames, as built
    assert pos[0] == 0 and pos[-1] >= index.duration_s[3] - 2 / fps
    # 0.5 s per beat in the test pieces: beats = 2 * seconds
    np.testing.assert_allclose(index.position_beats[rows], 2 * pos, rtol=1e-5, atol=1e-5)
    assert index.duration_s[3] == pytest.approx(load_midi(corpus / "piece3.mid").duration_s)


def test_snippet_embedding_matches_the_score_encoder(chroma_bundle, corpus, corpus_index):
    from follower.snippets import cut, roll_input, score_roll

    bundle = load_bundle(chroma_bundle)
    index = load_index(corpus_index)
    cfg = bundle.config
    roll = score_roll(load_midi(corpus / "piece5.mid"), cfg.snippets, cfg.features.frame_rate_hz)
    want = bundle.score(roll_input(cut(roll, [40], cfg.snippets.roll_frames), cfg.snippets))[0]
    got = index.embeddings[index.rows(5)][20].astype(np.float32)  # centre 40 = the 21st snippet at hop 2
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_bad_files_are_skipped_and_reported(chroma_bundle, corpus, tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    (root / "broken.mid").write_bytes(b"MThd this is not midi")
    (root / "empty.mid").write_bytes(b"")
    index = build_index([root], load_bundle(chroma_bundle), hop_frames=8, progress=False)
    assert index.n_pieces == 8
    reasons = {s["file"].rsplit("/", 1)[-1]: s["reason"] for s in index.header["skipped"]}
    assert set(reasons) == {"broken.mid", "empty.mid"}
    assert "empty file" in reasons["empty.mid"]


def test_mismatched_bundle_is_refused(chroma_bundle, corpus_index, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(chroma_bundle, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["features"]["fmax_hz"] = 5000.0
    (other / "config.json").write_text(json.dumps(cfg))
    index = load_index(corpus_index)
    from follower.bundle import read_config

    with pytest.raises(BundleError, match="another score encoder or snippet settings .* rebuild it"):
        index.check_bundle(read_config(other))


def _with_new_audio_encoder(bundle_dir, out):
    """A copy of the bundle whose audio encoder file (and so the bundle's fingerprint) differs."""
    import onnx

    from follower.bundle import AUDIO_ONNX, read_config, sha256_file, write_config

    shutil.copytree(bundle_dir, out)
    model = onnx.load(str(out / AUDIO_ONNX))
    model.doc_string = "another audio encoder"
    onnx.save(model, str(out / AUDIO_ONNX))
    cfg = read_config(out)
    write_config(out, type(cfg).from_dict({**cfg.to_dict(), "sha256": {**cfg.sha256,
                                                                        AUDIO_ONNX: sha256_file(out / AUDIO_ONNX)}}))
    return out


def test_index_is_tied_to_the_score_side_not_the_audio_encoder(chroma_bundle, corpus_index, tmp_path):
    from follower.bundle import read_config

    other = read_config(_with_new_audio_encoder(chroma_bundle, tmp_path / "int8"))
    mine = read_config(chroma_bundle)
    assert other.fingerprint != mine.fingerprint and other.index_fingerprint == mine.index_fingerprint
    load_index(corpus_index).check_bundle(other)  # no error: the index holds score embeddings only
    load_bundle(tmp_path / "int8")                # and the copy's checksums hold


def test_index_of_an_older_version_is_accepted_by_its_own_bundle_only(chroma_bundle, corpus_index, tmp_path):
    from follower.bundle import read_config

    old = load_index(corpus_index)
    del old.header["index_fingerprint"]  # what indexes written before it was recorded hold
    old = load_index(save_index(old, tmp_path / "old.index.npz"))
    old.check_bundle(read_config(chroma_bundle))
    other = read_config(_with_new_audio_encoder(chroma_bundle, tmp_path / "int8"))
    with pytest.raises(BundleError, match="older follower that did not record its score encoder.*rebuild it"):
        old.check_bundle(other)
    # a bundle that records having copied the score side of the index's bundle (training quantize) reads it
    old.check_bundle(type(other).from_dict({**other.to_dict(), "score_from": read_config(chroma_bundle).fingerprint}))


def test_damaged_or_foreign_files_are_refused(tmp_path):
    with pytest.raises(BundleError, match="no such index file"):
        load_index(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(BundleError, match="not a follower index"):
        load_index(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(BundleError, match="lacks the array"):
        load_index(tmp_path / "other.npz")


def test_cli_builds_an_index(chroma_bundle, corpus, tmp_path):
    out = tmp_path / "cli.index.npz"
    r = subprocess.run([sys.executable, "-m", "follower.cli", "index", "build", str(corpus / "piece1.mid"),
                        str(corpus / "set_b"), "-o", str(out), "--bundle", str(chroma_bundle), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2 pieces" in r.stdout
    index = load_index(out)
    assert list(index.piece_ids) == ["piece1", "piece7"]
    r = subprocess.run([sys.executable, "-m", "follower.cli", "index", "build", str(tmp_path / "nowhere"),
                        "-o", str(out), "--bundle", str(chroma_bundle)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "no such file or folder" in r.stderr


def test_worker_processes_build_the_same_index(chroma_bundle, corpus, corpus_index):
    one = load_index(corpus_index)
    two = build_index([corpus], load_bundle(chroma_bundle), hop_frames=2, progress=False, workers=2)
    assert list(two.piece_ids) == list(one.piece_ids)
    np.testing.assert_array_equal(two.embeddings, one.embeddings)
    np.testing.assert_array_equal(two.position_beats, one.position_beats)


def test_a_stopped_build_resumes_from_its_parts(chroma_bundle, corpus, corpus_index, tmp_path):
    bundle = load_bundle(chroma_bundle)
    parts = tmp_path / "parts"
    first = build_index([corpus], bundle, hop_frames=2, progress=False, parts_dir=parts)
    assert first.header["resumed_pieces"] == 0 and len(list(parts.glob("*.npz"))) == 8
    stored = sorted(parts.glob("*.npz"))
    stored[0].unlink()                        # never finished
    stored[1].write_bytes(b"cut short")       # interrupted while written
    again = build_index([corpus], bundle, hop_frames=2, progress=False, parts_dir=parts, workers=2)
    assert again.header["resumed_pieces"] == 6
    want = load_index(corpus_index)
    for name in ("embeddings", "position_s", "position_beats", "piece_start", "piece_ids", "titles", "duration_s"):
        np.testing.assert_array_equal(getattr(again, name), getattr(want, name))
    # another hop is another build: nothing is taken from these parts
    assert build_index([corpus], bundle, hop_frames=4, progress=False, parts_dir=parts).header["resumed_pieces"] == 0


def test_cli_resumes_and_removes_the_parts_when_done(chroma_bundle, corpus, tmp_path):
    out = tmp_path / "c.index.npz"
    parts = tmp_path / "c.index.npz.parts"
    build_index([corpus / "set_b"], load_bundle(chroma_bundle), hop_frames=4, progress=False, parts_dir=parts)
    r = subprocess.run([sys.executable, "-m", "follower.cli", "index", "build", str(corpus / "piece1.mid"),
                        str(corpus / "set_b"), "-o", str(out), "--bundle", str(chroma_bundle), "--quiet",
                        "--hop-frames", "4"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2 pieces" in r.stdout and "1 of the pieces from an earlier run" in r.stdout and "snippets/s" in r.stdout
    assert not parts.exists()


def test_cell_width_comes_from_the_header(corpus_index):
    index = load_index(corpus_index)
    hop, fps = index.header["hop_frames"], index.header["frame_rate_hz"]
    assert index.cell_s == hop / fps
    # the stored float32 positions step by it, to float32 precision
    steps = np.diff(index.position_s[index.rows(0)].astype(np.float64))
    assert np.allclose(steps, index.cell_s, rtol=0, atol=1e-5)


def test_an_index_without_hop_or_frame_rate_falls_back_to_the_median_spacing(corpus_index):
    index = load_index(corpus_index)
    old = type(index)(header={k: v for k, v in index.header.items() if k != "frame_rate_hz"},
                      **{a: getattr(index, a) for a in ("embeddings", "piece", "position_s", "position_beats",
                                                        "piece_ids", "titles", "piece_start", "duration_s")})
    spacing = np.median(np.concatenate([np.diff(old.position_s[old.rows(p)]) for p in range(old.n_pieces)]))
    assert old.cell_s == float(spacing)
    assert old.cell_s == pytest.approx(index.cell_s, rel=1e-5)
    # pieces of one snippet each: nothing to measure, the usual 0.2 s
    single = type(index)(header={}, embeddings=old.embeddings[:2], piece=np.array([0, 1], np.int32),
                         position_s=np.zeros(2, np.float32), position_beats=np.zeros(2, np.float32),
                         piece_ids=np.array(["a", "b"]), titles=np.array(["A", "B"]),
                         piece_start=np.array([0, 1, 2]), duration_s=np.ones(2, np.float32))
    assert single.cell_s == 0.2
