#!/usr/bin/env bash
# One-step setup, then the main job or the tests.
#
#   bash setup.sh demo   install, then replay the example recording through the shipped model
#   bash setup.sh test   install, then run the whole test suite
#   bash setup.sh        install only
#
# Installs: system packages (fluidsynth, soundfonts, PortAudio) where apt-get and root
# are available, a virtualenv in .venv, and the project with its training, test, midi and
# scale (Ray, faiss) extras.
# torch is installed first, pinned to 2.13.0 (CPU build): an unpinned torch would pull
# a multi-GB CUDA build. The midi extra (python-rtmidi) brings MIDI ports.
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-install}"
PY="${PYTHON:-python3}"

apt_pkgs=(fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small
          libportaudio2 libsndfile1 alsa-utils libasound2-plugins)
# dataset v2's further training soundfonts (docs/dataset.md)
apt_pkgs+=(musescore-general-soundfont fluidr3mono-gm-soundfont csound-soundfont)
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v apt-get >/dev/null 2>&1; then
    echo "== please run: sudo apt-get install ${missing[*]}   (then rerun this script)"
  fi
elif ! command -v dpkg >/dev/null 2>&1; then
  echo "== not a Debian/Ubuntu system: install fluidsynth, a General MIDI soundfont and PortAudio yourself"
  echo "   macOS: brew install fluid-synth portaudio; Windows: see README.md"
fi

# Chromium, for the live view's test in a real headless browser (skipped without one). On its own:
# a distribution without a `chromium` package (Ubuntu ships it as a snap) still gets everything else.
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing chromium (the live view's browser test)"
    chromium_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }
    chromium_install || { apt-get update -qq && chromium_install; } \
      || echo "== chromium could not be installed; the live view's browser test will be skipped"
  elif command -v apt-get >/dev/null 2>&1; then
    echo "== optional: sudo apt-get install chromium   (for the live view's browser test)"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, follower, training, ray, faiss" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "== installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[training,dev,midi,scale]"
  touch .venv/.installed
fi

case "$mode" in
  test) exec .venv/bin/python -X faulthandler -m pytest -q tests ;;  # a crash, even at exit, prints its stacks
  demo) exec bash examples/demo.sh ;;
  install) echo "== ready: source .venv/bin/activate, then run 'follower --help' or 'training --help'" ;;
  *) echo "usage: bash setup.sh [demo|test]" >&2; exit 2 ;;
esac
