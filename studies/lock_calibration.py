"""Fit the calibrated lock confidence (follower.confidence) on validation-split renders.

1. **record**: every item is replayed through the engine with its lock policy held off
   (the engine stays ``searching`` to the end), and the policy's inputs of every update
   (:class:`follower.policy.Scores` and the accumulated votes) are kept. While searching
   those inputs do not depend on the policy, so replaying them into a
   :class:`follower.policy.LockPolicy` later gives exactly the time and piece of the
   engine's first lock under any lock configuration.
2. **fit**: the features of :func:`follower.confidence.features` of every update are
   samples, labelled by whether the piece they name is the item's piece; a logistic
   model is fitted (numpy Newton steps, a small L2 penalty). Held-out quality:
   leave-one-*piece*-out (an item's own piece never in the fit that scores it), as a
   reliability table (predicted vs observed) and as the first lock each item would get
   under each probability threshold and hold, played through the real LockPolicy with
   every other rule as shipped.

    python -m studies.lock_calibration --material TUNING[,TUNING2...] --index INDEX \\
        [--piano-index PIANO_INDEX] --traces TRACES.json -o OUT.json

Material of music outside the corpus (``benchmarks.material --set tuning --outside N``:
folk tunes the chorale index does not hold) is replayed against the chorale index; every
update of it that names a piece is a sample of a wrong piece, and any lock on it is a
wrong lock (reported apart, as ``outside_locked``).

Never give it the benchmark's test material: what it fits is shipped.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread, as the follower runs)

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np


OUTSIDE = "outside"  # the corpus of material that is in no index


def _study_tunes() -> set:
    """The outside tunes of ``studies.outside_follow``'s default programme, as piece ids."""
    from . import outside_follow

    return {f"nottingham/{t.stem}" for t in outside_follow.default_outside_tunes()}


class _Recorder:
    """Stands in for the engine's LockPolicy: keeps its inputs, never acts."""

    def __init__(self, policy):
        self._policy = policy
        self.steps = []

    def __getattr__(self, name):
        return getattr(self._policy, name)

    def step(self, scores, evidence, t_s):
        from follower.policy import NO_ACTION

        self.steps.append((float(t_s), scores, tuple(evidence)))
        return NO_ACTION


def record_item(bundle, index, audio, config=None, max_s: float | None = None) -> list:
    """[(t_s, Scores, evidence)] of every update of one item (of its first ``max_s`` seconds), the engine
    never locking."""
    from follower.engine import Engine

    from .decoders import read_audio

    signal, rate = read_audio(audio)
    if max_s is not None:
        signal = signal[:int(max_s * rate)]
    engine = Engine(bundle, index, input_rate_hz=rate, config=config)
    rec = _Recorder(engine._policy)
    engine._policy = rec
    for start in range(0, len(signal), 1024):
        engine.push(signal[start:start + 1024], last=start + 1024 >= len(signal))
    return rec.steps


def record(bundle, indexes: dict, items, traces: Path, config=None, max_s: float | None = None) -> dict:
    """{item name: {"piece": index piece number, "steps": [...]}}, cached in ``traces``;
    ``indexes``: corpus name -> the index its items are replayed against."""
    done = load_traces(traces) if traces.exists() else {}
    for item in items:
        if item["name"] in done:
            continue
        index = indexes["chorales" if item["corpus"] == OUTSIDE else item["corpus"]]
        ids = {str(p): i for i, p in enumerate(index.piece_ids)}
        steps = record_item(bundle, index, item["audio"], config, max_s)
        # music outside the corpus plays no piece of the index: None, which no piece is the same as
        piece = None if item["corpus"] == OUTSIDE else ids[item["piece"]]
        done[item["name"]] = {"piece": piece, "piece_id": item["piece"], "steps": steps,
                              "partial_encoder": bundle.audio_partial is not None}
        traces.parent.mkdir(parents=True, exist_ok=True)
        save_traces(done, traces)
        print(f"recorded {item['name']}: {len(steps)} updates", flush=True)
    return done


# Traces are JSON, not pickles: nothing the project reads may run code on load.
_MAPS = ("support", "where", "same_as")  # Scores fields keyed by piece number (JSON keys are strings)


def save_traces(traces: dict, path: Path) -> None:
    def step(t_s, scores, evidence):
        d = dataclasses.asdict(scores)
        for key in _MAPS:
            d[key] = [[int(k), v] for k, v in d[key].items()]
        return [t_s, d, list(evidence)]

    out = {name: {**tr, "steps": [step(*st) for st in tr["steps"]]} for name, tr in traces.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(out, default=lambda o: o.tolist()))  # numpy scalars and arrays
    tmp.replace(path)  # a stop mid-write keeps the previous cache


