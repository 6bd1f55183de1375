"""How the re-rank lock's thresholds were chosen (docs/improvements.md (g)).

``python -m studies.rerank_tuning --index INDEX [--material data/bench/tuning] -o OUT.json``
replays the tuning material (``python -m benchmarks.material --set tuning``:
validation-split chorales, never the benchmark's test pieces) through the engine with
the re-rank lock switched off, records the re-ranking of every update
(:mod:`follower.rerank`), and then plays the rule "the leader's alignment score
reaches MIN z-s and beats the runner-up's by MARGIN, the same leader for HOLD s" over
those records for every combination of the grid. A rule that ever locks a wrong piece
on the tuning material is out; of the rest, the one with the smallest median plus
90th percentile of its lock times is chosen (the rule's own locks, before the engine's
other rules are combined with it). The shipped values are ``EngineConfig``'s
``rerank_min_zs``, ``rerank_margin_zs`` and ``rerank_lock_s``.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread, as the follower runs)

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

GRID = {"min_zs": (2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0), "margin_zs": (0.5, 1.0, 1.5, 2.0, 3.0), "hold_s": (0.25, 0.5, 1.0)}


def record_rankings(bundle, index, items, *, progress: bool = True) -> dict:
    """{item name: {"piece": true id, "t": [...], "top": [[(id, score), (id, score)], ...]}}."""
    from tqdm import tqdm

    from follower.engine import Engine, EngineConfig

    from .decoders import read_audio

    # record the re-ranking, never lock on it (nor on the calibrated rule, which reads it)
    config = EngineConfig(rerank_min_zs=float("inf"), calibration=None)
    out = {}
    for item in tqdm(items, desc="items", unit="item", disable=not progress):
        signal, rate = read_audio(item["audio"])
        engine = Engine(bundle, index, input_rate_hz=rate, config=config)
        engine.warm_up()
        times, tops = [], []
        for start in range(0, len(signal), 1024):
            for u in engine.push(signal[start:start + 1024], last=start + 1024 >= len(signal)):
                times.append(u.t)
                tops.append(u.reranked[:2])
        out[item["name"]] = {"piece": item["piece"], "t": times, "top": tops}
    return out


def first_lock(record: dict, min_zs: float, margin_zs: float, hold_s: float):
    """(time, right piece?) of the rule's first lock on one item, or None."""
    since = None
    for t, top in zip(record["t"], record["top"]):
        lead = top[0] if top else None
        second = top[1][1] if len(top) > 1 else 0.0
        if lead is not None and lead[1] >= min_zs and lead[1] - second >= margin_zs:
            if since is None or since[1] != lead[0]:
                since = (t, lead[0])
            if t - since[0] >= hold_s - 1e-9:
                return t, lead[0] == record["piece"]
        else:
            since = None
    return None


def evaluate_rule(records: dict, **rule) -> dict:
    locks = [first_lock(r, **rule) for r in records.values()]
    n = len(locks)
    times = sorted(t for lock in locks if lock and lock[1] for t in [lock[0]])
    times += [float("inf")] * (n - len(times))
    return {"items": n, "wrong": sum(1 for lock in locks if lock and not lock[1]),
            "median_s": times[n // 2] if n else float("nan"),
            "p90_s": times[min(n - 1, int(np.ceil(0.9 * n)) - 1)] if n else float("nan")}


def choose(records: dict) -> tuple[dict, list]:
    rows = []
    for values in itertools.product(*GRID.values()):
        rule = dict(zip(GRID, values))
        rows.append({**rule, **evaluate_rule(records, **rule)})
    safe = [r for r in rows if r["wrong"] == 0]
    best = min(safe, key=lambda r: (r["median_s"] + r["p90_s"], r["p90_s"])) if safe else None
    return best, rows


def main(argv=None) -> int:
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.rerank_tuning", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="exported/default", help="bundle folder")
    p.add_argument("--index", required=True, help="chorale index built with that bundle")
    p.add_argument("--material", default=None, help="tuning material folder (default data/bench/tuning)")
    p.add_argument("-o", "--out", required=True, help="JSON with every rule's numbers and the chosen one")
    p.add_argument("--debug", action="store_true")
    return run_main(_run, p.parse_args(argv))


def _run(args) -> int:
    from benchmarks import paths
    from follower.bundle import load_bundle
    from follower.engine import EngineConfig
    from follower.errors import ConfigError
    from follower.index import load_index

    material = Path(args.material) if args.material else paths.work_dir() / "tuning"
    manifest = material / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: no tuning material; render it with `python -m benchmarks.material --set tuning`")
    bundle = load_bundle(args.bundle, threads=1)
    index = load_index(args.index)
    index.check_bundle(bundle.config, index_path=args.index, bundle_path=args.bundle)
    records = record_rankings(bundle, index, json.loads(manifest.read_text()))
    best, rows = choose(records)
    shipped = EngineConfig()
    now = {"min_zs": shipped.rerank_min_zs, "margin_zs": shipped.rerank_margin_zs, "hold_s": shipped.rerank_lock_s}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"material": str(material), "chosen": best, "shipped": now,
                                          "rules": rows}, indent=1, default=float) + "\n")
    for r in sorted((r for r in rows if r["wrong"] == 0), key=lambda r: r["median_s"] + r["p90_s"])[:8]:
        print(f"min {r['min_zs']:4.1f} z-s  margin {r['margin_zs']:3.1f} z-s  hold {r['hold_s']:4.2f} s: "
              f"median {r['median_s']:.1f} s, p90 {r['p90_s']:.1f} s, wrong {r['wrong']}/{r['items']}")
    print(f"chosen: {best}\nshipped: {now}" + ("" if best and all(best[k] == now[k] for k in now)
                                              else "  (differs from the chosen rule)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
