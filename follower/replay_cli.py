"""``follower replay AUDIO``: a recording through exactly the live path."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse

EPILOG = """\
The file is read block by block into the same queue, worker and engine as live
input, paced in real time (so Max sees what it would see on stage) or, with
--fast, as fast as the machine allows. Any sample rate and channel count.

example:
  follower replay examples/chorale_excerpt.ogg --fast
"""


def register(subparsers) -> None:
    from .runner import add_arguments

    p = subparsers.add_parser("replay", help="follow a recording (wav, flac, ogg, mp3)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", metavar="AUDIO", help="audio file")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .audio_io import FileSource
    from .runner import RunOptions, load, run as run_session

    source = FileSource(args.audio, realtime=not args.fast)  # bad audio is refused before the model loads
    options = RunOptions.from_args(args)
    return run_session(source, load(options), options)
