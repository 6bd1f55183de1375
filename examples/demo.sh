#!/usr/bin/env bash
# The main job: replay the example recording through the follower, on the shipped
# model bundle (exported/default) and its chorale index, and print what Max would get.
# Drop --fast to replay in real time; add --jsonl - for machine-readable lines.
set -euo pipefail
cd "$(dirname "$0")/.."
FOLLOWER=.venv/bin/follower
[ -x "$FOLLOWER" ] || FOLLOWER=follower
echo "example: examples/chorale_excerpt.ogg = bach_bwv362 from 32 s of its MIDI (beat 64) at 0.9x the written tempo,"
echo "         recorder, choir and harpsichord through a soundfont the model never heard."
echo "expected: 'following  bach_bwv362' within a few seconds, the beat counting up ~1.8 beats per second."
echo
"$FOLLOWER" replay examples/chorale_excerpt.ogg --fast --stats "$@"
