"""Create the separate virtualenv that runs the matchmaker peer.

Why separate: ``pymatchmaker`` 0.3.0 pins ``numpy<2.0``, and the project's
environment runs numpy 2 (onnxruntime, numba and the follower are built against
it). Installing matchmaker into ``.venv`` would downgrade numpy under everyone, so
it gets its own venv under the benchmark work folder. It pulls no torch.

Also: partitura (a matchmaker dependency) downloads MuseScore_General.sf3 over FTP
on first import, which fails offline; Debian's ``musescore-general-soundfont-small``
provides /usr/share/sounds/sf3/MuseScore_General.sf3 (an alternatives link to the
Lite soundfont), which is linked in place. matchmaker synthesises its reference
audio from the score with it.

    python -m benchmarks.setup_matchmaker          # idempotent
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from . import paths

MATCHMAKER_REQUIREMENT = "pymatchmaker==0.3.0"
SYSTEM_SF3 = Path("/usr/share/sounds/sf3/MuseScore_General.sf3")


def venv_dir() -> Path:
    return paths.work_dir() / "mm-venv"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def is_ready() -> bool:
    if not venv_python().exists():
        return False
    probe = subprocess.run([str(venv_python()), "-c", "import matchmaker"], capture_output=True, text=True)
    return probe.returncode == 0


def setup() -> Path:
    if is_ready():
        return venv_python()
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir())], check=True)
    subprocess.run([str(venv_python()), "-m", "pip", "install", "-q", MATCHMAKER_REQUIREMENT], check=True)
    site = subprocess.run([str(venv_python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assets = Path(site) / "partitura" / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    target = assets / "MuseScore_General.sf3"
    if not target.exists():
        if not SYSTEM_SF3.exists():
            raise SystemExit(f"{SYSTEM_SF3} is missing: apt-get install musescore-general-soundfont-small "
                             f"(partitura needs it and cannot download it offline)")
        target.symlink_to(SYSTEM_SF3)
    if not is_ready():
        raise SystemExit(f"matchmaker still does not import in {venv_dir()}; see the pip output above")
    return venv_python()


if __name__ == "__main__":
    print(setup())
