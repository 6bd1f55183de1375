"""``training evaluate RUN RUN ...``: the learned-model part of the evaluation for several runs
at once, and the comparison table of docs/improvements.md.

The same functions as ``training evaluate`` (:mod:`training.evaluate.protocols`, same pair
subsets for the same ``--pairs`` and ``--seed``): two-way snippet retrieval on test,
test_slow, test_fast and the Bach10 recordings; piece identification (audio
excerpts against the score snippets) on the synthesized test pieces and on Bach10
against the full chorale corpus at written tempo and with the 0.7x database too.
What it leaves out to fit several runs into the CPU budget: the chroma baseline
(it does not change between variants), the post-hoc CCA and performance retrieval
on the synthesized splits. Each split is loaded once for all runs that share its
roll channels. Writes RUN/compare_metrics.json (``training evaluate``'s keys, and the
per-pair ranks of each retrieval under ``pair_ranks`` for :mod:`training.evaluate.paired`)
per run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from follower.errors import ConfigError

from ..run_dir import COMPARE_METRICS_JSON, load_best
from .run import BACH10_SCALES, TEST_SPLITS


def index_database(index_path, split) -> tuple:
    """(Database of a follower index's snippets, per render of ``split`` its piece's number there).

    A test render's piece is the index piece whose id ends the dataset's id (the dataset names
    pieces by corpus folder + path, the index by the path under the folder it was built from)."""
    import numpy as np

    from follower.index import load_index

    from .protocols import Database

    index = load_index(index_path)
    number = {pid: i for i, pid in enumerate(index.piece_ids)}
    where = []
    for r in range(split.n_renders):
        pid = str(split.piece_ids[split.render_piece[r]])
        hits = [number[k] for k in number if pid == k or pid.endswith("/" + k)]
        if len(hits) != 1:
            raise ConfigError(f"{index_path}: test piece {pid} is {'not' if not hits else 'more than once'} in "
                              "the index; give an index built from the corpus the dataset's test pieces come from")
        where.append(hits[0])
    db = Database(np.asarray(index.embeddings, np.float32), np.asarray(index.piece, np.int64), index.n_pieces)
    return db, where


def evaluate_runs(runs, *, dataset, bach10, chorales, n_pairs: int, seed: int, piece_splits=("test",),
                  bach10_scales=None, piece_index=None, progress: bool = True) -> dict:
    from tqdm import tqdm

    from ..data.bach10 import RealPairs, bwv_of, load_bach10
    from ..data.split import load_split
    from . import protocols as ev

    scales_all = tuple(bach10_scales or BACH10_SCALES)

    cache: dict = {}   # per roll-channel setting: splits, Bach10 pieces, corpus rolls

    def data_for(snip, feat):
        key = json.dumps(snip.to_dict(), sort_keys=True)
        if key not in cache:
            # a test tempo the dataset did not render (--test-tempi) has no pairs: left out, as in
            # the single-run evaluation
            d = {"splits": {s: split for s in TEST_SPLITS if len((split := load_split(dataset, s, snip)).pairs)}}
            if bach10 and Path(bach10).is_dir():
                d["pieces"] = load_bach10(bach10, snip, feat, progress=progress)
                d["pairs"] = RealPairs(d["pieces"], snip, feat)
                files = sorted(Path(chorales).glob("*.mid"))
                d["truth"] = [[i for i, f in enumerate(files) if bwv_of(f) == p.bwv] for p in d["pieces"]]
                d["n_files"] = len(files)
                d["rolls"] = ev.corpus_rolls(files, snip, feat.frame_rate_hz, scales_all, progress=progress)
            cache[key] = d
        return cache[key]

    out = {}
    for run in runs:
        t0 = time.monotonic()
        model, snip, feat, info = load_best(run)
        emb = ev.TorchEmbedder(model)
        d = data_for(snip, feat)
        m: dict = {"model": {k: info.get(k) for k in ("best_epoch", "best_valid_mrr")},
                   "variant": info.get("variant"), "roll_channels": list(snip.roll_channels),
                   "protocol": {"n_pairs": n_pairs, "seed": seed, "n_excerpts": ev.N_EXCERPTS,
                                "k_neighbours": ev.K_NEIGHBOURS, "bach10_tempo_scales": list(scales_all)}}
        def retrieval(name, data):
            # the per-pair ranks stay for the paired comparison (training.evaluate.paired)
            metrics, ranks = ev.snippet_retrieval(emb, data, n_pairs=n_pairs, seed=seed)
            m.setdefault("snippet", {})[name] = metrics
            m.setdefault("pair_ranks", {})[name] = {k: v.tolist() for k, v in ranks.items()}

        for name, split in d["splits"].items():
            retrieval(name, split)
            queries = None
            if name in piece_splits:
                res = ev.synthesized_piece_eval(emb, split, snip, mirrored=False)
                m.setdefault("piece_identification", {})[name] = res["piece_identification"]
                queries = [e for _, e in res["_queries"]]
            if name == "test" and piece_index:
                # the test renders against every piece of a follower index (e.g. all of piano-midi.de);
                # the index holds the score encoder's embeddings of the bundle it was built with
                if "index_db" not in d:
                    d["index_db"] = index_database(piece_index, split)
                db, where = d["index_db"]
                if db.embeddings.shape[1] != model.config.embed_dim:
                    raise ConfigError(f"{piece_index}: {db.embeddings.shape[1]}-d embeddings, {run} makes "
                                      f"{model.config.embed_dim}-d ones; build the index with this run's bundle")
                if queries is None:   # the same 100 excerpts per render that the test pieces' vote uses
                    queries = [ev.embed_audio_at(emb, split.spectrogram(r), ev.excerpt_centres(
                        len(split.spectrogram(r)), snip.audio_frames), snip.audio_frames)
                        for r in range(split.n_renders)]
                m.setdefault("piece_identification", {})["test_vs_index"] = {
                    **ev.identify(list(zip(where, queries)), db)[0], "index": str(piece_index),
                    "index_pieces": int(db.n_pieces)}
        if "pieces" in d:
            retrieval("bach10", d["pairs"])
            embs = [ev.embed_roll_at(emb, roll, c, snip)
                    for _, _, roll, c in tqdm(d["rolls"], desc="corpus DB", unit="roll", disable=not progress)]
            groups = [("bach10", (1.0,))] + ([("bach10_multitempo", scales_all)] if len(scales_all) > 1 else [])
            for key, scales in groups:
                keep = [j for j, (_, r, _, _) in enumerate(d["rolls"]) if r in scales]
                db = ev.Database.build([(d["rolls"][j][0], embs[j]) for j in keep], d["n_files"])
                queries = [(t, ev.embed_audio_at(emb, p.spectrogram,
                                                 ev.excerpt_centres(len(p.spectrogram), snip.audio_frames),
                                                 snip.audio_frames))
                           for p, t in zip(d["pieces"], d["truth"])]
                m.setdefault("piece_identification", {})[key] = ev.identify(queries, db)[0]
        m["seconds"] = round(time.monotonic() - t0, 1)
        (Path(run) / COMPARE_METRICS_JSON).write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
        out[str(run)] = m
        print(f"{run}: {m['seconds']} s", flush=True)
    return out


def _mean_dir(m, split, metric):
    s = m.get("snippet", {}).get(split)
    return None if s is None else (s["audio2score"][metric] + s["score2audio"][metric]) / 2


def comparison_table(results: dict) -> str:
    """One row per run: snippet MRR (mean of both directions) and R@1, piece identification at rank 1."""
    head = ["run", "valid MRR", "test MRR", "slow MRR", "fast MRR", "Bach10 MRR", "test R@1", "Bach10 R@1",
            "test pieces @1", "Bach10 @1", "Bach10 @1 (+0.7x)", "Bach10 piece MRR"]
    with_index = any("test_vs_index" in m.get("piece_identification", {}) for m in results.values())
    if with_index:
        head.insert(9, "test pieces @1 vs index")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run, m in results.items():
        pid = m.get("piece_identification", {})

        def f(x):
            return "–" if x is None else f"{x:.3f}"

        def pc(key):
            p = pid.get(key)
            return "–" if p is None else f"{p['rank_1']['count']}/{p['n']}"

        cells = [Path(run).name, f(m["model"].get("best_valid_mrr")),
                 *(f(_mean_dir(m, s, "mrr")) for s in ("test", "test_slow", "test_fast", "bach10")),
                 f(_mean_dir(m, "test", "r@1")), f(_mean_dir(m, "bach10", "r@1")),
                 pc("test"), pc("bach10"), pc("bach10_multitempo"), f(pid.get("bach10", {}).get("mrr"))]
        if with_index:
            x = pid.get("test_vs_index")
            cells.insert(9, "–" if x is None else f"{pc('test_vs_index')} of {x['index_pieces']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_runs(runs, *, dataset, bach10, chorales, n_pairs: int, seed: int, bach10_scales=None,
                 reuse: bool = False, piece_index=None, progress: bool = True) -> dict:
    """{run: metrics} for every run, best read back from RUN/compare_metrics.json with ``reuse``."""
    results, todo = {}, []
    for run in runs:
        f = Path(run) / COMPARE_METRICS_JSON
        if reuse and f.is_file():
            results[str(run)] = json.loads(f.read_text())
        else:
            todo.append(run)
    results.update(evaluate_runs(todo, dataset=dataset, bach10=bach10, chorales=chorales, n_pairs=n_pairs,
                                 seed=seed, bach10_scales=bach10_scales, piece_index=piece_index,
                                 progress=progress))
    return {str(r): results[str(r)] for r in runs}
