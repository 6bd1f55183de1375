"""Where does the time to name the piece go? (a study on recorded lock-free traces)

Reads the traces of ``python -m studies.lock_calibration --record-only`` (every update's
lock-policy inputs, the engine never locking) and reports per item: the first update with
a re-ranking (the first window that voted: a window votes once 30 % of its frames sound,
so from ~0.65 s), when the right piece is first among the verified paths and first among
the re-ranking's candidates, from when on it leads the re-ranking for good, when the
calibrated P of a right leader first reaches 0.9 and 0.97 (and whether a wrong leader
did first), and the first lock of the policy as configured, with its rule
(docs/improvements.md (t)).

    python -m studies.early_id --traces T1.json[,T2.json] [--engine '{"rerank_lock_s": 0.25}']
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np


def stable_from(times, ok) -> float:
    bad = [i for i, o in enumerate(ok) if not o]
    first = bad[-1] + 1 if bad else 0
    return float(times[first]) if first < len(times) else float("inf")


def item_row(trace, config) -> dict:
    from follower.confidence import features
    from follower.engine import for_bundle

    from .lock_calibration import first_lock

    config = for_bundle(config, trace.get("partial_encoder", False))  # as the recording engine ran

    steps, piece = trace["steps"], trace["piece"]
    t = [st[0] for st in steps]
    first = next((t_s for t_s, s, _ in steps if s.reranked), float("inf"))
    lead = stable_from(t, [bool(s.reranked) and s.same(s.reranked[0][0], piece) for _, s, _ in steps])
    verified = next((t_s for t_s, s, _ in steps if any(s.same(p, piece) for p in s.ranked)), float("inf"))
    candidate = next((t_s for t_s, s, _ in steps if any(s.same(r[0], piece) for r in s.reranked)), float("inf"))
    cross = {0.9: float("inf"), 0.97: float("inf")}
    wrong_cross = {0.9: False, 0.97: False}
    for t_s, s, ev in steps if config.calibration is not None else ():  # (no calibration: no P)
        p, x = features(s, ev)
        if p is None:
            continue
        prob = config.calibration.probability(x)
        for thr in cross:
            if prob >= thr:
                if s.same(p, piece):
                    cross[thr] = min(cross[thr], t_s)
                elif not np.isfinite(cross[thr]):
                    wrong_cross[thr] = True
    lock_t, ok, rule = first_lock(trace, config)
    return {"first_window_s": first, "verified_s": verified, "candidate_s": candidate,
            "rerank_lead_s": lead,
            "p90_s": cross[0.9], "p97_s": cross[0.97], "wrong_p90": wrong_cross[0.9], "wrong_p97": wrong_cross[0.97],
            "lock_s": lock_t, "lock_right": ok, "rule": rule}


def main(argv=None) -> int:
    from follower.engine import EngineConfig

    from .lock_calibration import load_traces

    p = argparse.ArgumentParser(prog="python -m studies.early_id", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--traces", required=True, help="comma-separated trace files")
    p.add_argument("--engine", default=None, help="EngineConfig fields to replace, as JSON")
    p.add_argument("-o", "--out", default=None)
    args = p.parse_args(argv)
    traces = {}
    for path in args.traces.split(","):
        traces.update(load_traces(__import__("pathlib").Path(path)))
    config = EngineConfig()
    if args.engine:
        config = dataclasses.replace(config, **json.loads(args.engine))
    rows = {n: item_row(traces[n], config) for n in sorted(traces)}
    keys = ["first_window_s", "verified_s", "candidate_s", "rerank_lead_s", "p90_s", "p97_s", "lock_s"]
    print(f"{'item':40s} " + " ".join(f"{k[:-2]:>13s}" for k in keys) + "  rule")
    for n, r in rows.items():
        flag = "" if r["lock_right"] else " WRONG"
        flag += " (wrong P>=0.9 first)" if r["wrong_p90"] else ""
        print(f"{n:40s} " + " ".join(f"{r[k]:13.2f}" for k in keys) + f"  {r['rule']}{flag}")
    for k in keys:
        v = np.array([r[k] for r in rows.values()])
        print(f"{k:16s} median {np.median(v):.2f} p90 {np.quantile(v, 0.9, method='higher'):.2f}")
    gap = np.array([r["lock_s"] - r["rerank_lead_s"] for r in rows.values()])
    print(f"lock - rerank lead: median {np.median(gap):.2f} p90 {np.quantile(gap, 0.9, method='higher'):.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
