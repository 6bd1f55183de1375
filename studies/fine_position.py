"""Where the position error after lock comes from, and what the repeat hold changes (a study)

    python -m studies.fine_position jumps --out DIR [--seed S --chorales N --piano M]  # jump renditions of validation-split pieces
    python -m studies.fine_position held --out DIR           # validation chorales with held chords (fermatas)
    python -m studies.fine_position trace --material DIR --index INDEX --out DIR \\
        [--kinds chorale,piano,chorales] [--set fine.hold_evidence=0]

``trace`` replays each item of a material folder (``benchmarks.material --set tuning``, or
``jumps`` above; never the benchmark items alone) through the engine and writes one JSON
line per update: the reported, coarse (tracker) and fine positions and the repeat hold's
state (:mod:`follower.repeat_hold`). It then prints the benchmark's own scores
(:mod:`benchmarks.metrics`) and the locked updates' errors split by cause: more than 2 s
off (the other occurrence of a repeat, a jump not yet followed, a wrong lock), 0.5-2 s
in the first 3 s after a lock, and the rest (the fine aligner's own error).
``--set fine.NAME=VALUE`` changes one :class:`follower.aligner.FineConfig` field.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread, as the follower runs)

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

JUMP_SEED = 4242  # the validation jump renditions; the benchmark's own use benchmarks.material.JUMP_SEED
HELD_SEED = 4343  # the validation renditions with held chords


def trace(bundle, index, audio, config) -> list[dict]:
    """One engine pass; per update the Update's fields plus the tracker's, the aligner's and the hold's state."""
    from follower.engine import Engine
    from studies.decoders import read_audio

    signal, rate = read_audio(audio)
    engine = Engine(bundle, index, input_rate_hz=rate, config=config)
    engine.warm_up()
    inner, snaps = engine._update, []

    def update():
        u = inner()
        snaps.append({"tracker_s": engine.tracker.position_s if engine.tracker is not None else None,
                      "fine_own_s": engine.aligner.position_s if engine.aligner is not None else None,
                      "hold": bool(engine._hold.active) if engine._hold is not None else False,
                      "hold_against": engine._hold.against if engine._hold is not None else 0.0})
        return u

    engine._update = update
    out, block = [], 131072  # whole blocks: the engine embeds their windows in batches (follower.ahead)
    for start in range(0, len(signal), block):
        for u in engine.push(signal[start:start + block], last=start + block >= len(signal)):
            out.append({"t": u.t, "piece": u.piece, "position_s": u.position_s, "state": u.state,
                        "latency_ms": u.latency_ms, **snaps[len(out)]})
    return out


def error_causes(records: list[dict], piece: str, truth) -> dict:
    """Counts of locked updates on the right piece by error class (see the module docstring)."""
    t = np.array([r["t"] for r in records])
    truth_s = truth.audio_to_midi(t)
    out = {"locked": 0, "within_0.25": 0, "within_0.5": 0, "over_2s": 0, "after_lock_0.5_2s": 0, "other_0.5_2s": 0}
    first = None
    for r, true_s in zip(records, truth_s):
        if r["state"] != "following" or r["piece"] != piece or r["position_s"] is None or not np.isfinite(true_s):
            continue
        first = r["t"] if first is None else first
        err = abs(r["position_s"] - true_s)
        out["locked"] += 1
        out["within_0.25"] += err <= 0.25
        out["within_0.5"] += err <= 0.5
        if err > 2.0:
            out["over_2s"] += 1
        elif err > 0.5:
            out["after_lock_0.5_2s" if r["t"] - first < 3.0 else "other_0.5_2s"] += 1
    return out


def run_trace(args) -> int:
    from benchmarks.metrics import score_item, summarise
    from benchmarks.warp import load_truth
    from follower.aligner import FineConfig
    from follower.bundle import load_bundle
    from follower.engine import EngineConfig
    from follower.errors import ConfigError
    from follower.index import load_index

    fine = {}
    for setting in args.set:
        name, _, value = setting.partition("=")
        field = name.removeprefix("fine.")
        if not name.startswith("fine.") or field not in FineConfig.__dataclass_fields__ or not value:
            raise ConfigError(f"--set {setting!r}: expected fine.FIELD=VALUE with a FineConfig field")
        fine[field] = type(getattr(FineConfig(), field))(value)
    config = replace(EngineConfig(), fine=replace(FineConfig(), **fine))
    manifest = Path(args.material) / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: no such manifest (make one with python -m benchmarks.material --set tuning)")
    kinds = {k for k in args.kinds.split(",") if k} if args.kinds else None
    items = [i for i in json.loads(manifest.read_text())
             if not kinds or i["kind"] in kinds or i["corpus"] in kinds]
    bundle, index = load_bundle(Path(args.bundle), threads=1), load_index(args.index)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores, causes = [], {}
    for item in items:
        log = out / f"{item['name']}.jsonl"
        if not log.exists():
            log.write_text("".join(json.dumps(r) + "\n" for r in trace(bundle, index, item["audio"], config)))
        records = [json.loads(line) for line in log.read_text().splitlines()]
        truth = load_truth(Path(item["truth"]))
        scores.append(score_item(records, item["piece"], truth))
        for k, v in error_causes(records, item["piece"], truth).items():
            causes[k] = causes.get(k, 0) + int(v)
    s = summarise(scores)
    n = max(causes.get("locked", 0), 1)
    print(json.dumps({"items": len(scores), "within_0.25": s["within_0.25"], "within_0.5": s["within_0.5"],
                      "recovery_median_s": s["recovery_median_s"] if s["jumps"] else None,
                      "share_of_locked": {k: round(v / n, 3) for k, v in causes.items() if k != "locked"},
                      "locked": causes.get("locked", 0)}))
    return 0


def run_jumps(args) -> int:
    """Jump renditions as benchmarks.material's, of validation-split chorales and piano pieces."""
    import soundfile as sf

    from benchmarks import paths
    from benchmarks.material import (CHORALE_ENSEMBLES, PIANO_PROGRAMS, Item, chorale_selection,
                                     piano_validation, piece_id, render_jump_item)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seed = args.seed
    jobs = [(m, f, "chorales") for m, f in chorale_selection("valid", args.chorales, seed)]
    jobs += [(m, None, "piano") for m in piano_validation(args.piano, seed)]
    items = []
    for k, (midi, family, corpus) in enumerate(jobs):
        rng = np.random.default_rng([seed, k])
        ensembles = CHORALE_ENSEMBLES if corpus == "chorales" else {n: [p] for n, p in PIANO_PROGRAMS.items()}
        instruments = list(ensembles)[rng.integers(len(ensembles))]
        root = paths.chorale_dir() if corpus == "chorales" else paths.piano_dir()
        name = f"vjump_{k:02d}_{midi.stem}" if seed == JUMP_SEED else f"vjump_s{seed}_{k:02d}_{midi.stem}"
        audio, truth = out / f"{name}.flac", out / f"{name}.truth.json"
        if not (audio.exists() and truth.exists()):
            render_jump_item(midi, audio, truth, rng, programs=ensembles[instruments], instruments=instruments)
        pid = piece_id(midi, root)
        items.append(Item(name, "jumps", str(audio), str(truth), corpus, pid, str(midi), family or pid,
                          float(sf.info(audio).duration)))
    (out / "manifest.json").write_text(json.dumps([asdict(i) for i in items], indent=1))
    print(f"{len(items)} renditions in {out}")
    return 0


