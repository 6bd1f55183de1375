"""``follower align RECORDING --piece ID -o out.csv``: a recorded performance as rows of bar, beat and time."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse

import numpy as np

EPILOG = """\
Aligns the whole recording to the piece's score offline (it may look ahead, unlike
the live follower) and writes CSV, one row per beat of the score that the recording
covers, in score order:

  kind        bar (the first beat of a bar) | beat | note (with --notes)
  time_s      when it happens in the recording (seconds from the file's start)
  midi_s      the same moment on the MIDI file's own timeline (seconds)
  midi_beats  the same in quarter notes from the MIDI's start
  bar, beat   bar number and beat in the bar as the MIDI's time signatures count them
              (from 1; beat = the signature's denominator note); a MIDI without a time
              signature has no bar numbers and counts quarter-note beats from 1.
              For notes: the bar and the fractional beat where the note starts.
  confidence  how well the recording matches the score there, against its best match
              anywhere in the index's corpus (0..1; 1 = as well as anything, 0 = no better
              than a typical snippet; low all along: probably the wrong score)
  pitch, track  (notes only) MIDI pitch and the MIDI track it is on

The score is the piece's MIDI file: --piece ID names it in the index (the file is
looked up in the folder the index was built from), or --midi FILE gives it directly.
Recordings of a part of the piece are fine: rows outside the part played are left out.

