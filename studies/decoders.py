"""Temporal decoding against order-free voting in the follower (docs/improvements.md, attempt d).

``python -m studies.decoders --bundle exported/default --index INDEX -o OUT.json``
replays the benchmark's material (``python -m benchmarks.material``: rendered held-out
chorale excerpts with a room and noise, and the ten Bach10 recordings, each with a
ground-truth audio -> MIDI time map) through two systems that share the bundle, the
index and the k-nearest-neighbour search, and scores both with the benchmark's own
metrics (:mod:`benchmarks.metrics`):

* ``engine``: the follower as shipped (:class:`follower.engine.Engine`): offset voting
  over (piece, position - time) cells, path verification and the HMM tracker;
* ``engine_no_evidence`` / ``engine_evidence`` (attempt e): the engine with its rule
  "accumulated piece votes may lock the path leader" off / on (``EngineConfig.evidence_ratio``
  inf / its default, 1.5 where the default is off), everything else as shipped;
* ``engine_no_rerank`` (attempt g): the engine without the re-ranking of candidate
  pieces over everything heard (``EngineConfig.rerank_candidates`` 0), everything else
  as shipped;
* ``engine_no_templates`` (attempt m, the other way round since it shipped): the
  re-ranking of the embeddings alone, with the lock rules fitted for it
  (``follower.engine.templates_off``), everything else as shipped;
* ``voting``: the paper's order-free piece identification run online: every window's
  ``k`` nearest score snippets each give one vote to their piece, votes decay with
  the engine's ``vote_decay_s``; the piece is the one with most votes, the position
  that of the piece's most similar snippet to the current window (plus the engine's
  latency compensation at tempo 1). No notion of time order;
* ``voting_all``: the same with votes that never decay (everything heard so far
  votes, as the paper's 100 excerpts of a whole piece do): slower to react, but
  more votes per decision.

The voting system sees the same causal windows as the engine (offline spectrogram ==
streaming spectrogram, ``follower/features.py``), the same silence gating, and
updates every 50 ms. Only the decoding differs, so the comparison measures what
the temporal model adds.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread, as the follower runs)

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SYSTEMS = ("engine", "engine_no_evidence", "engine_evidence", "engine_no_rerank", "engine_no_templates", "voting",
           "voting_all")
DEFAULT_SYSTEMS = ("engine", "voting", "voting_all")


def read_audio(path) -> tuple[np.ndarray, float]:
    import soundfile as sf

    signal, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return signal.mean(axis=1), float(rate)


def run_engine(bundle, index, signal, rate_hz, *, config=None, block: int = 1024, two_speeds: bool = False,
               pair: dict | None = None) -> list[dict]:
    """``two_speeds``: the engine the follower runs by default, with a second one for slow players
    (follower.two_speeds; ``pair``: fields of its TwoSpeedConfig to replace); otherwise the one engine."""
    from follower.engine import Engine
    from follower.two_speeds import TwoSpeedConfig, TwoSpeedEngine

    engine = (TwoSpeedEngine(bundle, index, input_rate_hz=rate_hz, config=config,
                             two_speeds=TwoSpeedConfig(**(pair or {}))) if two_speeds
              else Engine(bundle, index, input_rate_hz=rate_hz, config=config))
    engine.warm_up()
    out = []
    for start in range(0, len(signal), block):
        last = start + block >= len(signal)
        for u in engine.push(signal[start:start + block], last=last):
            out.append({"t": u.t, "piece": u.piece, "position_s": u.position_s, "state": u.state,
                        "latency_ms": u.latency_ms})
    return out


def run_voting(bundle, index, signal, rate_hz, *, config=None) -> list[dict]:
    """Order-free online voting over the same windows, one update per spectrogram frame."""
    from follower import knn
    from follower.engine import EngineConfig
    from follower.features import spectrogram
    from follower.noise import sounding as music_frames
    from follower.snippets import audio_input

    c = config or EngineConfig()
    fc, width = bundle.config.features, bundle.config.snippets.audio_frames
    fps = fc.frame_rate_hz
    lag_s = (width - width // 2) / fps
    spec = spectrogram(signal, rate_hz, fc).astype(np.float32)
    frames = np.concatenate([np.zeros((width, spec.shape[1]), np.float32), spec])  # the engine's zeroed ring
    loud = music_frames(frames, c.silence_level, c.noise_flatness)  # the engine's rule (follower.noise)
    search = knn.as_search_matrix(index.embeddings)
    n_updates = len(spec) // c.stride_frames
    ends = (np.arange(n_updates) + 1) * c.stride_frames + width   # window = frames[end - width:end]
    windows = np.stack([frames[e - width:e] for e in ends])
    sounding = np.array([loud[e - width:e].mean() >= c.min_sound_fraction and loud[e - 3:e].any() for e in ends])
    emb = np.zeros((n_updates, search.shape[1]), np.float32)
    if sounding.any():
        emb[sounding] = np.concatenate([bundle.audio(audio_input(windows[sounding][i:i + 256]))
                                        for i in range(0, int(sounding.sum()), 256)])
    votes = np.zeros(index.n_pieces)
    decay = np.exp(-c.stride_frames / fps / c.vote_decay_s)
    out = []
    for u in range(n_updates):
        t_s = (u + 1) * c.stride_frames / fps
        votes *= decay
        if sounding[u]:
            rows, _ = knn.topk(search, emb[u], c.k)
            np.add.at(votes, index.piece[rows], 1.0)
        if votes.max() <= 0:
            out.append({"t": t_s, "piece": None, "position_s": None, "state": "searching", "latency_ms": None})
            continue
        p = int(np.argmax(votes))
        rows = index.rows(p)
        if sounding[u]:
            best = int(np.argmax(search[rows] @ emb[u]))
            position = float(index.position_s[rows][best]) + lag_s
        else:
            position = out[-1]["position_s"] if out and out[-1]["piece"] == str(index.piece_ids[p]) else None
        out.append({"t": t_s, "piece": str(index.piece_ids[p]),
                    "position_s": None if position is None else min(position, float(index.duration_s[p])),
                    "state": "following" if position is not None else "searching", "latency_ms": None})
    return out


def system_runners(bundle, index, signal, rate) -> dict:
    """{system name: a function returning its records for one recording}."""
    from follower.engine import EngineConfig, templates_off

    shipped = EngineConfig()
    evidence_on = EngineConfig(evidence_ratio=shipped.evidence_ratio if np.isfinite(shipped.evidence_ratio)
                               else 1.5)
    return {"engine": lambda: run_engine(bundle, index, signal, rate),
            "engine_no_evidence": lambda: run_engine(bundle, index, signal, rate,
                                                     config=EngineConfig(evidence_ratio=float("inf"))),
            "engine_evidence": lambda: run_engine(bundle, index, signal, rate, config=evidence_on),
            "engine_no_rerank": lambda: run_engine(bundle, index, signal, rate,
                                                   config=EngineConfig(rerank_candidates=0)),
            "engine_no_templates": lambda: run_engine(bundle, index, signal, rate, config=templates_off()),
            "voting": lambda: run_voting(bundle, index, signal, rate),
            "voting_all": lambda: run_voting(bundle, index, signal, rate,
                                             config=EngineConfig(vote_decay_s=float("inf")))}


def compare(bundle, index, items, *, systems=DEFAULT_SYSTEMS, progress: bool = True, log_dir=None) -> dict:
    """{system: {kind: summary row}} over the items, and the per-item scores."""
    from tqdm import tqdm

    from benchmarks.metrics import score_item, summarise
    from benchmarks.warp import load_truth

    per_item = {s: [] for s in systems}
    for item in tqdm(items, desc="items", unit="item", disable=not progress):
        signal, rate = read_audio(item["audio"])
        truth = load_truth(Path(item["truth"]))
        runners = system_runners(bundle, index, signal, rate)
        for system in systems:
            fn = runners[system]
            records = fn()
            if log_dir:
                Path(log_dir).mkdir(parents=True, exist_ok=True)
                with open(Path(log_dir) / f"{system}-{item['name']}.jsonl", "w") as f:
                    f.writelines(json.dumps(r) + "\n" for r in records)
            per_item[system].append((item, score_item(records, item["piece"], truth)))
    table = {}
    for system, scored in per_item.items():
        kinds = sorted({it["kind"] for it, _ in scored})
        table[system] = {kind: summarise([s for it, s in scored if it["kind"] == kind]) for kind in kinds}
    return {"summary": table, "items": {s: {it["name"]: {"correct_at": sc.correct_at,
                                                         "time_to_stable_s": sc.time_to_stable_s,
                                                         "median_position_error_s": float(np.median(sc.position_errors_s))
                                                         if sc.position_errors_s.size else None,
                                                         "coverage": sc.coverage}
                                            for it, sc in scored} for s, scored in per_item.items()}}


def format_table(summary: dict) -> str:
    cols = [("acc_2", "acc@2s"), ("acc_5", "acc@5s"), ("acc_10", "acc@10s"), ("acc_end", "acc end"),
            ("stable_median_s", "stable id (median s)"), ("within_0.5", "pos <= 0.5 s"),
            ("within_1", "pos <= 1 s"), ("pos_median_s", "pos err median (s)"), ("coverage", "coverage")]
    lines = ["| system | material | items | " + " | ".join(c[1] for c in cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]
    for system, kinds in summary.items():
        for kind, row in kinds.items():
            vals = [f"{row[k]:.2f}" if isinstance(row[k], float) and np.isfinite(row[k]) else str(row[k])
                    for k, _ in cols]
            lines.append(f"| {system} | {kind} | {row['items']} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.decoders", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="bundle folder")
    p.add_argument("--index", required=True, help="chorale index built with that bundle")
    p.add_argument("--material", default=None, help="benchmark material folder (default data/bench/material)")
    p.add_argument("--kinds", default="chorale,bach10", help="item kinds to replay (the index must hold their pieces)")
    p.add_argument("--corpus", default=None, choices=("chorales", "piano"),
                   help="only the items of this corpus (e.g. the piano renditions of the jumps kind)")
    p.add_argument("-o", "--out", required=True, help="JSON with the summary table and per-item scores")
    p.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                   help=f"comma-separated systems to run, of {', '.join(SYSTEMS)}")
    p.add_argument("--logs", default=None, help="folder for each system's JSON-lines records per item")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    return run_main(_run, args)


def _run(args) -> int:
    from benchmarks import paths
    from follower.bundle import load_bundle
    from follower.errors import ConfigError
    from follower.index import load_index

    material = Path(args.material) if args.material else paths.work_dir() / "material"
    manifest = material / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: no benchmark material; build it with `python -m benchmarks.material`")
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()}
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown or not systems:
        raise ConfigError(f"--systems: unknown {unknown or 'empty list'}; choose from {', '.join(SYSTEMS)}")
    items = [it for it in json.loads(manifest.read_text())
             if it["kind"] in kinds and args.corpus in (None, it.get("corpus"))]
    bundle = load_bundle(args.bundle, threads=1)
    index = load_index(args.index)
    index.check_bundle(bundle.config, index_path=args.index, bundle_path=args.bundle)
    missing = sorted({it["piece"] for it in items} - set(map(str, index.piece_ids)))
    if missing:
        raise ConfigError(f"{args.index} lacks the pieces {missing[:3]}...; index the corpus the material comes from")
    result = compare(bundle, index, items, systems=systems, log_dir=args.logs)
    result["setup"] = {"bundle": str(args.bundle), "index": str(args.index), "material": str(material),
                       "kinds": sorted(kinds), "systems": list(systems), "fingerprint": bundle.config.fingerprint}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(format_table(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
