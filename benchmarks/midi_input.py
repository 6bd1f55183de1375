"""MIDI input: follow played MIDI by its piano roll, or by rendering it to audio? Measured.

``python -m benchmarks.midi_input`` makes performance MIDI files from corpus MIDI
(test-split chorales and test-split piano-midi.de pieces, as the audio benchmark's
items), with expressive timing and playing errors, then follows each one by two paths:

* ``roll``: the MIDI front end (follower.midi_frontend) and the score encoder on the
  played roll (follower.midi_engine.MidiEngine), what ``follower replay x.mid`` does;
  ``roll, no pedal``: the same with the sustain pedal ignored (piano items only);
* ``synth``: the performance rendered with FluidSynth (FluidR3_GM acoustic grand, the
  soundfont a user installs first, dry) and followed as audio by the audio engine.

A performance: an excerpt from 10-40 % into the piece, 30-45 s long (or to the end),
its tempo drifting over 0.5-1.6x the written tempo within the file (base 0.6-1.3x plus
slow rubato, benchmarks.warp.tempo_curve), onsets jittered (sd 20 ms, chords spread),
5 % of the notes missing, 5 % wrong (1-2 semitones off), 5 % extra notes (a wrong
neighbour struck with a right note), velocities redrawn; the sustain pedal of the
source is kept. The truth is the warp's time map (exact).

Scores per path (benchmarks.metrics): time to a stable correct identification,
the right piece at the end, position error while locked on the right piece.
Work files go to ``data/bench/midi_input/`` (git-ignored); the table is printed and
written there as ``results.md`` / ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import paths
from .warp import TimeMap, tempo_curve, warp_from_ratio

SEED = 1402
N_CHORALES = 10
TEMPO_RANGE = (0.5, 1.6)
START_FRAC = (0.10, 0.40)
LENGTH_S = (30.0, 45.0)
ONSET_JITTER_S = 0.02
P_MISSING = P_WRONG = P_EXTRA = 0.05
SYNTH_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SYNTH_RATE_HZ = 22050
TICKS_PER_S = 1920  # 120 bpm at 960 ticks per beat: 0.5 ms resolution


def performance_notes(timed) -> list[list]:
    """[onset_s, offset_s, voice, pitch, velocity] notes and ["cc", t, voice, control, value] pedal events."""
    notes, open_, pedal = [], {}, []
    for e in sorted(timed, key=lambda e: e.audio_s):
        key = (e.voice, e.a)
        if e.kind == "on":
            if key in open_:
                notes.append([*open_.pop(key), e.audio_s])
            open_[key] = (e.audio_s, e.voice, e.a, e.b)
        elif e.kind == "off":
            if key in open_:
                notes.append([*open_.pop(key), e.audio_s])
        elif e.a == 123:  # all notes off at the excerpt's end
            for k in [k for k in open_ if k[0] == e.voice]:
                notes.append([*open_.pop(k), e.audio_s])
        else:
            pedal.append(("cc", e.audio_s, e.voice, e.a, e.b))
    end = max((n[4] for n in notes), default=0.0)
    notes += [[*v, end] for v in open_.values()]
    out = [[on, max(off, on + 0.03), voice, pitch, vel] for on, voice, pitch, vel, off in notes]
    return sorted(out), pedal


def perturb(notes: list, rng: np.random.Generator) -> tuple[list, dict]:
    """Playing errors and expressive timing; returns the notes and the counts of each error."""
    out, counts = [], {"notes": len(notes), "missing": 0, "wrong": 0, "extra": 0}
    for on, off, voice, pitch, _ in notes:
        if rng.random() < P_MISSING:
            counts["missing"] += 1
            continue
        if rng.random() < P_WRONG:
            pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2]), 21, 108))
            counts["wrong"] += 1
        jitter = rng.normal(0.0, ONSET_JITTER_S)
        on2 = max(0.0, on + jitter)
        off2 = max(on2 + 0.03, off + rng.normal(0.0, ONSET_JITTER_S))
        vel = int(np.clip(rng.normal(72, 15), 20, 120))
        out.append([on2, off2, voice, pitch, vel])
        if rng.random() < P_EXTRA:
            extra = int(np.clip(pitch + rng.choice([-1, 1, -2, 2, -12, 12]), 21, 108))
            on3 = max(0.0, on2 + rng.uniform(-0.03, 0.03))
            out.append([on3, on3 + rng.uniform(0.08, 0.3), voice, extra, int(vel * 0.7)])
            counts["extra"] += 1
    return sorted(out), counts


def write_performance(path: Path, notes: list, pedal: list) -> None:
    """A type-0 MIDI file at 120 bpm whose ticks are the performance's own seconds."""
    import mido

    channels = [c for c in range(16) if c != 9]
    events = []
    for on, off, voice, pitch, vel in notes:
        ch = channels[voice % len(channels)]
        events.append((on, 1, mido.Message("note_on", channel=ch, note=int(pitch), velocity=int(vel))))
        events.append((off, 0, mido.Message("note_off", channel=ch, note=int(pitch), velocity=0)))
    for _, t, voice, control, value in pedal:
        ch = channels[voice % len(channels)]
        events.append((t, 0, mido.Message("control_change", channel=ch, control=int(control), value=int(value))))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_S // 2)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    tick = 0
    for t, _, msg in events:
        at = int(round(t * TICKS_PER_S))
        track.append(msg.copy(time=at - tick))
        tick = at
    mid.tracks.append(track)
    mid.save(str(path))