examples:
  follower align take1.flac --piece bach_bwv362 -o take1.csv
  follower align take1.flac --midi my_score.mid --notes -o take1_notes.csv
  for f in takes/*.flac; do follower align "$f" --piece bach_bwv362 -o "${f%.flac}.csv"; done
"""

COLUMNS = ("kind", "time_s", "midi_s", "midi_beats", "bar", "beat", "confidence", "pitch", "track")


def register(subparsers) -> None:
    from .paths import DEFAULT_BUNDLE

    p = subparsers.add_parser("align", help="align a recording to its score: CSV of bars, beats (and notes) "
                                            "with their times", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recording", metavar="RECORDING", help="audio file (wav, flac, ogg, mp3; any rate)")
    p.add_argument("--piece", default=None, metavar="ID", help="piece id in the index (e.g. bach_bwv362)")
    p.add_argument("--midi", default=None, metavar="FILE", help="the score's MIDI file (instead of looking up --piece)")
    p.add_argument("--index", default=None, metavar="INDEX",
                   help="index that knows --piece (default: the one shipped in the bundle folder)")
    p.add_argument("--bundle", default=DEFAULT_BUNDLE, metavar="DIR",
                   help=f"model bundle whose encoders do the coarse alignment (default {DEFAULT_BUNDLE})")
    p.add_argument("-o", "--out", default="-", metavar="CSV", help="output file (default -, standard output)")
    p.add_argument("--notes", action="store_true", help="add a row with the aligned onset of every score note")
    p.add_argument("--coarse", action="store_true",
                   help="skip the note-level refinement (learned similarity only, 50 ms frames)")
    p.add_argument("--a4-hz", type=float, default=None, metavar="HZ",
                   help="the players' concert pitch, e.g. 415 (baroque pitch): the recording is heard as if tuned to "
                        "440 Hz. Without it the tuning is found from the recording where it is 25-40 cents off 440 "
                        "(follower listen's --a4-hz and --follow-tuning, the same)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary on stderr")
    p.set_defaults(func=run)


def find_piece_midi(index, index_path, piece_id: str):
    """The MIDI file of ``piece_id``, looked up in the folders the index was built from."""
    import difflib
    import os
    from pathlib import Path

    from .errors import ConfigError
    from .paths import REPO_ROOT

    ids = [str(i) for i in index.piece_ids]
    if piece_id not in ids:
        close = difflib.get_close_matches(piece_id, ids, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"ids look like {ids[0]}"
        raise ConfigError(f"piece {piece_id!r} is not in {index_path} ({len(ids)} pieces); {hint} "
                          "(or give the score with --midi FILE)")
    sources = [Path(s) for s in index.header.get("sources", [])]
    env = os.environ.get("SCOREFOLLOW_DATA")
    tried = []
    for src in sources:
        roots = [src] if src.is_absolute() else [src, REPO_ROOT / src, Path(index_path).parent / src]
        if env:  # the same corpus folder under the data root the user points at
            roots.append(Path(env) / "midi" / src.name)
        for root in roots:
            if root.is_file() and root.with_suffix("").name == piece_id:
                return root
            for suffix in (".mid", ".midi", ".MID"):
                candidate = root / f"{piece_id}{suffix}"
                if candidate.is_file():
                    return candidate
            tried.append(str(root))
    where = ", ".join(dict.fromkeys(tried)) or "(the index names no source folder)"
    raise ConfigError(f"piece {piece_id!r} is in {index_path} but its MIDI file is not under {where}; "
                      "give it with --midi FILE")


def run(args) -> int:
    import sys
    from pathlib import Path

    import soundfile as sf

    from .align import AlignConfig, align_recording
    from .audio_io import FileSource
    from .bundle import load_bundle
    from .errors import BadAudioError, ConfigError
    from .index import load_index
    from .meter import time_signatures
    from .midi import load_midi
    from .paths import resolve_bundle, resolve_index
    from .tuning import TuningConfig, recording_cents, tuning_notice

    if not args.piece and not args.midi:
        raise ConfigError("name the score: --piece ID (a piece of the index) or --midi FILE")
    tuning = TuningConfig(a4_hz=args.a4_hz)  # a pitch no instrument has: one line, before any work
    source = FileSource(args.recording, realtime=False)  # the file's problems, in one line, before any work
    bundle_dir = resolve_bundle(args.bundle)
    index = None
    if args.midi:
        midi_path = Path(args.midi)
    else:
        index_path = resolve_index(args.index, bundle_dir)
        index = load_index(index_path)
        midi_path = find_piece_midi(index, index_path, args.piece)
    score = load_midi(midi_path)
    signatures = time_signatures(midi_path)
    out_path = None if args.out == "-" else Path(args.out)
    if out_path is not None and not out_path.parent.is_dir():
        raise ConfigError(f"-o {args.out}: the folder {out_path.parent} does not exist")

    try:
        signal, rate = sf.read(str(source.path), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile's many errors
        raise BadAudioError(f"{source.path}: cannot read it ({e})") from e
    bundle = load_bundle(bundle_dir)
    if index is None:
        index = _reference_index(args.index, bundle_dir)
    if index is not None:
        index.check_bundle(bundle.config, bundle_path=str(bundle_dir))
    config = AlignConfig(refine=not args.coarse)
    mono = signal.mean(axis=1)
    cents = recording_cents(mono, rate, bundle.config.features, tuning)
    if cents and not args.quiet:
        print(tuning_notice(args.recording, cents), file=sys.stderr)
    alignment = align_recording(mono, rate, score, bundle, config, progress=not args.quiet,
                                reference=None if index is None else index.embeddings, cents=cents)

    rows = _beat_rows(alignment, score, signatures)
    if args.notes:
        rows += _note_rows(alignment, score, signatures)
    rows.sort(key=lambda r: (r[2], r[0] == "note"))  # score order; a beat before the notes it starts
    text = _csv(rows)
    if out_path is None:
        sys.stdout.write(text)
    else:
        tmp = out_path.with_name(out_path.name + ".tmp")
        try:
            tmp.write_text(text)
            tmp.replace(out_path)
        except OSError as e:
            raise ConfigError(f"-o {args.out}: cannot write it ({e.strerror})") from e
    if not args.quiet:
        m0, m1 = alignment.midi_span
        kinds = [r[0] for r in rows]
        print(f"aligned {len(signal) / rate:.1f} s of {args.recording} to {args.piece or midi_path.stem} "
              f"(score {m0:.1f}-{m1:.1f} s of {score.duration_s:.1f} s, median confidence "
              f"{np.median(alignment.confidence):.2f}): {kinds.count('bar')} bars, "
              f"{kinds.count('bar') + kinds.count('beat')} beats" + (f", {kinds.count('note')} notes" if args.notes
                                                                     else "")
              + (f" -> {out_path}" if out_path else ""), file=sys.stderr)
    return 0


def _reference_index(index_arg, bundle_dir):
    """With --midi: the index the confidence is judged against, when there is one for this bundle."""
    from .errors import FollowerError
    from .index import load_index
    from .paths import resolve_index

    try:
        return load_index(resolve_index(index_arg, bundle_dir))
    except FollowerError:
        if index_arg:  # asked for by name: its problem is the user's to know
            raise
        return None  # a bundle without an index: confidence from the score's own windows


def _beat_rows(alignment, score, signatures) -> list:
    from .meter import beat_grid

    end_q = float(score.seconds_to_beats(score.duration_s))
    grid = beat_grid(signatures, end_q)
    midi_s = score.beats_to_seconds(grid.quarters)
    t = alignment.audio_time(midi_s)
    conf = alignment.confidence_at(np.nan_to_num(t))
    rows = []
    for k in np.flatnonzero(np.isfinite(t)):
        kind = "bar" if grid.has_bars and grid.beat[k] == 1 else "beat"
        rows.append((kind, t[k], midi_s[k], grid.quarters[k], int(grid.bar[k]) if grid.has_bars else "",
                     int(grid.beat[k]), conf[k], "", ""))
    return rows


def _note_rows(alignment, score, signatures) -> list:
    from .meter import beat_grid

    notes = score.pitched
    t = alignment.audio_time(notes["start_s"])
    conf = alignment.confidence_at(np.nan_to_num(t))
    q = score.seconds_to_beats(notes["start_s"])
    grid = beat_grid(signatures, float(q.max()) + 1e-6 + 64)  # beats past the last onset: every note has a bar
    rows = []
    for k in np.flatnonzero(np.isfinite(t)):
        b = int(np.searchsorted(grid.quarters, q[k] + 1e-9)) - 1
        beat_len = (grid.quarters[b + 1] - grid.quarters[b]) if b + 1 < len(grid.quarters) else 1.0
        beat = grid.beat[b] + (q[k] - grid.quarters[b]) / beat_len
        rows.append(("note", t[k], notes["start_s"][k], q[k], int(grid.bar[b]) if grid.has_bars else "",
                     round(float(beat), 4), conf[k], int(notes["pitch"][k]), int(notes["track"][k])))
    return rows


def _csv(rows) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for kind, t, m, q, bar, beat, conf, pitch, track in rows:
        w.writerow([kind, f"{t:.3f}", f"{m:.3f}", f"{q:.3f}", bar, beat, f"{conf:.2f}", pitch, track])
    return buf.getvalue()

