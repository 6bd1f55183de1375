"""``follower listen [--device ID]``: follow live input."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse

EPILOG = """\
Stop with Ctrl-C or SIGTERM (the run ends cleanly: JSON lines flushed, a last
/follower/state "stopped" sent). The audio callback only copies blocks into a
queue; a worker thread does the work. When it cannot keep up (a busy machine), it
skips updates rather than fall behind the audio (--max-lag; one line on stderr,
counted in --stats). A device that disappears is reported as state "lost" (OSC and
JSON lines), then "stopped", with one line on stderr and exit code 2; to wait for
it to come back, run listen in a loop:
  until follower listen --device 2; do sleep 1; done

examples:
  follower devices                 # find the input's id
  follower listen --device 2 --osc 127.0.0.1:9000
"""


def register(subparsers) -> None:
    from .runner import add_arguments

    p = subparsers.add_parser("listen", help="follow live audio input (microphone, interface)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, metavar="ID",
                   help="input device id or name (see `follower devices`; default: the system's default input)")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="capture sample rate (default: the device's own; resampled to the model's rate)")
    p.add_argument("--channels", type=int, default=1, help="channels to capture (averaged to mono)")
    p.add_argument("--block", type=int, default=512, metavar="FRAMES", help="PortAudio block size")
    p.add_argument("--buffer", type=float, default=5.0, metavar="S",
                   help="audio that may wait for the worker before blocks are dropped (counted in --stats)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .audio_io import DeviceSource
    from .runner import RunOptions, load, run as run_session

    options = RunOptions.from_args(args)
    make_engine = load(options)
    source = DeviceSource(args.device, rate_hz=args.rate, channels=args.channels, block_frames=args.block,
                          buffer_s=args.buffer)
    return run_session(source, make_engine, options)