def hold_chords(time_map, onsets_s: np.ndarray, rng, *, every_s=(4.0, 8.0), extra_s=(0.8, 2.5),
                min_chord_s: float = 0.8):
    """``time_map`` with some long chords held longer, as players hold a fermata at a phrase's end.

    Every ``every_s`` MIDI seconds the next chord lasting ``min_chord_s`` or more (a phrase's
    closing half note in a chorale) takes ``extra_s`` more audio time; the truth stays on the
    chord all the while (its MIDI time advances slowly through it), and no note starts meanwhile.
    """
    from benchmarks.warp import TimeMap

    start, end = float(time_map.midi_s[0]), float(time_map.midi_s[-1])
    starts = np.unique(np.round(onsets_s[(onsets_s >= start) & (onsets_s < end)], 4))
    gaps = np.diff(starts)
    holds, after = [], start + rng.uniform(*every_s) / 2
    for a, g in zip(starts[:-1], gaps):
        if a >= after and g >= min_chord_s:
            holds.append((a, a + g, rng.uniform(*extra_s)))
            after = a + g + rng.uniform(*every_s)
    tau = np.unique(np.concatenate([time_map.midi_s, [x for h in holds for x in h[:2]]]))
    t = time_map.midi_to_audio(tau)
    for a, b, extra in holds:
        t = t + extra * np.clip((tau - a) / (b - a), 0.0, 1.0)
    return TimeMap(t, tau), holds


