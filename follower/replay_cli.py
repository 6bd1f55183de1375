"""``follower replay AUDIO [AUDIO ...]``: recordings through exactly the live path."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse

EPILOG = """\
Each file is read block by block into the same queue, worker and engine as live
input, paced in real time (so Max sees what it would see on stage) or, with
--fast, as fast as the machine allows. Any sample rate and channel count.

A MIDI file (.mid, .midi) is followed as a performance: its notes and sustain
pedal, timed by its own tempo map (a recording from a digital piano or a DAW), go
through the MIDI front end instead of the spectrogram, to the same engine and outputs
(README, "DAW and MIDI keyboards"). Audio and MIDI files may be mixed.

Several files are replayed one after the other in one process (the model and the
index load once), each from a fresh engine; with --jsonl-dir each file's JSON lines
go to DIR/<file name>.jsonl. A file that cannot be read is reported on one line and
skipped; the exit code is then 2.

With --view the follower serves a live page (piano roll, cursor, tempo, state,
candidates) at the address it prints; after the (last) file it stays up for
--view-linger seconds (default 30), or until Ctrl-C.

examples:
  follower replay examples/chorale_excerpt.ogg --fast
  follower replay examples/chorale_excerpt.ogg --view     # then open http://127.0.0.1:8765/
  follower replay performance.mid --midi-out virtual:follower
  follower replay takes/*.flac --fast --quiet --jsonl-dir logs/
"""


def register(subparsers) -> None:
    from .runner import add_arguments

    p = subparsers.add_parser("replay", help="follow recordings (wav, flac, ogg, mp3) or MIDI performances (.mid)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", metavar="AUDIO", nargs="+", help="audio or MIDI file(s)")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    p.add_argument("--jsonl-dir", default=None, metavar="DIR",
                   help="write each file's JSON lines to DIR/<file name>.jsonl (the folder is created)")
    add_arguments(p)
    p.set_defaults(func=run)


def jsonl_paths(audio_paths, folder) -> list:
    """DIR/<stem>.jsonl per file; files of the same stem get their position in the list added."""
    from pathlib import Path

    stems = [Path(a).stem for a in audio_paths]
    return [Path(folder) / (f"{s}.jsonl" if stems.count(s) == 1 else f"{s}-{i + 1}.jsonl")
            for i, s in enumerate(stems)]


def open_source(path, options, *, realtime: bool):
    """The source for one file: a MIDI performance by its suffix, else audio. Bad files are refused here."""
    from .audio_io import FileSource
    from .midi_sources import MidiFileSource, front_end_for, is_midi_path

    if is_midi_path(path):
        return MidiFileSource(path, front_end_for(options.bundle_dir), realtime=realtime)
    return FileSource(path, realtime=realtime)


def run(args) -> int:
    import dataclasses
    import sys
    from pathlib import Path

    from .errors import ConfigError, FollowerError
    from .runner import RunOptions, load, run as run_session

    options = RunOptions.from_args(args)
    files = list(args.audio)
    if len(files) == 1 and not args.jsonl_dir:
        source = open_source(files[0], options, realtime=not args.fast)  # refused before the model loads
        return run_session(source, load(options), options)
    if args.jsonl and args.jsonl_dir:
        raise ConfigError("give --jsonl or --jsonl-dir, not both")
    if len(files) > 1 and args.jsonl and args.jsonl != "-":
        raise ConfigError(f"--jsonl {args.jsonl} names one file for {len(files)} recordings; "
                          "use --jsonl-dir DIR for one file each")
    outputs = [None] * len(files)
    if args.jsonl_dir:
        try:
            Path(args.jsonl_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--jsonl-dir {args.jsonl_dir}: cannot create it ({e.strerror})") from e
        outputs = [str(p) for p in jsonl_paths(files, args.jsonl_dir)]
    make_engine = load(options)
    failed = 0
    if options.view is not None:  # the live view lingers after the last file only
        views = [dataclasses.replace(options.view, linger_s=0.0)] * (len(files) - 1) + [options.view]
    else:
        views = [None] * len(files)
    for path, out, view in zip(files, outputs, views):
        if options.console:
            print(f"== {path}", flush=True)
        try:
            source = open_source(path, options, realtime=not args.fast)
            run_session(source, make_engine,
                        dataclasses.replace(options, jsonl_path=out or options.jsonl_path, view=view))
        except FollowerError as e:  # one unreadable file does not stop the batch
            failed += 1
            print(f"error: {e} (skipped)", file=sys.stderr, flush=True)
    if failed:
        print(f"{failed} of {len(files)} files skipped", file=sys.stderr)
    return 2 if failed else 0