def make_performance(midi: Path, out_mid: Path, out_truth: Path, rng: np.random.Generator) -> dict:
    """One performance of an excerpt of ``midi``; writes the file and its truth, returns its description."""
    from .render import excerpt_events, read_events

    events, _ = read_events(midi)
    end = max(e.time_s for e in events)
    start = rng.uniform(*START_FRAC) * end
    ratio = tempo_curve(rng, rng.uniform(*LENGTH_S), base_lo=0.6, base_hi=1.3, rubato=0.25,
                        lo=TEMPO_RANGE[0], hi=TEMPO_RANGE[1])
    time_map = warp_from_ratio(ratio, start, end)
    notes, pedal = performance_notes(excerpt_events(events, time_map))
    played, counts = perturb(notes, rng)
    write_performance(out_mid, played, pedal)
    slopes = np.diff(time_map.midi_s) / np.diff(time_map.audio_s)
    info = {"midi": str(midi), "start_midi_s": float(start), "duration_s": float(time_map.audio_s[-1]),
            "tempo_min": float(slopes.min()), "tempo_max": float(slopes.max()), "pedal_events": len(pedal), **counts}
    time_map.save(out_truth, **info)
    return info


def items(out_dir: Path, *, n_chorales: int = N_CHORALES, n_piano: int | None = None) -> list[dict]:
    """The performances (made once, seeded): test-split chorales and the audio benchmark's piano pieces."""
    from .material import chorale_selection, piano_selection, piece_id

    out_dir.mkdir(parents=True, exist_ok=True)
    chorales = chorale_selection("test", n=N_CHORALES, seed=SEED)[:n_chorales]  # fewer: the first ones
    chosen = [("chorale", m, paths.chorale_dir()) for m, _ in chorales]
    pianos = piano_selection()
    chosen += [("piano", m, paths.piano_dir()) for m in pianos[: n_piano if n_piano is not None else len(pianos)]]
    out = []
    for k, (kind, midi, root) in enumerate(chosen):
        pid = piece_id(midi, root)
        name = f"{kind}_{k:02d}"
        mid, truth = out_dir / f"{name}.mid", out_dir / f"{name}.truth.json"
        item_rng = np.random.default_rng([SEED, k])
        info = (json.loads(truth.read_text()) if mid.exists() and truth.exists()
                else make_performance(midi, mid, truth, item_rng))
        if Path(info["midi"]).resolve() != Path(midi).resolve():
            raise RuntimeError(f"{truth} was made from {info['midi']}, not {midi}; remove {out_dir} to remake")
        info.pop("time_map", None)
        out.append({"name": name, "kind": kind, "piece": pid, "mid": mid, "truth": truth, **info})
    return out


def follow_roll(engine, midi_path: Path, *, pedal: bool = True) -> list[dict]:
    from follower.midi_frontend import RollConfig, RollFrontEnd
    from follower.midi_sources import performance_events, roll_frames

    sc = engine.bundle.config.snippets
    front = RollFrontEnd(sc, engine.fps, RollConfig(pedal=pedal))
    frames = roll_frames(performance_events(midi_path), front)
    engine.reset()
    records = []
    for i in range(0, len(frames), 16):
        for u in engine.push(frames[i:i + 16], last=i + 16 >= len(frames)):
            records.append(_record(u))
    return records


def render_performance(midi_path: Path) -> np.ndarray:
    from .render import TimedEvent, synthesize
    from follower.midi_sources import performance_events

    timed = []
    for t, msg in performance_events(midi_path):
        if msg.type == "note_on" and msg.velocity > 0:
            timed.append(TimedEvent(t, "on", 0, msg.note, msg.velocity))
        elif msg.type in ("note_on", "note_off"):
            timed.append(TimedEvent(t, "off", 0, msg.note, 0))
        else:
            timed.append(TimedEvent(t, "cc", 0, msg.control, msg.value))
    return synthesize(timed, [0], duration_s=timed[-1].audio_s + 1.0, sample_rate_hz=SYNTH_RATE_HZ,
                      soundfont=SYNTH_SOUNDFONT)


def follow_audio(engine, audio: np.ndarray) -> list[dict]:
    engine.reset()
    records = []
    for i in range(0, len(audio), 1024):
        for u in engine.push(audio[i:i + 1024], last=i + 1024 >= len(audio)):
            records.append(_record(u))
    return records


def _record(u) -> dict:
    from follower.jsonlog import record

    return record(u)


PATHS = ("roll", "roll-nopedal", "synth")