def run_held(args) -> int:
    """Validation-split chorale excerpts rendered as the tuning set's, with held chords (:func:`hold_chords`)."""
    import soundfile as sf

    from benchmarks import paths
    from benchmarks.material import CHORALE_ENSEMBLES, SAMPLE_RATE_HZ, Item, chorale_selection, piece_id
    from benchmarks.render import excerpt_events, put_in_room, read_events, synthesize
    from benchmarks.warp import tempo_curve, warp_from_ratio

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for k, (midi, family) in enumerate(chorale_selection("valid", args.chorales, HELD_SEED)):
        rng = np.random.default_rng([HELD_SEED, k])
        instruments = list(CHORALE_ENSEMBLES)[rng.integers(len(CHORALE_ENSEMBLES))]
        programs = CHORALE_ENSEMBLES[instruments]
        name = f"held_{k:02d}_{midi.stem}"
        audio, truth = out / f"{name}.flac", out / f"{name}.truth.json"
        if not (audio.exists() and truth.exists()):
            events, n_voices = read_events(midi)
            midi_end_s = max(e.time_s for e in events)
            start_s = rng.uniform(0.0, 0.4) * midi_end_s
            ratio = tempo_curve(rng, rng.uniform(25.0, 40.0), base_lo=0.65, base_hi=1.15)
            onsets = np.array([e.time_s for e in events if e.kind == "on"])
            time_map, holds = hold_chords(warp_from_ratio(ratio, start_s, midi_end_s), onsets, rng)
            duration_s = float(time_map.audio_s[-1])
            dry = synthesize(excerpt_events(events, time_map), [programs[v % len(programs)] for v in range(n_voices)],
                             duration_s=duration_s, sample_rate_hz=SAMPLE_RATE_HZ,
                             soundfont=paths.HELD_OUT_SOUNDFONT, velocity_gain=rng.uniform(0.7, 1.1), rng=rng)
            room = {"rt60_s": rng.uniform(0.3, 1.2), "direct_to_reverb_db": rng.uniform(0.0, 8.0),
                    "snr_db": rng.uniform(15.0, 30.0)}
            sf.write(audio, put_in_room(dry, rng, sample_rate_hz=SAMPLE_RATE_HZ, **room), SAMPLE_RATE_HZ)
            time_map.save(truth, midi=str(midi), instruments=instruments, programs=programs, start_midi_s=start_s,
                          holds=[[round(a, 3), round(b, 3), round(x, 3)] for a, b, x in holds], **room)
        items.append(Item(name, "chorale", str(audio), str(truth), "chorales", piece_id(midi, paths.chorale_dir()),
                          str(midi), family, float(sf.info(audio).duration)))
    (out / "manifest.json").write_text(json.dumps([asdict(i) for i in items], indent=1))
    print(f"{len(items)} renditions in {out}")
    return 0


def main(argv=None) -> int:
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.fine_position", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("jumps", help="render jump renditions of validation-split pieces")
    j.add_argument("--out", required=True)
    j.add_argument("--chorales", type=int, default=6)
    j.add_argument("--piano", type=int, default=4)
    j.add_argument("--seed", type=int, default=JUMP_SEED, help="another seed draws other pieces and jumps")
    h = sub.add_parser("held", help="render validation-split chorales with held chords (fermatas)")
    h.add_argument("--out", required=True)
    h.add_argument("--chorales", type=int, default=10)
    t = sub.add_parser("trace", help="replay a material folder and split the position errors")
    t.add_argument("--material", required=True)
    t.add_argument("--index", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--bundle", default="exported/default")
    t.add_argument("--kinds", default="", help="item kinds or corpora to replay (default: all)")
    t.add_argument("--set", action="append", default=[], metavar="fine.FIELD=VALUE")
    args = p.parse_args(argv)
    return run_main({"jumps": run_jumps, "held": run_held, "trace": run_trace}[args.command], args)


if __name__ == "__main__":
    raise SystemExit(main())
