"""Large indexes: exact against approximate search, cost against index size, identification at scale.

    python -m benchmarks.scale [--index data/bench/bigcorpus/big-hop8.index.npz] [--sizes 1e4,1e5,1e6,1e7]

Regenerates the blocks ``scale-setup``, ``scale-ann``, ``scale-cost`` and
``scale-recognition`` of docs/benchmarks.md (section "Large libraries"):

1. **ann**: the faiss settings tried, at ``--tune-size`` snippets (the real index, then
   random unit rows to reach the size): recall@25 against the exact kernel on real audio
   queries (every 0.5 s of the benchmark renders and of Bach10, embedded by the bundle's
   audio encoder), time per query on one core, build time and memory;
2. **cost**: per size (the real index's first pieces, or all of it plus random rows):
   embedding time (measured on the real part; random rows cost nothing to embed, so
   larger sizes are extrapolated from the measured rate and say so), structure build
   time, size on disk and in memory, and the engine's whole update p50/p99 on one core
   (30 s of a chorale render) with exact search and with the chosen structure;
3. **recognition**: the chorale and Bach10 items replayed (``follower replay --fast``)
   against the small chorale index and against the big real index with each search.

Random rows never resemble music, so recall at sizes reached with them says how the
structure handles the real part among many rows, not how real distractors would rank.
Work files go to ``$SCOREFOLLOW_BENCH/scale``.
"""

from __future__ import annotations

import follower.blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import dataclasses
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

from follower.index import NOTE_ARRAYS

K = 25
HNSW_TRIES = [dict(hnsw_m=16, ef_search=ef) for ef in (32, 64, 128, 256)]  # M=32: no better at 100k rows
BUILD_THREADS = 1  # on a shared machine, OpenMP threads that wait for a busy core make faiss builds far slower
IVF_TRIES = [dict(nprobe=p) for p in (16, 32, 64, 128, 256)]


def work() -> Path:
    from benchmarks.paths import work_dir

    return work_dir() / "scale"


def audio_queries(bundle, files, every_s: float = 0.5) -> np.ndarray:
    """Audio-encoder embeddings of sounding windows every ``every_s`` of each file."""
    import soundfile as sf

    from follower.features import spectrogram
    from follower.snippets import audio_input, cut

    cfg = bundle.config
    step = max(1, int(round(every_s * cfg.features.frame_rate_hz)))
    out = []
    for f in files:
        x, rate = sf.read(f, dtype="float32", always_2d=True)
        spec = spectrogram(x.mean(axis=1), rate, cfg.features)
        centres = np.arange(cfg.snippets.audio_frames, len(spec), step)
        windows = cut(spec, centres, cfg.snippets.audio_frames)
        loud = (windows.max(axis=2) > 0.05).mean(axis=1) >= 0.3  # the engine's own rule for a window that votes
        if loud.any():
            out.append(bundle.audio(audio_input(windows[loud])))
    return np.concatenate(out).astype(np.float32)


def sized_index(real, n: int, seed: int = 0):
    """The first pieces of ``real`` up to ``n`` snippets, or all of it plus random unit rows."""
    from benchmarks.latency import random_index
    from follower.merge import merge_indexes

    if n <= real.n_snippets:
        p = int(np.searchsorted(real.piece_start, n, side="right")) - 1
        p = max(p, 1)
        end = int(real.piece_start[p])
        notes = {}
        if real.has_notes:  # the first pieces' notes only: the rest would be carried for nothing
            last = int(real.note_start[p])
            notes = dict(note_start=real.note_start[:p + 1], note_onset_s=real.note_onset_s[:last],
                         note_end_s=real.note_end_s[:last], note_pitch=real.note_pitch[:last])
        sub = dataclasses.replace(real, header=dict(real.header), embeddings=real.embeddings[:end],
                                  piece=real.piece[:end], position_s=real.position_s[:end],
                                  position_beats=real.position_beats[:end], piece_ids=real.piece_ids[:p],
                                  titles=real.titles[:p], piece_start=real.piece_start[:p + 1],
                                  duration_s=real.duration_s[:p], ann=None, **notes)
        sub.header.update(n_pieces=p, n_snippets=end)
        if "sources" in sub.header:  # the big build's list of 62,628 MIDI paths is 18 MB of the file
            sub.header["sources"] = list(sub.header["sources"][:p])
        return sub
    extra = random_index(n - real.n_snippets, real.embeddings.shape[1], real.fingerprint, seed=seed)
    extra.header.update(hop_frames=real.header["hop_frames"], frame_rate_hz=real.header["frame_rate_hz"])
    merged, _ = merge_indexes([dataclasses.replace(real, ann=None), extra], ["real", "random"])
    return merged


