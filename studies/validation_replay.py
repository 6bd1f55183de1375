"""The engine with other settings, replayed on validation renders and scored like the benchmark.

A threshold of the engine is chosen here, on renders of validation-split pieces
(``python -m benchmarks.material --set tuning [--seed S] [--piano N] [--from-start]``),
never on the benchmark's test items. Each named configuration (``EngineConfig``
fields to replace, as JSON, ``"tracker.kappa"`` for a field of a nested config; ``{"open": true}`` applies ``follower.engine.open_programme``
on top; ``{"two_speeds": true}`` runs the follower's default pair of engines, follower.two_speeds, instead
of the one engine, ``"pair.settle_s"`` a field of its TwoSpeedConfig) replays every item of the given tuning folders through the real engine,
and the benchmark's metrics (:mod:`benchmarks.metrics`) score the records: time to a
stable right piece, right piece at the end, updates within 0.25 / 0.5 s once locked,
and every item followed on a wrong piece for more than 1 s. Items of music outside
the indexes (``--outside``) are left out; ``studies.outside_follow`` measures those.

    python -m studies.validation_replay --material T1,T2 --index CHORALES [--piano-index PIANO] \\
        --configs '{"shipped": {}, "zs6": {"rerank_min_zs": 6}}' -o OUT.json [--part K/N]
    python -m studies.validation_replay --report OUT0.json,OUT1.json

``--part K/N`` replays every N-th item from the K-th, so N processes share the cores;
``--report`` merges their outputs and prints the table, with the paired change of the
time to a stable identification of every configuration against the first, and of each item's
updates within 0.25 s (items closer, further, the same; the largest changes).
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread, as the follower runs)

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

WRONG_LIMIT_S = 1.0
HELD_SLOWER = 0.6  # an update falls in a hold where the truth moves at under this share of its usual speed


def engine_config(overrides: dict):
    from follower.engine import EngineConfig, open_programme

    overrides = dict(overrides)
    open_ = overrides.pop("open", False)
    overrides.pop("two_speeds", None)  # (which engine runs, not a setting of it: see replay)
    for key in [k for k in overrides if k.startswith("pair.")]:  # (the pair's settings: see replay)
        overrides.pop(key)
    nested = {k: overrides.pop(k) for k in [k for k in overrides if "." in k]}
    config = dataclasses.replace(EngineConfig(), **overrides)
    for key, value in nested.items():  # "tracker.jump_local_s": a field of a nested config
        part, name = key.split(".", 1)
        config = dataclasses.replace(config, **{part: dataclasses.replace(getattr(config, part), **{name: value})})
    return open_programme(config) if open_ else config


def item_scores(records: list[dict], item: dict) -> dict:
    from benchmarks.copies import count_misses
    from benchmarks.metrics import score_item
    from benchmarks.warp import load_truth
    from follower.midi import load_midi

    from .wrong_follow import longest_wrong_s

    truth = load_truth(Path(item["truth"]))
    s = score_item(records, item["piece"], truth)
    e = s.position_errors_s
    held = held_updates(s, truth)
    # the misses at another statement of the notes the truth plays (benchmarks.copies): music written out
    # twice, which no audio tells apart until it differs
    at_copy = count_misses(records, item["piece"], truth, load_midi(item["midi"]).pitched).at_copy
    return {"kind": item["kind"], "stable_s": s.time_to_stable_s, "end": s.correct_at["end"],
            "wrong_s": longest_wrong_s(records, item["piece"]), "updates": int(e.size),
            "within_0.25": int((e <= 0.25).sum()), "within_0.5": int((e <= 0.5).sum()), "at_copy": int(at_copy),
            "held": int(held.sum()), "held_within_0.25": int((e[held] <= 0.25).sum()),
            "held_within_0.5": int((e[held] <= 0.5).sum()), "recovery_s": [float(r) for r in s.recovery_s]}


def held_updates(scores, truth, slower: float = HELD_SLOWER) -> np.ndarray:
    """Of the updates ``scores`` (:class:`benchmarks.metrics.ItemScores`) scored for position, those where
    the players hold: the truth moves at under ``slower`` of its median speed over the item's records
    (a fermata, a breath), measured over 0.2 s."""
    def speed(t_s):
        return (truth.audio_to_midi(t_s + 0.1) - truth.audio_to_midi(t_s - 0.1)) / 0.2

    typical = speed(scores.curve_t_s)
    typical = np.nanmedian(typical) if np.isfinite(typical).any() else np.nan
    return speed(scores.position_t_s) < slower * typical


def replay(args) -> dict:
    from follower.bundle import load_bundle
    from follower.errors import ConfigError
    from follower.index import load_index

    from .decoders import read_audio, run_engine

    configs = json.loads(args.configs)
    items = []
    for folder in args.material.split(","):
        manifest = Path(folder) / "manifest.json"
        if not manifest.is_file():
            raise ConfigError(f"{manifest}: no material; render it with `python -m benchmarks.material --set tuning`")
        items += [it for it in json.loads(manifest.read_text()) if it.get("corpus") in ("chorales", "piano")]
    k, n = (int(x) for x in args.part.split("/"))
    items = items[k::n]
    bundle = load_bundle(args.bundle, threads=1)
    indexes = {"chorales": load_index(args.index)}
    if args.piano_index:
        indexes["piano"] = load_index(args.piano_index)
    items = [it for it in items if it["corpus"] in indexes and args.corpus in (None, it["corpus"])]
    out = {}
    for name, overrides in configs.items():
        config = engine_config(overrides)
        pair = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("pair.")}
        for it in items:
            signal, rate = read_audio(it["audio"])
            records = run_engine(bundle, indexes[it["corpus"]], signal, rate, config=config,
                                 two_speeds=bool(overrides.get("two_speeds", False)), pair=pair)
            out.setdefault(name, {})[it["name"]] = item_scores(records, it)
            print(f"{name} {it['name']}: {out[name][it['name']]}", flush=True)
    return out


def merge(paths) -> dict:
    out = {}
    for p in paths:
        for name, rows in json.loads(Path(p).read_text()).items():
            out.setdefault(name, {}).update(rows)
    return out


def _q(values) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):.2f} / {np.quantile(v, 0.9, method='higher'):.2f} s"


def _held_cell(rows) -> str:
    rows = [r for r in rows if "held" in r]  # (outputs written before holds were counted have none)
    n = sum(r["held"] for r in rows)
    if not n:
        return "-"
    return (f"{n}, {100 * sum(r['held_within_0.25'] for r in rows) / n:.1f} / "
            f"{100 * sum(r['held_within_0.5'] for r in rows) / n:.1f} %")


def _recovery_cell(rows) -> str:
    """Seconds from each jump until the reported position is back within 0.5 s (benchmarks.metrics)."""
    r = [x for row in rows for x in row.get("recovery_s", [])]
    return f"{_q(r)} ({len(r)})" if r else "-"


def report(results: dict) -> str:
    lines = ["| configuration | items | stable id. median / p90 | right at end | within 0.25 / 0.5 s | "
             "in holds: updates, within 0.25 / 0.5 s | back after a jump, median / p90 (jumps) | "
             "wrong follows > 1 s | within 0.5 s or at another statement |", "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for kind in sorted({r["kind"] for r in rows.values()}) + [None]:
            sel = {n: r for n, r in rows.items() if kind is None or r["kind"] == kind}
            updates = sum(r["updates"] for r in sel.values()) or 1
            wrong = sorted((n, round(r["wrong_s"], 2)) for n, r in sel.items() if r["wrong_s"] > WRONG_LIMIT_S)
            lines.append(f"| {name} | {kind or 'all'} ({len(sel)}) | {_q([r['stable_s'] for r in sel.values()])} | "
                         f"{sum(r['end'] for r in sel.values())} / {len(sel)} | "
                         f"{100 * sum(r['within_0.25'] for r in sel.values()) / updates:.1f} / "
                         f"{100 * sum(r['within_0.5'] for r in sel.values()) / updates:.1f} % | "
                         f"{_held_cell(sel.values())} | {_recovery_cell(sel.values())} | "
                         f"{len(wrong)} {wrong if wrong else ''} | {_copy_cell(sel.values(), updates)} |")
    names = list(results)
    for name in names[1:]:
        base, rows = results[names[0]], results[name]
        d = np.array([rows[n]["stable_s"] - base[n]["stable_s"] for n in rows
                      if n in base and np.isfinite(rows[n]["stable_s"]) and np.isfinite(base[n]["stable_s"])])
        if d.size:
            lines.append(f"\n{name} against {names[0]}, time to a stable identification per item: median "
                         f"{np.median(d):+.2f} s; sooner on {(d < -1e-6).sum()}, later on {(d > 1e-6).sum()} "
                         f"of {d.size}")
        lines.append(_closer_line(name, names[0], base, rows))
    return "\n".join(lines)


def _copy_cell(rows, updates: int) -> str:
    """Within 0.5 s, counting the misses at another statement of the truth's notes as right ('-' for results
    written before they were counted)."""
    rows = list(rows)
    if not rows or any("at_copy" not in r for r in rows):
        return "-"
    return f"{100 * sum(r['within_0.5'] + r['at_copy'] for r in rows) / updates:.1f} %"


def _closer_line(name: str, base_name: str, base: dict, rows: dict, largest: int = 3) -> str:
    """Per item, the change of the updates within 0.25 s against the first configuration: how many items
    are closer, further, the same, and the largest changes (a total can hide a few items that swing)."""
    d = {n: rows[n]["within_0.25"] - base[n]["within_0.25"] for n in rows if n in base}
    if not d:
        return ""
    ranked = sorted(d, key=d.get)
    worst = [f"{n} {d[n]:+d}" for n in ranked[:largest] if d[n] < 0]
    best = [f"{n} {d[n]:+d}" for n in reversed(ranked[-largest:]) if d[n] > 0]
    return (f"{name} against {base_name}, updates within 0.25 s per item: closer on "
            f"{sum(v > 0 for v in d.values())}, further on {sum(v < 0 for v in d.values())}, the same on "
            f"{sum(v == 0 for v in d.values())} of {len(d)}"
            + (f"; most gained: {', '.join(best)}" if best else "") + (f"; most lost: {', '.join(worst)}" if worst else ""))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.validation_replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--material", help="comma-separated tuning folders (benchmarks.material --set tuning)")
    p.add_argument("--index", help="chorale index built with the bundle")
    p.add_argument("--piano-index", default=None, help="piano index, for the piano items (left out without)")
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--configs", default='{"shipped": {}}', help="JSON: name -> EngineConfig fields to replace")
    p.add_argument("--corpus", default=None, choices=("chorales", "piano"), help="only the items of this corpus")
    p.add_argument("--part", default="0/1", help="K/N: every N-th item from the K-th")
    p.add_argument("-o", "--out", default=None, help="JSON of the per-item scores")
    p.add_argument("--report", default=None, help="comma-separated outputs to merge and print; nothing replayed")
    args = p.parse_args(argv)
    if args.report:
        print(report(merge(args.report.split(","))))
        return 0
    if not args.material or not args.index:
        p.error("--material and --index are needed to replay (or --report to print)")
    results = replay(args)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
