"""Run matchmaker (CPJKU's real-time score follower, PyPI ``pymatchmaker``) on one item.

matchmaker needs numpy < 2 while the project runs numpy 2, so it lives in its own
virtualenv (``python -m benchmarks.setup_matchmaker`` creates it) and this module
runs there as a subprocess:

    data/bench/mm-venv/bin/python -m benchmarks.peers_matchmaker \\
        --score S.mid --audio A.flac --method arzt --offset-s 12.3 --piece ID --jsonl OUT

It is told the true piece (and, for mid-piece excerpts, a score cut where the
excerpt starts; see midi_crop.py). It writes the follower's JSON-lines schema: one
record per matchmaker frame with ``t`` = seconds of audio consumed, ``position_s``
= seconds of the *original* MIDI's timeline (matchmaker's beats mapped through the
score's notes to quarter notes, then through the MIDI tempo map, plus the crop
offset), state ``following``, and ``latency_ms`` = that frame's feature extraction
plus alignment step. Only numpy, mido and the standard library are used from this
repository, so it runs under matchmaker's own numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from follower.midi import load_midi


def _timed_subclass(obj, log: list):
    """Re-class ``obj`` so that each call of it appends its duration (s) to ``log``.

    matchmaker calls processors and followers as ``obj(...)``, which Python looks
    up on the type, so the timing wrapper must be a subclass.
    """
    base = type(obj)

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = base.__call__(self, *args, **kwargs)
        log.append(time.perf_counter() - t0)
        return out

    obj.__class__ = type(f"Timed{base.__name__}", (base,), {"__call__": __call__})


def beats_to_seconds(score_part, midi):
    """Map matchmaker's score beats to seconds of the MIDI file ``midi`` (a Score).

    partitura's beats follow the score's meter, and its quarter axis starts at the
    first *measure*: a score that begins mid-bar (our cut scores, chorale pickups)
    gets an incomplete first measure and negative onsets. The quarter axis is the
    MIDI's ticks shifted by a constant, found from the first note; the MIDI's tempo
    map then gives seconds.
    """
    na = score_part.note_array()
    beats, idx = np.unique(na["onset_beat"], return_index=True)
    quarters = na["onset_quarter"][idx]
    shift = float(midi.seconds_to_beats(midi.pitched["start_s"].min())) - float(quarters.min())
    if len(beats) == 1:
        return lambda b: midi.beats_to_seconds(np.asarray(b, float) - beats[0] + quarters[0] + shift)
    slope = (quarters[-1] - quarters[-2]) / (beats[-1] - beats[-2])
    beats = np.append(beats, beats[-1] + 1e4)
    quarters = np.append(quarters, quarters[-1] + 1e4 * slope)
    return lambda b: midi.beats_to_seconds(np.maximum(np.interp(b, beats, quarters) + shift, 0.0))


def run(score: Path, audio: Path, method: str, offset_s: float, piece: str, jsonl: Path) -> dict:
    import soundfile as sf
    from matchmaker import Matchmaker

    t0 = time.perf_counter()
    mm = Matchmaker(score_file=str(score), performance_file=str(audio), input_type="audio", method=method)
    setup_s = time.perf_counter() - t0
    feature_log, step_log = [], []
    _timed_subclass(mm.processor, feature_log)
    _timed_subclass(mm.score_follower, step_log)
    to_seconds = beats_to_seconds(mm.score_part, load_midi(score))
    hop_s = mm.hop_length / mm.sample_rate
    beats = []
    t1 = time.perf_counter()
    for beat in mm.run(verbose=False):
        beats.append(float(beat))
    run_s = time.perf_counter() - t1
    path = mm.score_follower.alignment_path  # (2, T): beat, performance time of each step
    perf_t = path[1] if path.shape[1] == len(beats) else np.arange(len(beats)) * hop_s
    position_s = to_seconds(np.array(beats)) + offset_s
    # the stream's first call only primes its window and emits nothing
    features = np.array(feature_log[1:1 + len(beats)] + [0.0] * max(0, len(beats) - len(feature_log) + 1))
    latency_ms = (features[:len(beats)] + np.array(step_log[:len(beats)])) * 1000
    with open(jsonl, "w") as out:
        for t, pos, b, lat in zip(perf_t, position_s, beats, latency_ms):
            out.write(json.dumps({"t": round(float(t) + hop_s, 4), "piece": piece, "title": piece,
                                  "position_s": round(float(pos), 4), "position_beats": round(b, 4),
                                  "tempo": None, "confidence": 1.0, "state": "following",
                                  "latency_ms": round(float(lat), 3)}) + "\n")
    duration_s = sf.info(str(audio)).duration
    return {"method": method, "setup_s": setup_s, "run_s": run_s, "duration_s": duration_s,
            "rtf": run_s / duration_s, "frames": len(beats),
            "stopped_at_score_end_s": float(perf_t[-1]) if len(beats) else 0.0}


def remap(score: Path, offset_s: float, jsonl: Path) -> None:
    """Recompute ``position_s`` from the logged beats (after a fix of the beat mapping)."""
    import partitura
    from partitura.score import merge_parts, unfold_part_maximal

    if not jsonl.exists() or not jsonl.read_text().strip():
        return
    part = partitura.load_score(str(score))
    try:  # as Matchmaker does (unfold_score=True)
        part = merge_parts(unfold_part_maximal(part, ignore_leaps=False).parts)
    except Exception:
        part = merge_parts(part.parts)
    to_seconds = beats_to_seconds(part, load_midi(score))
    records = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    positions = to_seconds(np.array([r["position_beats"] for r in records])) + offset_s
    with open(jsonl, "w") as out:
        for r, pos in zip(records, positions):
            out.write(json.dumps({**r, "position_s": round(float(pos), 4)}) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers_matchmaker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--score", type=Path, help="score MIDI given to matchmaker")
    parser.add_argument("--audio", type=Path)
    parser.add_argument("--method", default="arzt", help="arzt, dixon, outerhmm, skf, pf")
    parser.add_argument("--offset-s", type=float, default=0.0,
                        help="seconds of the original MIDI where --score starts (crop offset)")
    parser.add_argument("--piece", help="piece id written into every record")
    parser.add_argument("--jsonl", type=Path)
    parser.add_argument("--remap", action="store_true",
                        help="with --jobs: only recompute position_s of existing logs from their position_beats")
    parser.add_argument("--jobs", type=Path, help="JSON list of {score, audio, method, offset_s, piece, jsonl}: "
                        "run them all in this process (imports once); each writes JSONL and JSONL.stats.json")
    args = parser.parse_args(argv)
    if args.jobs:
        jobs = json.loads(args.jobs.read_text())
    elif args.score and args.audio and args.piece and args.jsonl:
        jobs = [{"score": args.score, "audio": args.audio, "method": args.method, "offset_s": args.offset_s,
                 "piece": args.piece, "jsonl": args.jsonl}]
    else:
        parser.error("give --jobs, or --score, --audio, --piece and --jsonl")
    if args.remap:
        for job in jobs:
            remap(Path(job["score"]), float(job["offset_s"]), Path(job["jsonl"]))
        return 0
    failed = 0
    for job in jobs:
        try:
            stats = run(Path(job["score"]), Path(job["audio"]), job["method"], float(job["offset_s"]),
                        job["piece"], Path(job["jsonl"]))
        except Exception as e:  # one item failing (e.g. a score partitura cannot read) must not stop the rest
            failed += 1
            stats = {"method": job["method"], "error": f"{type(e).__name__}: {e}"}
            Path(job["jsonl"]).write_text("")
        stats["loadavg_1min"] = os.getloadavg()[0]
        Path(str(job["jsonl"]) + ".stats.json").write_text(json.dumps(stats))
        print(f"{job['method']} {Path(job['audio']).name}: {stats}", flush=True)
    return 1 if failed == len(jobs) else 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