# Timings are CPU time of the measuring thread (time.thread_time), not wall time: this machine is
# shared, and wall time there measures the other jobs more than the search.
clock = time.thread_time


def exact_truth(matrix, queries, k=K):
    from follower import knn

    knn.warm_up(matrix.shape[1], k)
    times, truth = [], []
    for q in queries:
        t = clock()
        rows, _ = knn.topk(matrix, q, k)
        times.append(clock() - t)
        truth.append(set(rows.tolist()))
    return truth, np.array(times) * 1e3


def measure_search(search, queries, truth, k=K):
    times, hits = [], 0
    for q, want in zip(queries, truth):
        t = clock()
        rows, _ = search.topk(q, k)
        times.append(clock() - t)
        hits += len(want & set(rows.tolist()))
    times = np.array(times) * 1e3
    return {"recall": hits / (k * len(truth)), "p50_ms": float(np.percentile(times, 50)),
            "p99_ms": float(np.percentile(times, 99))}


def ann_bytes(ann) -> int:
    return int(len(ann))


def tune(index, queries, out: Path) -> dict:
    """Every setting of :data:`HNSW_TRIES` / :data:`IVF_TRIES` on one index; results to ``out``."""
    from follower import knn
    from follower.ann import AnnConfig, AnnSearch, build_ann, serialise

    matrix = knn.as_search_matrix(index.embeddings)
    truth, exact_ms = exact_truth(matrix, queries)
    rows = [{"kind": "exact", "setting": "numba kernel", "recall": 1.0, "p50_ms": float(np.percentile(exact_ms, 50)),
             "p99_ms": float(np.percentile(exact_ms, 99)), "build_s": 0.0, "mib": matrix.nbytes / 2**20}]
    for kind, tries, key in (("hnsw", HNSW_TRIES, "hnsw_m"), ("ivfpq", IVF_TRIES, None)):
        groups = {}
        for t in tries:
            groups.setdefault(t.get(key) if key else 0, []).append(t)
        for _, group in groups.items():
            cfg = AnnConfig(kind=kind, **group[0])
            ann, build_s = build_ann(matrix, cfg, threads=BUILD_THREADS)
            blob = serialise(ann)
            search = AnnSearch(blob, cfg)
            for t in group:
                cfg = AnnConfig(kind=kind, **t)
                search.set_params(cfg)
                r = measure_search(search, queries, truth)
                setting = ", ".join(f"{k}={v}" for k, v in t.items())
                rows.append({"kind": kind, "setting": setting, **r, "build_s": build_s, "mib": len(blob) / 2**20,
                             "config": cfg.to_dict()})
                print(json.dumps(rows[-1]), flush=True)
            del search, ann, blob
    res = {"snippets": index.n_snippets, "queries": len(queries), "rows": rows}
    out.write_text(json.dumps(res, indent=1))
    return res


