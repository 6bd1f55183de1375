"""``follower listen [--device ID]``: follow live input."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse

EPILOG = """\
Stop with Ctrl-C or SIGTERM (the run ends cleanly: JSON lines flushed, a last
/follower/state "stopped" sent). The audio callback only copies blocks into a
queue; a worker thread does the work. When it cannot keep up (a busy machine), it
skips updates rather than fall behind the audio (--max-lag: the output stays within
about that of the audio; one line on stderr, then one update per two or four hops
until the updates fit again; counted in --stats and in the JSON lines' "skipped").
A device that disappears is reported as state "lost" (OSC and JSON lines), then
"stopped", with one line on stderr and exit code 2. With --reconnect the follower
says "lost" and waits instead, looking for the device (by its name) every second;
when it is back, the follower searches for the piece again and carries on.

With --midi-in PORT the follower reads a MIDI keyboard instead of audio (note-ons,
note-offs and the sustain pedal; no audio device is opened): the notes go through the
MIDI front end to the same engine and outputs (README, "DAW and MIDI keyboards").
MIDI ports need the midi extra (python-rtmidi).

examples:
  follower devices                 # find the input's id
  follower listen --device 2 --osc 127.0.0.1:9000
  follower listen --device "USB Audio" --reconnect   # survives the interface being unplugged
  follower listen --device 2 --view   # and open http://127.0.0.1:8765/ in a browser
  follower midi-ports              # find the keyboard's port
  follower listen --midi-in "Digital Piano" --midi-out virtual:follower
"""


def register(subparsers) -> None:
    from .runner import add_arguments

    p = subparsers.add_parser("listen", help="follow live audio input (microphone, interface) or a MIDI keyboard "
                              "(--midi-in)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, metavar="ID",
                   help="input device id or name (see `follower devices`; default: the system's default input)")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="capture sample rate (default: the device's own; resampled to the model's rate)")
    p.add_argument("--channels", type=int, default=1, help="channels to capture (averaged to mono)")
    p.add_argument("--block", type=int, default=512, metavar="FRAMES", help="PortAudio block size")
    p.add_argument("--midi-in", default=None, metavar="PORT",
                   help="follow this MIDI input port instead of audio (name or part of it, see `follower "
                        "midi-ports`; virtual:NAME creates a port to play into)")
    p.add_argument("--reconnect", action="store_true",
                   help="when the input device disappears mid-stream, report state lost and wait for it (or a "
                        "device of the same name) to come back, then resume, instead of exiting (audio input only)")
    p.add_argument("--buffer", type=float, default=5.0, metavar="S",
                   help="audio that may wait for the worker before blocks are dropped (counted in --stats)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .audio_io import DeviceSource
    from .runner import RunOptions, load, run as run_session

    options = RunOptions.from_args(args)
    if args.midi_in:
        from .midi_sources import MidiPortSource, front_end_for

        front = front_end_for(options.bundle_dir)
        source = MidiPortSource(args.midi_in, front, buffer_s=args.buffer)  # a bad port is refused before loading
        return run_session(source, load(options), options)
    make_engine = load(options)
    source = DeviceSource(args.device, rate_hz=args.rate, channels=args.channels, block_frames=args.block,
                          buffer_s=args.buffer)
    return run_session(source, make_engine, options)
