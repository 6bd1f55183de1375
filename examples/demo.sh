#!/usr/bin/env bash
# The main job on the shipped default (replaced by the follower replay once it lands).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/training --help
