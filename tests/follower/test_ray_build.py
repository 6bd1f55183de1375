"""``follower index build --ray``: a real local Ray cluster of two workers builds the serial build's index.

The Ray builds run as the user runs them, in a process of their own: Ray's core keeps native threads
(gRPC pollers, its event engine) alive after ``ray.shutdown()``, and in a process that goes on for
minutes afterwards they can crash the interpreter as it exits.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is in the scale extra: pip install -e '.[scale]'")

from conftest import REPO  # noqa: E402
from follower.bundle import load_bundle  # noqa: E402
from follower.index import ARRAYS, NOTE_ARRAYS, build_index, load_index  # noqa: E402

BUNDLE = REPO / "exported" / "default"


def _follower(*args: str) -> str:
    """Run ``follower ARGS`` in its own process; its standard output, after checking it exited 0."""
    r = subprocess.run([sys.executable, "-m", "follower.cli", *args], capture_output=True, text=True, timeout=540)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    return r.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_build_equals_the_serial_build(corpus, tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    (root / "broken.mid").write_bytes(b"MThd this is not midi")
    serial = build_index([root], load_bundle(BUNDLE), hop_frames=8, progress=False, workers=1)

    out = tmp_path / "ray.index.npz"
    workers_tmp = set(Path(tempfile.gettempdir()).glob("follower-shard-*"))
    stdout = _follower("index", "build", str(root), "-o", str(out), "--bundle", str(BUNDLE), "--hop-frames", "8",
                       "--ray", "--workers", "2", "--quiet")
    assert "8 pieces" in stdout
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
def test_ray_build_with_the_shared_trunk_equals_its_serial_build(corpus, tmp_path):
    bundle = load_bundle(BUNDLE, score_encoder="shared")  # the shipped bundle carries the pair
    serial = build_index([corpus], bundle, hop_frames=4, progress=False, workers=1)
    out = tmp_path / "ray.index.npz"
    stdout = _follower("index", "build", str(corpus), "-o", str(out), "--bundle", str(BUNDLE), "--score-encoder",
                       "shared", "--ray", "--workers", "2", "--quiet")
    assert "shared score encoder" in stdout
    ray_index = load_index(out)
    assert ray_index.score_encoder == serial.score_encoder == "shared"
    assert ray_index.header["index_fingerprint"] == serial.header["index_fingerprint"]
    for name in ARRAYS + NOTE_ARRAYS:
        np.testing.assert_array_equal(getattr(ray_index, name), getattr(serial, name), err_msg=name)
