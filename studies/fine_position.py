"""Where the position error after lock comes from, and what the repeat hold changes (a study)

    python -m studies.fine_position jumps --out DIR          # jump renditions of validation-split pieces
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
    jobs = [(m, f, "chorales") for m, f in chorale_selection("valid", args.chorales, JUMP_SEED)]
    jobs += [(m, None, "piano") for m in piano_validation(args.piano, JUMP_SEED)]
    items = []
    for k, (midi, family, corpus) in enumerate(jobs):
        rng = np.random.default_rng([JUMP_SEED, k])
        ensembles = CHORALE_ENSEMBLES if corpus == "chorales" else {n: [p] for n, p in PIANO_PROGRAMS.items()}
        instruments = list(ensembles)[rng.integers(len(ensembles))]
        root = paths.chorale_dir() if corpus == "chorales" else paths.piano_dir()
        name = f"vjump_{k:02d}_{midi.stem}"
        audio, truth = out / f"{name}.flac", out / f"{name}.truth.json"
        if not (audio.exists() and truth.exists()):
            render_jump_item(midi, audio, truth, rng, programs=ensembles[instruments], instruments=instruments)
        pid = piece_id(midi, root)
        items.append(Item(name, "jumps", str(audio), str(truth), corpus, pid, str(midi), family or pid,
                          float(sf.info(audio).duration)))
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
    t = sub.add_parser("trace", help="replay a material folder and split the position errors")
    t.add_argument("--material", required=True)
    t.add_argument("--index", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--bundle", default="exported/default")
    t.add_argument("--kinds", default="", help="item kinds or corpora to replay (default: all)")
    t.add_argument("--set", action="append", default=[], metavar="fine.FIELD=VALUE")
    args = p.parse_args(argv)
    return run_main(run_jumps if args.command == "jumps" else run_trace, args)


if __name__ == "__main__":
    raise SystemExit(main())
