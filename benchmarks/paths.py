"""Where the benchmark keeps its work files (git-ignored) and finds its inputs."""

import os
from pathlib import Path

from follower.paths import REPO_ROOT
from training.paths import data_root

HELD_OUT_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def work_dir() -> Path:
    """``$SCOREFOLLOW_BENCH`` or ``data/bench`` in the checkout (ignored by git)."""
    env = os.environ.get("SCOREFOLLOW_BENCH")
    return Path(env) if env else REPO_ROOT / "data" / "bench"


def chorale_dir() -> Path:
    return data_root() / "midi" / "bach-chorales"


def piano_dir() -> Path:
    return data_root() / "midi" / "piano-midi"


def bach10_dir() -> Path:
    return data_root() / "real" / "bach10"


def docs_dir() -> Path:
    return REPO_ROOT / "docs"