def engine_latency(bundle, index, audio, rate, search: str, two_speeds: bool = True, repeats: int = 1) -> dict:
    """``two_speeds``: the follower's default pair of engines (follower.two_speeds), else the one engine.
    ``repeats``: the audio replayed that many times, a fresh engine each time, the latencies pooled (one
    30 s replay makes some 490 updates, whose p99 is their 5th-slowest: it moves from run to run)."""
    from follower.engine import Engine, EngineConfig
    from follower.two_speeds import TwoSpeedEngine

    lat = []
    for _ in range(max(1, int(repeats))):
        engine = (TwoSpeedEngine if two_speeds else Engine)(bundle, index, input_rate_hz=rate,
                                                             config=EngineConfig(search=search))
        engine.warm_up()
        for i in range(0, len(audio), 512):
            t = clock()
            ups = engine.push(audio[i:i + 512])
            if len(ups) == 1:  # CPU time of the block that made one update (~23 ms of audio; 50 ms per update)
                lat.append((clock() - t) * 1e3)
    lat = np.array(lat)
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)), "updates": len(lat)}


def cost_row(bundle, real, n, audio, rate, queries, embed_rate: float, tmp: Path, kinds=("hnsw",),
             max_ann: int = 10**6, two_speeds: bool = True, repeats: int = 1) -> dict:
    from follower import knn
    from follower.ann import AnnConfig, attach_ann
    from follower.index import save_index

    index = sized_index(real, n)
    real_rows = min(index.n_snippets, real.n_snippets)
    row = {"snippets": index.n_snippets, "pieces": index.n_pieces, "real_snippets": real_rows,
           "embed_s": index.n_snippets / embed_rate, "embed_measured": index.n_snippets <= real.n_snippets}
    row["exact"] = engine_latency(bundle, index, audio, rate, "exact", two_speeds, repeats)
    matrix = knn.as_search_matrix(index.embeddings)
    truth, exact_ms = exact_truth(matrix, queries)
    row["exact_query_p50_ms"] = float(np.percentile(exact_ms, 50))
    stored = sum(getattr(index, a).nbytes for a in ("embeddings", "piece", "position_s", "position_beats",
                                                     "piece_start", "duration_s") + NOTE_ARRAYS
                 if getattr(index, a) is not None)
    row["disk_exact_mib"] = stored / 2**20
    row["mem_exact_mib"] = (stored + matrix.nbytes) / 2**20
    for kind in kinds:
        if n > max_ann:
            row[kind] = None
            continue
        build_s = attach_ann(index, AnnConfig(kind=kind), threads=BUILD_THREADS)
        from follower.ann import make_search

        index._ann_search = None
        make_search(index, matrix, "ann")
        r = measure_search(index._ann_search, queries, truth)
        row[kind] = {"build_s": build_s, "ann_mib": len(index.ann) / 2**20, "recall": r["recall"],
                     "query_p50_ms": r["p50_ms"],
                     **engine_latency(bundle, index, audio, rate, "ann", two_speeds, repeats)}
        if n <= 1_000_000:  # written for real: the file as the follower loads it
            path = save_index(index, tmp / f"cost-{n}-{kind}.index.npz")
            row[kind]["disk_mib"] = path.stat().st_size / 2**20
            path.unlink()
        else:
            row[kind]["disk_mib"] = (stored + len(index.ann)) / 2**20
        index.ann, index._ann_search = None, None
        print(json.dumps({k: row[k] for k in ("snippets", kind)}), flush=True)
    del matrix
    return row


def fmt_n(n: int) -> str:
    return f"{n:,}"


def ann_table(res: dict) -> str:
    lines = [f"At {res['snippets']:,} snippets, {res['queries']:,} real audio queries, top {K}, one core:", "",
             "| search | setting | recall@25 vs exact | per query p50 / p99 | build | structure size |",
             "|---|---|---:|---|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['kind']} | {r['setting']} | {r['recall']:.3f} | {r['p50_ms']:.3f} / {r['p99_ms']:.3f} ms | "
                     f"{r['build_s']:.0f} s | {r['mib']:.0f} MiB |")
    return "\n".join(lines)


