"""CPU time of each stage of one engine update, on a recording fed as live input.

    python -m benchmarks.update_stages AUDIO [AUDIO ...] [--bundle exported/default] [--index PATH]
        [--size 1000000 [--ann ivfpq]] [--seconds 30] [--json OUT]

Pinned to one core (onnxruntime with one thread, one BLAS thread), the engine is fed each
recording in 512-sample blocks, as ``follower listen`` feeds it (one update per 50 ms frame,
no batched embeddings), and the worker thread's CPU time (``time.thread_time``) of every
update is split into its stages: the spectrogram and the frame bookkeeping since the last
update, the audio encoder, the top-k search, the votes, the path verification, the
re-ranker (its query step, its note-template cell step, its candidates, its ranking), the
lock policy, the tracker, the fine aligner, the result, the hypotheses' assembly and the
update's own code between them ("update_own"). Each stage counts its own time, not that of
the stages it calls; "rest" is what the push spent outside them (its frame loop, and each
stage's timer: two ``thread_time`` calls, ~1 us each). A stage's
p50 / p99 is over the updates (0 where the stage did not run). The note templates of a new
candidate are built on a background thread, which this does not count.

``--size N`` grows the index to N snippets with random unit rows (as ``benchmarks.scale``)
and, with ``--ann``, builds the faiss structure the engine then searches (the index is cached
under ``--cache`` so that paired runs share it). The grown index carries no notes (as in
``benchmarks.scale``), so its runs have no fine aligner and no note templates. A benchmark, not a test.
"""

from __future__ import annotations

import follower.blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

clock = time.thread_time

STAGES = ("spectrogram", "frames", "templates_cell", "encoder", "search", "votes", "standardise", "verify",
          "rerank_step", "rerank_consider", "rerank_ranking", "policy", "tracker", "fine", "result", "hypotheses", "update_own", "rest")


class Stages:
    """Exclusive CPU time per stage: a stage's time less that of the stages it calls."""

    def __init__(self):
        self.times = defaultdict(float)
        self._stack: list = []

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            self._stack.append(0.0)
            t = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = clock() - t
                children = self._stack.pop()
                self.times[name] += spent - children
                if self._stack:
                    self._stack[-1] += spent
        return timed

    def take(self) -> dict:
        out, self.times = dict(self.times), defaultdict(float)
        return out


def instrument(engine) -> Stages:
    st = Stages()
    e = engine
    e._spec.push = st.wrap("spectrogram", e._spec.push)
    e._write = st.wrap("frames", e._write)
    e._embed = st.wrap("encoder", e._embed)
    e._topk = st.wrap("search", e._topk)
    for obj, names in ((e._votes, ("add", "best_cells")), (e._evidence, ("add", "leader"))):
        for n in names:
            setattr(obj, n, st.wrap("votes", getattr(obj, n)))
    e._verifier.standardise = st.wrap("standardise", e._verifier.standardise)
    for n in ("add", "score", "history_s"):
        setattr(e._verifier, n, st.wrap("verify", getattr(e._verifier, n)))
    if e._reranker is not None:
        r = e._reranker
        r.add = st.wrap("rerank_step", r.add)
        r.add_frame = st.wrap("templates_cell", r.add_frame)
        r.consider = st.wrap("rerank_consider", r.consider)
        r.ranking = st.wrap("rerank_ranking", r.ranking)
    e._policy.step = st.wrap("policy", e._policy.step)
    e._track = st.wrap("tracker", e._track)
    e._fine = st.wrap("fine", e._fine)
    e._result = st.wrap("result", e._result)
    e._hypotheses = st.wrap("hypotheses", e._hypotheses)
    e._update = st.wrap("update_own", e._update)
    return st


def run(bundle, index, audio, rate, *, search: str = "auto", block: int = 512) -> dict:
    """{stage: per-update CPU ms array} and 'total', for one recording."""
    from follower.engine import Engine, EngineConfig

    engine = Engine(bundle, index, input_rate_hz=rate, config=EngineConfig(search=search))
    engine.warm_up()
    st = instrument(engine)
    rows, totals, since = [], [], 0.0
    for i in range(0, len(audio), block):
        t = clock()
        ups = engine.push(audio[i:i + block])
        since += clock() - t
        if ups:
            assert len(ups) == 1
            parts = st.take()
            parts["rest"] = since - sum(parts.values())
            rows.append(parts)
            totals.append(since)
            since = 0.0
    out = {s: np.array([r.get(s, 0.0) for r in rows]) * 1e3 for s in STAGES}
    out["total"] = np.array(totals) * 1e3
    return out


def sized(index, n: int, ann: str | None, cache: Path):
    from follower.index import load_index, save_index

    path = cache / f"{index.fingerprint}-{n}-{ann or 'exact'}.index.npz"
    if path.exists():
        return load_index(path)
    from benchmarks.scale import sized_index

    big = sized_index(index, n)
    if ann:
        from follower.ann import AnnConfig, attach_ann

        attach_ann(big, AnnConfig(kind=ann), threads=1)
    cache.mkdir(parents=True, exist_ok=True)
    save_index(big, path)
    return big


def main(argv=None) -> int:
    import soundfile as sf

    from follower.bundle import load_bundle
    from follower.index import load_index
    from follower.paths import DEFAULT_BUNDLE, resolve_bundle, resolve_index

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="+")
    p.add_argument("--bundle", default=DEFAULT_BUNDLE)
    p.add_argument("--index", default=None, help="default: the bundle's index")
    p.add_argument("--size", type=float, default=0, help="grow the index to this many snippets (random rows)")
    p.add_argument("--ann", default=None, choices=("hnsw", "ivfpq"), help="with --size: build this faiss structure")
    p.add_argument("--cache", default="data/bench/update_stages", help="where grown indexes are kept")
    p.add_argument("--seconds", type=float, default=30.0, help="of each recording (from its start)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--dump", default=None, help="also write every update's stage times to this .npz")
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    bundle_dir = resolve_bundle(args.bundle)
    bundle = load_bundle(bundle_dir, threads=1)
    index_path = resolve_index(args.index, bundle_dir)
    index = load_index(index_path)
    if args.size:
        index = sized(index, int(args.size), args.ann, Path(args.cache))
    per = defaultdict(list)
    for _ in range(args.repeats):
        for f in args.audio:
            audio, rate = sf.read(str(f), dtype="float32", always_2d=True)
            audio = audio[: int(args.seconds * rate)]
            r = run(bundle, index, audio, rate)
            for k, v in r.items():
                per[k].append(v)
    res = {k: np.concatenate(v) for k, v in per.items()}
    n = len(res["total"])
    print(f"{index.n_snippets:,d} snippets ({'faiss ' + index.header['ann']['kind'] if index.ann is not None else 'exact'}), "
          f"{n} updates; CPU ms per update")
    print("| stage | mean | p50 | p99 | share |\n|---|---:|---:|---:|---:|")
    total_mean = res["total"].mean()
    summary = {}
    for s in STAGES + ("total",):
        v = res[s]
        summary[s] = {"mean": float(v.mean()), "p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))}
        print(f"| {s} | {v.mean():.3f} | {np.percentile(v, 50):.3f} | {np.percentile(v, 99):.3f} | "
              f"{100 * v.mean() / total_mean:.0f} % |")
    if args.dump:
        np.savez(args.dump, **res)
    if args.json:
        Path(args.json).write_text(json.dumps({"snippets": index.n_snippets, "updates": n, "stages": summary,
                                               "load_1min": os.getloadavg()[0]}, indent=2))
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