def load_traces(path: Path) -> dict:
    from follower.policy import Scores

    _FIELDS = {f.name for f in dataclasses.fields(Scores)}

    def step(t_s, d, evidence):
        for key in _MAPS:
            d[key] = {int(k): tuple(v) if isinstance(v, list) else v for k, v in d[key]}
        d["ranked"] = tuple(d["ranked"])
        d = {k: v for k, v in d.items() if k in _FIELDS}  # (traces may hold fields a study recorded)
        d["reranked"] = tuple(tuple(r) for r in d["reranked"])
        return t_s, Scores(**d), tuple(evidence)

    return {name: {**tr, "steps": [step(*st) for st in tr["steps"]]} for name, tr in json.loads(path.read_text()).items()}


# -- the samples -------------------------------------------------------------------------

# the rule decides in the first seconds: later updates (the right piece far ahead) would
# dominate the fit and teach it nothing about the moment of decision
MAX_T_S = 12.0


def samples(trace, max_t_s: float = MAX_T_S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, features, labels) of one item's updates up to ``max_t_s`` that name a piece."""
    from follower.confidence import FEATURES, features

    t, x, y = [], [], []
    for t_s, scores, evidence in trace["steps"]:
        if t_s > max_t_s:
            break
        piece, f = features(scores, evidence)
        if piece is None:
            continue
        t.append(t_s)
        x.append(f)
        y.append(scores.same(piece, trace["piece"]))
    return np.array(t), np.array(x, np.float64).reshape(-1, len(FEATURES)), np.array(y, bool)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-2, weight=None, iters: int = 50):
    """(bias, weights) of a logistic regression by Newton steps; features standardised inside."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    w = np.ones(len(x)) if weight is None else weight
    b = np.zeros(z.shape[1])
    reg = l2 * np.eye(z.shape[1])
    reg[0, 0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ b, -30, 30)))
        g = z.T @ (w * (p - y)) + reg @ b * w.sum()
        h = (z * (w * p * (1 - p))[:, None]).T @ z + reg * w.sum()
        step = np.linalg.solve(h, g)
        b -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = b[1:] / sd
    bias = b[0] - float(weights @ mu)
    return float(bias), tuple(float(v) for v in weights)


def _item_weights(groups: np.ndarray, outside: np.ndarray | None = None, outside_weight: float = 1.0) -> np.ndarray:
    """Every piece weighs the same in the fit, however many items and updates it has; a piece
    outside the corpus (``outside``: a mask of the samples) weighs ``outside_weight`` of that."""
    _, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    return w if outside is None else np.where(outside, w * outside_weight, w)


def reliability(p: np.ndarray, y: np.ndarray, edges=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 1.0001)) -> list:
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (p >= lo) & (p < hi)
        if m.any():
            rows.append({"bin": f"[{lo:.2f}, {min(hi, 1.0):.2f})", "updates": int(m.sum()),
                         "predicted": float(p[m].mean()), "observed": float(y[m].mean())})
    return rows


# -- the lock each item would get ----------------------------------------------------------

def first_lock(trace, config) -> tuple[float, bool, str]:
    """(time, right piece?, rule kind) of the first lock the policy takes on this trace (inf if none)."""
    from follower.engine import for_bundle
    from follower.policy import LOCK, LockPolicy

    # as the engine that recorded the trace ran it (traces from before 2026-12-03: no such encoder)
    policy = LockPolicy(for_bundle(config, trace.get("partial_encoder", False)))
    for t_s, scores, evidence in trace["steps"]:
        a = policy.step(scores, evidence, t_s)
        if a.kind == LOCK:
            return t_s, bool(scores.same(a.piece, trace["piece"])), policy.last_rule
    return float("inf"), False, ""


def summary_of(locks, outside=()) -> dict:
    """Lock times of the items of corpus pieces (``locks``) and, apart, how many of the items of
    music outside the corpus (``outside``, their first locks) were locked at all."""
    summary = _summary_inside(locks)
    summary["outside_items"] = len(outside)
    summary["outside_locked"] = int(sum(np.isfinite(t) for t, _, _ in outside))
    summary["rules"] = sorted(set(summary["rules"]) | {r for _, _, r in outside if r})
    return summary


def _summary(traces: dict, names, locks) -> dict:
    """:func:`summary_of` with the items split by whether they play a piece of the index."""
    inside = [lk for n, lk in zip(names, locks) if traces[n]["piece"] is not None]
    return summary_of(inside, [lk for n, lk in zip(names, locks) if traces[n]["piece"] is None])


def _outside_text(row: dict) -> str:
    return f" outside locked {row['outside_locked']}/{row['outside_items']}" if row["outside_items"] else ""


def _summary_inside(locks) -> dict:
    if not locks:
        return {"items": 0, "median_s": float("nan"), "p90_s": float("nan"), "wrong": 0, "never": 0, "rules": []}
    times = np.array([t for t, _, _ in locks])
    right = [ok for t, ok, _ in locks if np.isfinite(t)]
    ok_times = np.array([t if ok else np.inf for t, ok, _ in locks])
    return {"items": len(locks), "median_s": float(np.median(ok_times)),
            "p90_s": float(np.quantile(ok_times, 0.9, method="higher")),
            "wrong": int(sum(not ok for ok in right)), "never": int((~np.isfinite(times)).sum()),
            "rules": sorted({r for _, _, r in locks if r})}


def main(argv=None) -> int:
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.lock_calibration", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--material", required=True,
                   help="comma-separated validation material folders (benchmarks.material --set tuning)")
    p.add_argument("--index", required=True, help="index holding the material's chorales")
    p.add_argument("--piano-index", default=None, help="index holding its piano pieces (if it has any)")
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--traces", required=True, help="JSON cache of the recorded updates (appended to)")
    p.add_argument("--corpus", default=None, choices=("chorales", "piano"), help="only the items of this corpus")
    p.add_argument("--record-only", action="store_true", help="record the traces and stop")
    p.add_argument("--record-s", type=float, default=None, metavar="S",
                   help="record only the first S seconds of each render (the fit reads the first %g s; a "
                        "first lock later than S counts as none; default: all of it)" % MAX_T_S)
    p.add_argument("--evaluate", action="store_true",
                   help="no fit: score the shipped calibration and lock rules on the material (held-out renders)")
    p.add_argument("--rerank-min-p", default="", metavar="P[,P...]",
                   help="with --evaluate: also the first locks with the re-rank rule's leader needing each P "
                        "(EngineConfig.rerank_min_p), per tempo band")
    p.add_argument("-o", "--out", default=None, help="JSON: coefficients, reliability, lock times")
    p.add_argument("--template-weight", type=float, default=None,
                   help="replay with this EngineConfig.rerank_template_weight (note-template evidence in the "
                        "re-ranking, docs/improvements.md (n); default: the engine's); 0 replays and judges the "
                        "engine of the embeddings alone (follower.engine.templates_off); give each its own --traces")
    p.add_argument("--outside-weight", type=float, default=1.0,
                   help="weight of a piece outside the corpus in the fit, relative to a corpus piece (default 1); "
                        "lower trades fewer early locks on music outside the corpus for later locks on the "
                        "corpus (docs/improvements.md (hh))")
    p.add_argument("--engine", default=None,
                   help="EngineConfig fields to replace for the replay, as JSON (e.g. '{\"rerank_offered\": 8}')")
    p.add_argument("--debug", action="store_true")
    return run_main(_run, p.parse_args(argv))


def _items(material: str) -> list:
    from follower.errors import ConfigError

    items = []
    for folder in [Path(m) for m in material.split(",") if m.strip()]:
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            raise ConfigError(f"{manifest}: no material; render it with `python -m benchmarks.material --set tuning`")
        found = json.loads(manifest.read_text())
        if any(not it["name"].startswith("tune") for it in found):
            raise ConfigError(f"{manifest}: not validation material (names must start with 'tune'); "
                              "the calibration is never fitted on the benchmark's items")
        items += found
    return items


def _run(args) -> int:
    from follower.bundle import load_bundle
    from follower.index import load_index

    from follower.errors import ConfigError

    if not 0.0 <= args.outside_weight:  # before any replay: a bad weight must not cost the recording
        raise ConfigError(f"--outside-weight {args.outside_weight}: give a weight of 0 or more")
    try:
        args.rerank_min_p = tuple(float(v) for v in args.rerank_min_p.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--rerank-min-p {args.rerank_min_p}: give probabilities such as 0.9,0.93") from None
    items = [it for it in _items(args.material) if args.corpus in (None, it["corpus"])]
    bundle = load_bundle(args.bundle, threads=1)
    indexes = {"chorales": load_index(args.index)}
    if args.piano_index:
        indexes["piano"] = load_index(args.piano_index)
    for item in items:
        index = indexes.get(item["corpus"])
        if item["corpus"] == OUTSIDE:
            if "chorales" in indexes and item["piece"] in set(map(str, indexes["chorales"].piece_ids)):
                raise ConfigError(f"{item['name']}: {item['piece']} is in the chorale index, not outside it")
            if item["piece"] in _study_tunes():
                raise ConfigError(f"{item['name']}: {item['piece']} is one of studies.outside_follow's tunes; "
                                  "the calibration must not learn the tunes that study measures")
            continue
        if index is None or item["piece"] not in set(map(str, index.piece_ids)):
            raise ConfigError(f"{item['name']}: no index given holds {item['piece']} (--index, --piano-index)")
    config = shipped_config(args.template_weight)
    if args.engine:
        config = dataclasses.replace(config, **json.loads(args.engine))
    traces = record(bundle, indexes, items, Path(args.traces), config, args.record_s)
    if args.record_only:
        return 0
    chosen = {it["name"]: traces[it["name"]] for it in items}
    if args.evaluate:
        result = evaluate(chosen, config, rerank_min_p=args.rerank_min_p)
    else:
        result = study(chosen, config, outside_weight=args.outside_weight)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


def shipped_config(template_weight: float | None = None):
    """The engine's config with ``template_weight`` (None: as shipped); 0 is the engine of the
    embeddings alone with the lock rules fitted for it (follower.engine.templates_off)."""
    from follower.engine import EngineConfig, templates_off

    if template_weight is None:
        return EngineConfig()
    if template_weight <= 0:
        return templates_off()
    return dataclasses.replace(EngineConfig(), rerank_template_weight=template_weight)


def tempo_band(name: str) -> str:
    """The band of written tempo an item was rendered at, from its name (``benchmarks.material --set
    tuning --tempo LO,HI`` names its items ``tune_tLO-HI_...``); "usual" for the other renders."""
    m = re.match(r"tune_t([0-9.]+-[0-9.]+)_", name)
    return m.group(1) if m else "usual"


def by_tempo(traces: dict, names, locks) -> dict:
    """:func:`_summary` of the first locks ``locks`` of ``names`` in each tempo band (:func:`tempo_band`)."""
    bands = sorted({tempo_band(n) for n in names}, key=lambda b: (b != "usual", b))
    return {b: _summary(traces, [n for n in names if tempo_band(n) == b],
                        [lk for n, lk in zip(names, locks) if tempo_band(n) == b]) for b in bands}


def _band_text(rows: dict) -> str:
    return " | ".join(f"{b} ({r['items']}): median {r['median_s']:.2f} p90 {r['p90_s']:.2f} wrong {r['wrong']}"
                      for b, r in rows.items())


def evaluate(traces: dict, shipped=None, rerank_min_p=()) -> dict:
    """The shipped calibration (``shipped``'s, default EngineConfig's) on renders it was not fitted
    on: reliability, and the first lock of each item with and without the calibrated rule; then with
    the re-rank rule's leader needing each P of ``rerank_min_p``. Locks are also summed up per tempo
    band, where the material holds renders far from the written tempo."""
    shipped = shipped or shipped_config()
    names = sorted(traces)
    data = {n: samples(traces[n]) for n in names}
    p = np.concatenate([[shipped.calibration.probability(f) for f in data[n][1]] for n in names])
    y = np.concatenate([data[n][2] for n in names])
    table = reliability(p, y)
    print("reliability (shipped calibration):")
    for row in table:
        print(f"  {row['bin']:>14} {row['updates']:6d} predicted {row['predicted']:.3f} observed {row['observed']:.3f}")
    out = {"reliability": table}
    for label, config in (("without", dataclasses.replace(shipped, calibration=None)), ("with", shipped)):
        locks = [first_lock(traces[n], config) for n in names]
        out[label] = {**_summary(traces, names, locks),
                      "items": {n: [round(t, 2), ok, r] for n, (t, ok, r) in zip(names, locks)}}
        print(f"{label} the calibrated rule: median {out[label]['median_s']:.2f} p90 {out[label]['p90_s']:.2f} "
              f"wrong {out[label]['wrong']} never {out[label]['never']}{_outside_text(out[label])} "
              f"{out[label]['rules']}")
        for n, (t, ok, r) in zip(names, locks):
            if traces[n]["piece"] is None:  # music outside the corpus: any lock is wrong, none is right
                if np.isfinite(t):
                    print(f"   {n}: outside the corpus, locked at {t:.2f} s ({r})")
            elif not ok:
                print(f"   {n}: {'wrong piece' if np.isfinite(t) else 'no lock'} at {t:.2f} s ({r})")
        out[label]["by_tempo"] = by_tempo(traces, names, locks)
        print(f"   by tempo: {_band_text(out[label]['by_tempo'])}")
    out["rerank_min_p"] = []
    for p_min in rerank_min_p:
        locks = [first_lock(traces[n], dataclasses.replace(shipped, rerank_min_p=p_min)) for n in names]
        row = {"rerank_min_p": p_min, **_summary(traces, names, locks), "by_tempo": by_tempo(traces, names, locks),
               "items": {n: [round(t, 2), ok, r] for n, (t, ok, r) in zip(names, locks)}}
        out["rerank_min_p"].append(row)
        print(f"re-rank rule needs P >= {p_min}: {_band_text(row['by_tempo'])}", flush=True)
    return out


def _group(trace) -> str:
    """The piece an item plays, across corpora (piece numbers are per index): held out together."""
    return str(trace.get("piece_id", trace["piece"]))


def study(traces: dict, shipped=None, *, thresholds=(0.9, 0.95, 0.97, 0.98, 0.99, 0.995),
          holds=(0.0, 0.25, 0.5, 1.0), rerank_min_p=(0.0, 0.8, 0.85, 0.9, 0.95), outside_weight: float = 1.0) -> dict:
    """Fit on all items; held out by piece: reliability, and the first locks under each calibrated
    threshold and hold, and under each P the re-rank rule's leader needs (``rerank_min_p``).
    Pieces outside the corpus weigh ``outside_weight`` of a corpus piece in the fit."""
    from follower.confidence import Calibration

    names = sorted(traces)
    data = {n: samples(traces[n]) for n in names}
    x = np.concatenate([data[n][1] for n in names])
    y = np.concatenate([data[n][2] for n in names])
    groups = np.concatenate([[_group(traces[n])] * len(data[n][2]) for n in names])
    outside = np.concatenate([[traces[n]["piece"] is None] * len(data[n][2]) for n in names]).astype(bool)

    def weight(m):
        return _item_weights(groups[m], outside[m], outside_weight)

    everything = np.ones(len(y), bool)
    bias, weights = fit_logistic(x, y, weight=weight(everything))
    print("fit on all:", round(bias, 4), [round(w, 4) for w in weights])

    # held out: each piece scored by a model fitted without it
    held = {}
    for piece in np.unique(groups):
        m = groups != piece
        held[piece] = Calibration(*fit_logistic(x[m], y[m], weight=weight(m)))
    p_held = np.concatenate([[held[_group(traces[n])].probability(f) for f in data[n][1]] for n in names])
    table = reliability(p_held, y)
    print("reliability (held-out pieces):")
    for row in table:
        print(f"  {row['bin']:>14} {row['updates']:6d} predicted {row['predicted']:.3f} observed {row['observed']:.3f}")

    shipped = shipped or shipped_config()
    baseline = _summary(traces, names, [first_lock(traces[n], dataclasses.replace(
        shipped, calibration=None, rerank_min_p=0.0)) for n in names])
    print("the other rules alone:", {k: v for k, v in baseline.items() if k != "items"})
    grid = []
    for thr in thresholds:
        for hold in holds:
            locks = [first_lock(traces[n], dataclasses.replace(
                shipped, calibration=held[_group(traces[n])], calibrated_p=thr, calibrated_s=hold)) for n in names]
            row = {"p": thr, "hold_s": hold, **_summary(traces, names, locks),
                   "items": {n: [round(t, 2), ok, r] for n, (t, ok, r) in zip(names, locks)}}
            grid.append(row)
            print(f"p >= {thr} for {hold} s: median {row['median_s']:.2f} p90 {row['p90_s']:.2f} "
                  f"wrong {row['wrong']} never {row['never']}{_outside_text(row)} {row['rules']}", flush=True)
    gate = []
    for p_min in rerank_min_p:  # the re-rank rule backed by the held-out P, the calibrated rule as shipped
        locks = [first_lock(traces[n], dataclasses.replace(
            shipped, calibration=held[_group(traces[n])], rerank_min_p=p_min)) for n in names]
        row = {"rerank_min_p": p_min, **_summary(traces, names, locks),
               "items": {n: [round(t, 2), ok, r] for n, (t, ok, r) in zip(names, locks)}}
        gate.append(row)
        print(f"re-rank rule needs P >= {p_min}: median {row['median_s']:.2f} p90 {row['p90_s']:.2f} "
              f"wrong {row['wrong']} never {row['never']}{_outside_text(row)} {row['rules']}", flush=True)
    return {"features": list(__import__("follower.confidence", fromlist=["FEATURES"]).FEATURES),
            "bias": bias, "weights": weights, "outside_weight": outside_weight, "items": names, "samples": int(len(y)),
            "reliability_held_out": table, "without": baseline, "grid": grid, "rerank_gate": gate}


if __name__ == "__main__":
    sys.exit(main())