def cost_table(rows: list, embed_rate: float) -> str:
    lines = ["| snippets | of them real | embedding (one process) | exact: disk | memory | search p50 | update p50 / p99 | "
             "faiss: build (1 thread) | disk | memory | search p50 | update p50 / p99 | recall@25 |",
             "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        kind = next((k for k in ("hnsw", "ivfpq") if r.get(k)), None)
        h = r.get(kind) if kind else None
        est = "" if r["embed_measured"] else " (est.)"
        if h is None:
            ann_cols = "not built | – | – | – | – | –"
        else:
            ann_cols = (f"{kind}: {h['build_s']:.0f} s | {h['disk_mib']:.0f} MiB | {r['mem_exact_mib'] + h['ann_mib']:.0f} MiB | "
                        f"{h['query_p50_ms']:.3f} ms | {h['p50_ms']:.1f} / {h['p99_ms']:.1f} ms | {h['recall']:.3f}")
        lines.append(
            f"| {fmt_n(r['snippets'])} | {fmt_n(r['real_snippets'])} | {r['embed_s'] / 60:.0f} min{est} | "
            f"{r['disk_exact_mib']:.0f} MiB | {r['mem_exact_mib']:.0f} MiB | {r['exact_query_p50_ms']:.3f} ms | "
            f"{r['exact']['p50_ms']:.1f} / {r['exact']['p99_ms']:.1f} ms | {ann_cols} |")
    return "\n".join(lines) + (
        f"\n\nEmbedding rate {embed_rate:,.0f} snippets/s: the big-corpus shards' own, per process; "
        "\"est.\" = that rate times the size. Memory = the stored arrays + the engine's float32 search "
        "matrix (+ the faiss structure). Disk = the index file (above 1M: the arrays' bytes, not written).")


def recognition_table(rows: list) -> str:
    from benchmarks.report import ms, pct, secs

    lines = ["| index | search | pieces | snippets | items | acc. 5 s | acc. 10 s | acc. end | acc. end, or the same "
             "music | time to stable id. (median / p90) | the same, copies counted | update p50 / p99 (wall, loaded) |",
             "|---|---|---:|---:|---:|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["summary"]
        same = pct(r["acc_end_same_music"]) if "acc_end_same_music" in r else "–"
        c = r.get("summary_same_music")
        counted = f"{secs(c['stable_median_s'])} / {secs(c['stable_p90_s'])}" if c else "–"
        lines.append(f"| {r['index']} | {r['search']} | {r['pieces']:,} | {r['snippets']:,} | {r.get('items', '?')} | "
                     f"{pct(s['acc_5'])} | "
                     f"{pct(s['acc_10'])} | {pct(s['acc_end'])} | {same} | {secs(s['stable_median_s'])} / "
                     f"{secs(s['stable_p90_s'])} | {counted} | {ms(s['latency_p50_ms'])} / {ms(s['latency_p99_ms'])} |")
    return "\n".join(lines)


def run_recognition(items, bundle_dir: Path, runs: list, out: Path, fresh: bool, replay: bool = True) -> list:
    """runs: [(label, index path, search, id prefix per corpus)] -> rows for :func:`recognition_table`: per
    run, one per kind of item (synthetic chorales, Bach10 recordings...) and, where there are several, one
    for all of them."""
    from benchmarks.metrics import summarise
    from benchmarks.report import load_run
    from benchmarks.runners import QUIET_OSC, follower_exe, run_child
    from follower.index import load_index
    from tqdm import tqdm

    rows = []
    for label, index_path, search, prefix in runs:
        folder = out / f"{label.replace(' ', '_')}-{Path(index_path).name.split('.')[0]}-{search}"
        folder.mkdir(parents=True, exist_ok=True)
        for item in tqdm(items, desc=f"replay {label} ({search})", unit="item"):
            jsonl = folder / f"{item.name}.jsonl"
            if (jsonl.exists() and not fresh) or not replay:
                continue
            cmd = [follower_exe(), "replay", item.audio, "--fast", "--bundle", str(bundle_dir), "--index",
                   str(index_path), "--search", search, "--jsonl", str(jsonl), "--osc", QUIET_OSC, "--quiet", "--stats"]
            stats = run_child(cmd, Path(str(jsonl) + ".log"))
            stats["stats_output"] = Path(str(jsonl) + ".log").read_text()[-2000:]
            Path(str(jsonl) + ".stats.json").write_text(json.dumps(stats))
        named = [dataclasses.replace(i, piece=f"{prefix}{i.piece}") for i in items]
        run = load_run(label, folder, named, True)
        done = [i for i in named if i.name in run.scores]
        index = load_index(index_path)
        kinds: dict = {}
        for i in done:
            kinds.setdefault(i.kind, []).append(i)
        # a row per set of items (the sets differ: synthetic chorales, real recordings), then all of them
        counted = dict(zip([i.name for i in done], same_music_scores(folder, done, prefix, run.scores)))
        for kind, members in list(kinds.items()) + ([("in all", done)] if len(kinds) > 1 else []):
            same = summarise([counted[i.name] for i in members])
            rows.append({"index": label, "search": search, "index_path": str(index_path), "pieces": index.n_pieces,
                         "snippets": index.n_snippets, "items": f"{len(members)} {kind}",
                         "summary": summarise([run.scores[i.name] for i in members]),
                         "acc_end_same_music": same["acc_end"], "summary_same_music": same})
    return rows


def same_music_scores(folder: Path, items, prefix: str, strict: dict | None = None) -> list:
    """Each item's scores (:func:`benchmarks.metrics.score_item`) with every piece that holds the true
    piece's notes (:mod:`benchmarks.same_music`: copies the corpus holds under other names) counted as
    the true piece; a copy's positions are read on its own timeline. ``strict``: item name -> its
    scores as the logs stand, kept for the items that never name a copy."""
    from benchmarks import big_corpus, paths
    from benchmarks.metrics import load_jsonl, normalise_piece, score_item
    from benchmarks.same_music import find_piece, same_music
    from benchmarks.warp import load_truth

    roots = big_corpus.corpus_roots(big_corpus.work()) if prefix else [(paths.chorale_dir(), "")]
    scores = []
    for item in items:
        records = load_jsonl(folder / f"{item.name}.jsonl")
        truth = normalise_piece(item.piece)
        named = {normalise_piece(r.get("piece")) for r in records} - {None, truth}
        copies = {n for n in named if (path := find_piece(n, roots)) is not None and same_music(item.midi, path)}
        if not copies and strict is not None and item.name in strict:
            scores.append(strict[item.name])
            continue
        renamed = [dict(r, piece=item.piece) if normalise_piece(r.get("piece")) in copies else r for r in records]
        scores.append(score_item(renamed, item.piece, load_truth(Path(item.truth))))
    return scores


def main(argv=None) -> int:
    from benchmarks import paths
    from benchmarks.material import build as build_material
    from benchmarks.report import machine_description, replace_block
    from benchmarks.runners import ensure_index
    from follower.bundle import load_bundle
    from follower.index import load_index
    from follower.paths import resolve_bundle

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--index", default=None, help="the big real index (default: the big-corpus benchmark's merge)")
    p.add_argument("--sizes", default="1e4,1e5,1e6,1e7", help="snippet counts of the cost table")
    p.add_argument("--max-ann-size", default="1e6", help="largest size whose faiss structure the cost table builds")
    p.add_argument("--cost-kinds", default="hnsw", help="faiss structures the cost table builds (hnsw, ivfpq)")
    p.add_argument("--cost-out", default="cost.json", help="file (in the work folder) of this run's cost rows")
    p.add_argument("--searches", default="exact,hnsw,ivfpq",
                   help="recognition: the searches of the big index replayed (an HNSW structure over millions "
                        "of rows takes hours to build on two cores)")
    p.add_argument("--kinds", default="chorale,bach10", help="benchmark items replayed for the recognition table")
    p.add_argument("--tune-size", type=float, default=1e6, help="snippets the ANN settings are compared at")
    p.add_argument("--parts", default="ann,cost,recognition",
                   help="which results to (re)compute; the document is written from every result on disk. "
                        "recall (not in the default): recall@25 against exact search of the structure that "
                        "--index already carries, printed and kept in recall.json, no document")
    p.add_argument("--small-index", default=None, help="the chorale index (default: run_all's, built if missing)")
    p.add_argument("--score-only", action="store_true", help="recognition: score the logs there are, replay nothing")
    p.add_argument("--fresh", action="store_true", help="replay again even where logs exist")
    p.add_argument("--slow-players", action=argparse.BooleanOptionalAction, default=True,
                   help="cost table: the follower's default pair of engines (follower.two_speeds); "
                        "--no-slow-players: the one engine")
    p.add_argument("--cost-repeats", type=int, default=1,
                   help="cost table: replays of the 30 s render per update latency, a fresh engine each, pooled "
                        "(the p99 of one replay is its 5th-slowest update)")
    p.add_argument("--doc", type=Path, default=paths.docs_dir() / "benchmarks.md")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    t_start = time.time()
    if hasattr(os, "sched_setaffinity"):
        pass  # timings: faiss and the engine are told to use one thread; the machine's other core stays free
    out = work()
    out.mkdir(parents=True, exist_ok=True)
    bundle_dir = resolve_bundle(args.bundle)
    bundle = load_bundle(bundle_dir, threads=1)
    big_path = Path(args.index) if args.index else paths.work_dir() / "bigcorpus" / "big-hop8.index.npz"
    real = load_index(big_path)
    all_items = [i for i in build_material(paths.work_dir() / "material") if i.kind in ("chorale", "bach10")]
    queries = audio_queries(bundle, [i.audio for i in all_items]) if parts & {"ann", "cost", "recall"} \
        else np.zeros((0, 1))
    if "recall" in parts:  # the structure as built, at its full size: no sweep of settings
        from follower.ann import make_search

        matrix = np.ascontiguousarray(real.embeddings, dtype=np.float32)
        truth, exact_ms = exact_truth(matrix, queries)
        r = measure_search(types.SimpleNamespace(topk=make_search(real, matrix, "ann", index_path=str(big_path))),
                           queries, truth)
        rec = {"index": str(big_path), "snippets": real.n_snippets, "ann": real.header["ann"], "queries": len(queries),
               "exact_p50_ms": float(np.percentile(exact_ms, 50)), "exact_p99_ms": float(np.percentile(exact_ms, 99)),
               **r}
        (out / "recall.json").write_text(json.dumps(rec, indent=1))
        print(json.dumps(rec))
        if parts == {"recall"}:
            return 0
    items = [i for i in all_items if i.kind in args.kinds.split(",")]
    import soundfile as sf

    audio, rate = sf.read(all_items[0].audio, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)[: int(30 * rate)]
    log = out / "shards-rate.json"
    from benchmarks.big_corpus import shard_dir

    shard_log = shard_dir(paths.work_dir() / "bigcorpus", int(real.header["hop_frames"]),
                          real.score_encoder) / "log.jsonl"
    recs = [json.loads(line) for line in shard_log.read_text().splitlines()] if shard_log.exists() else []
    embed_rate = sum(r["snippets"] for r in recs) / max(1e-9, sum(r["s"] for r in recs)) if recs else 800.0
    log.write_text(json.dumps({"rate": embed_rate, "shards": len(recs)}))

    if "ann" in parts:
        tune(sized_index(real, int(args.tune_size)), queries, out / "ann.json")
    if "cost" in parts:
        rows = []
        for n in [int(float(s)) for s in args.sizes.split(",")]:
            rows.append(cost_row(bundle, real, n, audio, rate, queries, embed_rate, out,
                                 kinds=tuple(args.cost_kinds.split(",")), max_ann=int(float(args.max_ann_size)),
                                 two_speeds=args.slow_players, repeats=args.cost_repeats))
            (out / args.cost_out).write_text(json.dumps(rows, indent=1))
    if "recognition" in parts:
        small = Path(args.small_index) if args.small_index else \
            ensure_index(paths.chorale_dir(), "chorales", bundle_dir, paths.work_dir() / "index")[0]
        runs = [("chorales", small, "exact", "")]
        for search in args.searches.split(","):
            path = big_path if search == "exact" else out / f"big-{search}.index.npz"
            if search != "exact" and not path.exists():
                from follower.ann import AnnConfig, attach_ann
                from follower.index import save_index

                idx = load_index(big_path)
                attach_ann(idx, AnnConfig(kind=search), threads=BUILD_THREADS)
                save_index(idx, path)
            runs.append(("big corpus", path, "exact" if search == "exact" else "ann", "bach-chorales/"))
        rows = run_recognition(items, bundle_dir, runs, out / "runs", args.fresh, replay=not args.score_only)
        structures = {}  # index path -> the kind of its faiss structure (each index loaded once)
        for r in rows:
            if r["search"] == "ann":
                if r["index_path"] not in structures:
                    structures[r["index_path"]] = load_index(r["index_path"]).header["ann"]["kind"]
                r["search"] = structures[r["index_path"]]
        (out / "recognition.json").write_text(json.dumps({"items": len(items), "kinds": args.kinds, "rows": rows},
                                                          indent=1, default=float))

    # the document from every part's results on disk, so parts run separately end in one section
    doc = args.doc.read_text()
    if (out / "ann.json").exists():
        doc = replace_block(doc, "scale-ann", ann_table(json.loads((out / "ann.json").read_text())))
    cost_rows = {r["snippets"]: r for f in sorted(out.glob("cost*.json")) if not f.name.endswith(".meta.json") for r in json.loads(f.read_text())}
    if cost_rows:
        doc = replace_block(doc, "scale-cost", cost_table([cost_rows[n] for n in sorted(cost_rows)], embed_rate))
    if (out / "recognition.json").exists():
        rec = json.loads((out / "recognition.json").read_text())
        doc = replace_block(doc, "scale-recognition", recognition_table(rec["rows"])
                            + f"\n\nItems: the {rec['items']} {rec['kinds'].replace(',', ' and ')} items of the "
                              "tables above, replayed with `follower replay --fast`.")
    command = f".venv/bin/python -m benchmarks.scale {' '.join(argv if argv is not None else sys.argv[1:])}"
    for part, name in (("ann", "ann"), ("cost", args.cost_out.removesuffix(".json")), ("recognition", "recognition")):
        if part in parts:
            (out / f"{name}.meta.json").write_text(json.dumps({
                "command": command, "minutes": round((time.time() - t_start) / 60), "load": os.getloadavg()[0]}))
    metas = [json.loads(f.read_text()) for f in sorted(out.glob("*.meta.json"))]
    n_queries = json.loads((out / "ann.json").read_text())["queries"] if (out / "ann.json").exists() else len(queries)
    h = real.header
    doc = replace_block(doc, "scale-setup", "\n".join(
        [f"- Machine: {machine_description()} (the 1-minute load at the end of each command below).",
         f"- Bundle `{bundle_dir.name}` ({bundle.config.fingerprint}). Big real index: {real.n_pieces:,} pieces, "
         f"{real.n_snippets:,} snippets every {h['hop_frames']} frames, from {len(h.get('merged_from', [])) or 1} "
         f"shards of `python -m benchmarks.big_corpus` (embedding rate {embed_rate:,.0f} snippets/s over "
         f"{len(recs)} shards, per process).",
         f"- Queries: {n_queries:,} audio windows (every 0.5 s of the {len(all_items)} chorale and Bach10 items, "
         "sounding windows only), embedded by the bundle's audio encoder.",
         "- Commands (each part writes its results under `data/bench/scale/`; any run rewrites this section "
         "from all of them):"]
        + [f"  - `{m['command']}` ({m['minutes']} min, 1-min load {m['load']:.0f} at its end{m.get('note', '')})"
           for m in metas]))
    args.doc.write_text(doc)
    print(f"wrote {args.doc} in {(time.time() - t_start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