def report(out: Path, chosen: list[dict], wanted) -> str:
    """Score the logs in ``out/logs`` against the truths; the markdown table (also results.md / .json)."""
    from .metrics import load_jsonl, score_item, summarise

    scores: dict = {p: {"chorale": [], "piano": []} for p in wanted}
    rows = []
    for it in chosen:
        truth = TimeMap.load(it["truth"])
        for p in wanted:
            log = out / "logs" / p / f"{it['name']}.jsonl"
            if not log.exists():
                continue
            s = score_item(load_jsonl(log), it["piece"], truth)
            scores[p][it["kind"]].append(s)
            rows.append({"item": it["name"], "path": p, "piece": it["piece"], "end": s.correct_at["end"],
                         "stable_s": s.time_to_stable_s,
                         "pos_median_s": float(np.median(s.position_errors_s)) if s.position_errors_s.size else None})
    table = ["| path (items) | items | right piece at the end | stable identification, median / p90 | "
             "position error, median | within 0.25 / 0.5 / 1 s | coverage |", "|---|---|---|---|---|---|---|"]
    summary = {}
    for p in wanted:
        for kind in ("chorale", "piano"):
            if not scores[p][kind]:
                continue
            r = summarise(scores[p][kind])
            summary[f"{p}/{kind}"] = r
            table.append(f"| {p} ({kind}) | {r['items']} | {r['acc_end']:.0%} | {r['stable_median_s']:.1f} / "
                         f"{r['stable_p90_s']:.1f} s | {r['pos_median_s']:.2f} s | {r['within_0.25']:.0%} / "
                         f"{r['within_0.5']:.0%} / {r['within_1']:.0%} | {r['coverage']:.0%} |")
    text = "\n".join(table)
    perf = [{k: v for k, v in it.items() if k not in ("mid", "truth")} for it in chosen]
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"summary": summary, "rows": rows, "items": perf},
                                                 indent=1, default=str))
    return text


def main(argv=None) -> int:
    from tqdm import tqdm

    from follower.bundle import load_bundle
    from follower.engine import Engine
    from follower.index import load_index
    from follower.midi_engine import MidiEngine
    from follower.paths import DEFAULT_BUNDLE, resolve_bundle, resolve_index

    from .runners import ensure_index

    ap = argparse.ArgumentParser(prog="python -m benchmarks.midi_input", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=DEFAULT_BUNDLE)
    ap.add_argument("--piano-index", default=None, metavar="INDEX",
                    help="index of the whole piano-midi.de corpus built with the bundle (default: built once "
                         "into data/bench/index/ at hop 8, as benchmarks.run_all --piano-hop-frames 8 does)")
    ap.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {', '.join(PATHS)}")
    ap.add_argument("--chorales", type=int, default=N_CHORALES)
    ap.add_argument("--piano", type=int, default=None, help="piano items (default: all six)")
    ap.add_argument("--out", default=None, metavar="DIR", help="work folder (default data/bench/midi_input)")
    ap.add_argument("--report-only", action="store_true", help="score the logs already there, run nothing")
    args = ap.parse_args(argv)

    out = Path(args.out) if args.out else paths.work_dir() / "midi_input"
    wanted = args.paths.split(",")
    if bad := [p for p in wanted if p not in PATHS]:
        ap.error(f"--paths: unknown {', '.join(bad)}; choose from {', '.join(PATHS)}")
    chosen = items(out / "items", n_chorales=args.chorales, n_piano=args.piano)
    if args.report_only:
        print(report(out, chosen, wanted))
        return 0
    bundle_dir = resolve_bundle(args.bundle)
    bundle = load_bundle(bundle_dir)
    indexes = {"chorale": load_index(resolve_index(None, bundle_dir))}
    if any(it["kind"] == "piano" for it in chosen):
        piano_index = (Path(args.piano_index) if args.piano_index else
                       ensure_index(paths.piano_dir(), "piano", bundle_dir, paths.work_dir() / "index", 8)[0])
        indexes["piano"] = load_index(piano_index)
    for kind, index in indexes.items():
        index.check_bundle(bundle.config, index_path=kind, bundle_path=bundle_dir)
    engines = {}
    for kind, index in indexes.items():
        engines[("roll", kind)] = MidiEngine(bundle, index)
        engines[("audio", kind)] = Engine(bundle, index, input_rate_hz=SYNTH_RATE_HZ)
        for e in (engines[("roll", kind)], engines[("audio", kind)]):
            e.warm_up()
    t0 = time.time()
    for it in tqdm(chosen, desc="performances", unit="item"):
        for p in wanted:
            if p == "roll-nopedal" and it["kind"] != "piano":
                continue  # the chorales have no pedal
            if p == "synth":
                wav = out / "items" / f"{it['name']}.synth.npy"
                audio = np.load(wav, allow_pickle=False) if wav.exists() else render_performance(it["mid"])
                np.save(wav, audio)
                records = follow_audio(engines[("audio", it["kind"])], audio)
            else:
                records = follow_roll(engines[("roll", it["kind"])], it["mid"], pedal=p == "roll")
            (out / "logs" / p).mkdir(parents=True, exist_ok=True)
            (out / "logs" / p / f"{it['name']}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    print(report(out, chosen, wanted))
    print(f"({time.time() - t0:.0f} s; logs and results in {out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
