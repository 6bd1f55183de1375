"""The wheel installs and runs anywhere: build it, pip-install it into a fresh virtualenv
(runtime dependencies from the package registry), replay the example from another folder.

Slow (a virtualenv and a real ``pip install``; the pip cache and ``--prefer-binary`` keep it to
seconds once the dependencies have been downloaded once), but part of the suite: it is the only
test that sees the package as a user gets it, without the checkout on the path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "chorale_excerpt.ogg"
SHIPPED = ("audio_encoder.onnx", "score_encoder.onnx", "config.json", "metrics.json", "chorales.index.npz")
# what a checkout holds that a build must not see (or that would be slow to copy)
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "data", "runs", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".ruff_cache", "untrained", "interim", "tests", "docs")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _clean_env() -> dict:
    """No PYTHONPATH and no active virtualenv: the installed package alone must do."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (REPO / "exported" / "default" / "chorales.index.npz").is_file():
        pytest.skip("no shipped bundle and index in exported/default in this checkout")
    src = tmp_path_factory.mktemp("src") / "scorefollow"
    shutil.copytree(REPO, src, ignore=NOT_SOURCES)  # builds leave build/ behind: not in the checkout
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", src, "--no-deps", "-w", out, "-q"]
    try:  # the build backend at hand, when new enough, saves downloading one for an isolated build
        import setuptools

        if int(setuptools.__version__.split(".")[0]) >= 68:  # pyproject.toml's build requirement
            cmd.append("--no-build-isolation")
    except ImportError:
        pass
    _run(cmd, env=_clean_env())
    (whl,) = out.glob("scorefollow-*.whl")
    return whl


def test_wheel_carries_the_shipped_bundle_and_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED:
        assert f"follower/shipped/default/{name}" in names
    assert not any(n.startswith(("exported/", "tests/", "benchmarks/")) for n in names)


def test_installed_wheel_replays_the_example_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    py = venv / "bin" / "python"
    env = _clean_env()
    _run([py, "-m", "pip", "install", "-q", "--prefer-binary", wheel], env=env, timeout=780)
    # the runtime stays lean: the follower needs no torch
    assert subprocess.run([py, "-c", "import torch"], capture_output=True, env=env).returncode != 0

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([py, "-c", "from follower.paths import resolve_bundle, DEFAULT_BUNDLE; "
                            "print(resolve_bundle(DEFAULT_BUNDLE))"], cwd=elsewhere, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv) and Path(where).name == "default"

    audio = elsewhere / EXAMPLE.name
    shutil.copy(EXAMPLE, audio)
    r = _run([venv / "bin" / "follower", "replay", audio.name, "--fast", "--jsonl", "-", "--osc", "127.0.0.1:9"],
             cwd=elsewhere, env=env, timeout=300)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    truth = json.loads((REPO / "examples" / "chorale_excerpt.json").read_text())
    late = [row for row in rows if row["t"] > 10.0]
    assert late and all(row["piece"] == truth["piece"] and row["state"] == "following" for row in late[-100:])
    last = late[-1]
    assert last["position_s"] == pytest.approx(truth["start_s"] + truth["tempo_ratio"] * last["t"], abs=1.0)

    # the offline alignment runs on the same lean runtime (no torch, no librosa)
    midi = REPO.parent / "shared" / "data" / "midi" / "bach-chorales" / f"{truth['piece']}.mid"
    if midi.is_file():
        _run([venv / "bin" / "follower", "align", audio.name, "--midi", midi, "-o", "example.csv", "--quiet"],
             cwd=elsewhere, env=env, timeout=300)
        rows = (elsewhere / "example.csv").read_text().splitlines()
        assert rows[0].startswith("kind,time_s,midi_s") and rows[1].startswith("bar,") and len(rows) > 40
