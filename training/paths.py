"""Where the project finds data the user already has (never copied into the repo)."""

import os
from pathlib import Path

from follower.paths import REPO_ROOT


def data_root() -> Path:
    """``$SCOREFOLLOW_DATA``, else ``../shared/data`` next to the checkout."""
    env = os.environ.get("SCOREFOLLOW_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
