"""``follower index build --ray``: a real local Ray cluster of two workers builds the serial build's index."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is in the scale extra: pip install -e '.[scale]'")

from conftest import REPO  # noqa: E402
from follower.bundle import load_bundle  # noqa: E402
from follower.cli import main  # noqa: E402
from follower.index import ARRAYS, NOTE_ARRAYS, build_index, load_index  # noqa: E402

BUNDLE = REPO / "exported" / "default"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_build_equals_the_serial_build(corpus, tmp_path, capsys):
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    (root / "broken.mid").write_bytes(b"MThd this is not midi")
    serial = build_index([root], load_bundle(BUNDLE), hop_frames=8, progress=False, workers=1)

    out = tmp_path / "ray.index.npz"
    workers_tmp = set(Path(tempfile.gettempdir()).glob("follower-shard-*"))
    assert main(["index", "build", str(root), "-o", str(out), "--bundle", str(BUNDLE), "--hop-frames", "8",
                 "--ray", "--workers", "2", "--quiet"]) == 0
    assert "8 pieces" in capsys.readouterr().out
    # each worker removed its copy of the bundle (local workers share this machine's temp dir)
    assert set(Path(tempfile.gettempdir()).glob("follower-shard-*")) == workers_tmp
    ray_index = load_index(out)
    assert ray_index.header["built_with"] == "ray, 2 workers"
    assert serial.has_notes
    for name in ARRAYS + NOTE_ARRAYS:  # the same snippets (and notes), bit for bit, in the same order
        np.testing.assert_array_equal(getattr(ray_index, name), getattr(serial, name), err_msg=name)
    assert ray_index.piece_ids.tolist()[-1] == "set_b/piece7"
    assert ray_index.header["skipped"] == serial.header["skipped"]
    assert [s["file"] for s in ray_index.header["skipped"]] == [str(root / "broken.mid")]
    for key in ("bundle_fingerprint", "hop_frames", "frame_rate_hz", "n_pieces", "n_snippets", "sources"):
        assert ray_index.header[key] == serial.header[key], key


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_build_with_the_shared_trunk_equals_its_serial_build(corpus, tmp_path, capsys):
    bundle = load_bundle(BUNDLE, score_encoder="shared")  # the shipped bundle carries the pair
    serial = build_index([corpus], bundle, hop_frames=4, progress=False, workers=1)
    out = tmp_path / "ray.index.npz"
    assert main(["index", "build", str(corpus), "-o", str(out), "--bundle", str(BUNDLE), "--score-encoder", "shared",
                 "--ray", "--workers", "2", "--quiet"]) == 0
    assert "shared score encoder" in capsys.readouterr().out
    ray_index = load_index(out)
    assert ray_index.score_encoder == serial.score_encoder == "shared"
    assert ray_index.header["index_fingerprint"] == serial.header["index_fingerprint"]
    for name in ARRAYS + NOTE_ARRAYS:
        np.testing.assert_array_equal(getattr(ray_index, name), getattr(serial, name), err_msg=name)
