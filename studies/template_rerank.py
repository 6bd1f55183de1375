"""Would note-template evidence name the piece earlier than the embedding re-ranking? (a study)

The re-ranker (:mod:`follower.rerank`) aligns the stream of 2.1 s audio embeddings
against each candidate piece's snippet grid. The index also carries the pieces' notes,
from which the fine aligner (:mod:`follower.aligner`) builds harmonic templates through
the front end's own filterbank. This study asks whether a second local alignment, of the
audio frames against each candidate's note templates, fused with the embedding score,
makes the right piece lead the re-ranking earlier, without more wrong leaders.

Template alignment. Audio frames (50 ms) are averaged four at a time (the 0.2 s cell of
the re-ranker; silent frames left out, a cell with fewer than two sounding frames does
not step); the piece's 50 ms templates likewise. A cell's cosine with each template cell
is standardised against its cosines with ``null`` template cells drawn at random from all
pieces (0 = chance, 1 = one standard deviation above), then aligned exactly as the
re-ranker aligns z-scores (:func:`follower.rerank._align`: free start, tempo 0.5-2x,
``(z - offset) * 0.2 s`` per step). The kernel is causal, so the score after each step is
what an online aligner would hold then.

Replay. One engine pass per item records, per update, the re-ranking (up to five
candidates with their z-second scores); cached under ``--cache``. The fused ranking of
an update re-orders those candidates by ``rerank + weight * template``; "leader for
good" is when the right piece leads from then on, "wrong lead" the seconds (after the
first ``--grace`` s) in which another piece leads with a score at least ``--min-lead``.

    python -m studies.template_rerank --material /work/bench/tuning --index INDEX \\
        --weights 0,0.25,0.5,1 --offsets 0.5,1,1.5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from follower.note_evidence import CELL_FRAMES, TemplateScorer, cell_means, template_cells  # noqa: F401 (re-exported for tests)


def running_scores(z: np.ndarray, steps: np.ndarray, offset: float, step_s: float = 0.2) -> np.ndarray:
    """Best local-alignment score (z-s, >= 0) after each audio cell; cells that do not step hold it."""
    from follower.rerank import Candidate, _align

    n = z.shape[1]
    cand = Candidate(0, np.full((2, n), -np.inf), np.zeros((2, n, 2), np.int64), np.zeros(4))
    out, best, k = np.zeros(len(z)), 0.0, 0
    for t in range(len(z)):
        if steps[t]:
            _align(z[t:t + 1], offset, step_s, k, cand.score, cand.origin, cand.best)
            best, k = max(float(cand.best[0]), 0.0), k + 1
        out[t] = best
    return out


def stable_from(times, ok) -> float:
    bad = [i for i, o in enumerate(ok) if not o]
    first = bad[-1] + 1 if bad else 0
    return float(times[first]) if first < len(times) else float("inf")


def fused_leaders(updates, tmpl: dict, fps: float, weight: float):
    """Per update: (t, leader piece id, leader's fused score) over its re-ranked candidates."""
    out = []
    for u in updates:
        if not u["reranked"]:
            out.append((u["t"], None, 0.0))
            continue
        cell = int(round(u["t"] * fps)) // CELL_FRAMES - 1   # the newest complete cell
        fused = [(p, s + (weight * tmpl[p][cell] if cell >= 0 else 0.0)) for p, s in u["reranked"]]
        p, s = max(fused, key=lambda x: x[1])
        out.append((u["t"], p, s))
    return out


def item_summary(leaders, piece: str, *, grace_s: float, min_lead: float) -> dict:
    t = [x[0] for x in leaders]
    dt = t[1] - t[0] if len(t) > 1 else 0.05
    wrong = sum(dt for tt, p, s in leaders if tt >= grace_s and p is not None and p != piece and s >= min_lead)
    return {"leader_s": stable_from(t, [p == piece for _, p, _ in leaders]), "wrong_lead_s": wrong}


def replay_item(bundle, index, item, cache: Path, weight: float = 0.0):
    """The engine's updates (t, state, piece, re-ranking) for one item, cached as JSON; ``weight``:
    the engine's own template evidence (``EngineConfig.rerank_template_weight``)."""
    f = cache / (f"{item['name']}.json" if weight == 0 else f"{item['name']}.w{weight}.json")
    if f.exists():
        return json.loads(f.read_text())
    from dataclasses import replace

    from follower.engine import Engine, EngineConfig, templates_off

    from .decoders import read_audio

    signal, rate = read_audio(item["audio"])
    # weight 0: the engine of the embeddings alone, with the lock rules fitted for it
    config = templates_off() if weight == 0 else replace(EngineConfig(), rerank_template_weight=weight)
    engine = Engine(bundle, index, input_rate_hz=rate, config=config)
    raw = []
    for start in range(0, len(signal), 1024):
        raw += engine.push(signal[start:start + 1024], last=start + 1024 >= len(signal))
    ups = [{"t": u.t, "state": u.state, "piece": u.piece, "reranked": [[p, s] for p, s in u.reranked]} for u in raw]
    f.write_text(json.dumps(ups))
    return ups


def engine_summary(ups, piece: str) -> dict:
    """When the engine's own re-ranking leads for good, when it locks for good, and seconds locked wrong."""
    t = [u["t"] for u in ups]
    dt = t[1] - t[0] if len(t) > 1 else 0.05
    return {"reranked_leader_s": stable_from(t, [bool(u["reranked"]) and u["reranked"][0][0] == piece for u in ups]),
            "locked_s": stable_from(t, [u["state"] == "following" and u["piece"] == piece for u in ups]),
            "wrong_locked_s": sum(dt for u in ups if u["state"] == "following" and u["piece"] != piece)}


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"error: --{name} must be comma-separated numbers, got {text!r}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--material", type=Path, required=True, help="a folder with manifest.json (benchmarks.material)")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--bundle", type=Path, default=Path("exported/default"))
    p.add_argument("--kinds", default="chorale")
    p.add_argument("--cache", type=Path, required=True, help="folder for the replays' updates")
    p.add_argument("--weights", default="0,0.25,0.5,1,2")
    p.add_argument("--offsets", default="0.5,1,1.5")
    p.add_argument("--grace", type=float, default=1.0)
    p.add_argument("--min-lead", type=float, default=2.0, help="a wrong leader counts from this fused score (z-s)")
    p.add_argument("--engine-weight", type=float, default=None,
                   help="instead: replay the engine with EngineConfig.rerank_template_weight set to this, "
                        "and compare with the shipped engine (the calibrated lock reads the changed scores)")
    p.add_argument("-o", "--out", type=Path, default=None, help="per-item results as JSON")
    a = p.parse_args(argv)
    weights, offsets = _floats(a.weights, "weights"), _floats(a.offsets, "offsets")
    for path, what in ((a.material / "manifest.json", "--material"), (a.index, "--index"), (a.bundle, "--bundle")):
        if not path.exists():
            print(f"error: {what}: {path} does not exist", file=sys.stderr)
            return 2

    from follower.bundle import load_bundle
    from follower.features import spectrogram
    from follower.index import load_index

    from .decoders import read_audio

    bundle, index = load_bundle(a.bundle, threads=1), load_index(a.index)
    if not index.has_notes:
        print(f"error: {a.index} carries no notes", file=sys.stderr)
        return 2
    fc = bundle.config.features
    silence = 0.05  # EngineConfig.silence_level
    a.cache.mkdir(parents=True, exist_ok=True)
    scorer = TemplateScorer(index, fc)
    pid = {str(x): i for i, x in enumerate(index.piece_ids)}
    items = [i for i in json.loads((a.material / "manifest.json").read_text()) if i["kind"] in a.kinds.split(",")]
    results = {}
    if a.engine_weight is not None:
        for item in items:
            results[item["name"]] = {w: engine_summary(replay_item(bundle, index, item, a.cache, w), item["piece"])
                                     for w in (0.0, a.engine_weight)}
            print(item["name"], results[item["name"]], flush=True)
        for w in (0.0, a.engine_weight):
            rows = [r[w] for r in results.values()]
            print(f"engine weight {w}:", {k: round(float(np.median([x[k] for x in rows])), 2) for k in rows[0]},
                  "wrong locked s total", round(sum(x["wrong_locked_s"] for x in rows), 2))
        if a.out:
            a.out.write_text(json.dumps(results, indent=1))
        return 0
    for item in items:
        ups = replay_item(bundle, index, item, a.cache)
        signal, rate = read_audio(item["audio"])
        frames = spectrogram(signal, rate, fc)
        cells, steps = cell_means(frames, frames.max(axis=1) >= silence)
        seen = {p for u in ups for p, _ in u["reranked"]}
        z = {p: scorer.z(cells, pid[p]) for p in seen}
        row = {}
        for off in offsets:
            tmpl = {p: running_scores(z[p], steps, off) for p in seen}
            for w in weights:
                row[f"w={w},off={off}"] = item_summary(fused_leaders(ups, tmpl, fc.frame_rate_hz, w),
                                                      item["piece"], grace_s=a.grace, min_lead=a.min_lead)
            # the template alignment alone over the same candidates (how informative is it?)
            row[f"tmpl_only,off={off}"] = item_summary(fused_leaders(
                [{**u, "reranked": [[q, 0.0] for q, _ in u["reranked"]]} for u in ups], tmpl, fc.frame_rate_hz, 1.0),
                item["piece"], grace_s=a.grace, min_lead=0.0)
        locked = stable_from([u["t"] for u in ups], [u["state"] == "following" and u["piece"] == item["piece"]
                                                     for u in ups])
        results[item["name"]] = {"locked_s": locked, **row}
        base = row[f"w=0.0,off={offsets[0]}"] if 0.0 in weights else None
        print(item["name"], "locked", round(locked, 2), "rerank", base, flush=True)
    print(f"{'setting':24s} {'median leader_s':>16s} {'mean gain_s':>12s} {'wrong_lead_s':>13s} {'never':>6s}")
    keys = [k for k in next(iter(results.values())) if k != "locked_s"]
    ref = f"w=0.0,off={offsets[0]}"
    for k in keys:
        lead = np.array([r[k]["leader_s"] for r in results.values()])
        gain = (np.array([r[ref]["leader_s"] for r in results.values()]) - lead) if ref in keys else np.zeros(1)
        gain = gain[np.isfinite(gain)]
        print(f"{k:24s} {np.median(lead):16.2f} {gain.mean() if len(gain) else float('nan'):12.2f} "
              f"{sum(r[k]['wrong_lead_s'] for r in results.values()):13.2f} {int(np.sum(~np.isfinite(lead))):6d}")
    if a.out:
        a.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
