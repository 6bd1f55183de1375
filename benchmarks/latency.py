"""Per-update processing latency and real-time factor of the follower against index size.

    python -m benchmarks.latency [--bundle exported/default] [--sizes chorales,100000,300000,1000000]

Pinned to one core (onnxruntime with one thread, numba's kernel is single-threaded),
the engine is fed 30 s of audio in 512-sample blocks, exactly as `follower listen`
feeds it, and every update's processing time is recorded (spectrogram share, audio
embedding, exact top-k over the whole index, voting, tracking). The chorale size
uses the shipped index when it exists; larger sizes are random unit vectors (the
search cost does not depend on the values), grouped in pieces of 500 snippets.
This is a benchmark, not a test: numbers depend on the machine; the target is
p99 well under the 50 ms hop at 1M snippets. Besides the wall-clock latency it
reports each update's CPU time (the worker thread's), which other processes on a
shared machine disturb far less.
"""

from __future__ import annotations

import follower.blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import json
import os
import platform
import time

import numpy as np


def random_index(n: int, embed_dim: int, fingerprint: str, *, per_piece: int = 500, seed: int = 0):
    from follower.index import Index

    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, embed_dim)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    n_pieces = -(-n // per_piece)
    piece = (np.arange(n) // per_piece).astype(np.int32)
    pos = (np.arange(n) % per_piece) * 0.2
    starts = np.minimum(np.arange(n_pieces + 1) * per_piece, n).astype(np.int64)
    return Index(header={"index_fingerprint": fingerprint, "hop_frames": 4}, embeddings=e.astype(np.float16),
                 piece=piece, position_s=pos.astype(np.float32), position_beats=(2 * pos).astype(np.float32),
                 piece_ids=np.array([f"random{i}" for i in range(n_pieces)]),
                 titles=np.array([f"random {i}" for i in range(n_pieces)]), piece_start=starts,
                 duration_s=np.array([0.2 * (starts[i + 1] - starts[i]) for i in range(n_pieces)], np.float32))


def test_audio(seconds: float, rate: int = 22050, seed: int = 0) -> np.ndarray:
    """Chords of harmonic tones changing twice a second: enough for the encoder to work on."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.5):
        sl = (t >= start) & (t < start + 0.5)
        for p in rng.integers(48, 80, 3):
            f = 440 * 2 ** ((p - 69) / 12)
            out[sl] += sum(np.sin(2 * np.pi * f * h * t[sl]) / h for h in (1, 2, 3))
    return (0.05 * out).astype(np.float32)


def measure(bundle, index, audio, rate, stride: int = 1, block: int = 512) -> dict:
    from follower.engine import Engine, EngineConfig

    engine = Engine(bundle, index, input_rate_hz=rate, config=EngineConfig(stride_frames=stride))
    engine.warm_up()
    latencies, cpu, busy, cpu_since = [], [], 0.0, 0.0
    for i in range(0, len(audio), block):
        t0, c0 = time.perf_counter(), time.thread_time()
        ups = engine.push(audio[i:i + block])
        busy += time.perf_counter() - t0
        cpu_since += time.thread_time() - c0
        latencies += [u.latency_ms for u in ups]
        if ups:  # this thread's CPU time since the last update, shared by this block's updates
            cpu += [cpu_since * 1e3 / len(ups)] * len(ups)
            cpu_since = 0.0
    lat, cpu = np.array(latencies), np.array(cpu)
    return {"snippets": index.n_snippets, "updates": len(lat), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
            "cpu_p50_ms": float(np.percentile(cpu, 50)), "cpu_p99_ms": float(np.percentile(cpu, 99)),
            "rtf": busy / (len(audio) / rate), "load_1min": os.getloadavg()[0]}


def main(argv=None) -> int:
    from follower.bundle import load_bundle
    from follower.index import load_index
    from follower.paths import DEFAULT_BUNDLE, resolve_bundle

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default=DEFAULT_BUNDLE)
    p.add_argument("--sizes", default="chorales,100000,300000,1000000")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    bundle_dir = resolve_bundle(args.bundle)
    bundle = load_bundle(bundle_dir, threads=1)
    fp, dim = bundle.config.fingerprint, bundle.config.embed_dim
    audio = test_audio(args.seconds)
    rows = []
    for size in args.sizes.split(","):
        if size == "chorales":
            shipped = sorted(bundle_dir.glob("*.index.npz"))
            index = load_index(shipped[0]) if shipped else random_index(56_000, dim, bundle.config.index_fingerprint)
            label = shipped[0].name if shipped else "56k random (no shipped index)"
        else:
            index, label = random_index(int(size), dim, bundle.config.index_fingerprint), "random unit vectors"
        r = measure(bundle, index, audio, 22050, stride=args.stride)
        r["index"] = label
        rows.append(r)
        print(f"{r['snippets']:>9,d} snippets ({label}): p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
              f"max {r['max_ms']:.2f} ms, real-time factor {r['rtf']:.3f}; CPU time per update p50 "
              f"{r['cpu_p50_ms']:.2f} ms, p99 {r['cpu_p99_ms']:.2f} ms (1-min load {r['load_1min']:.1f})",
              flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, pinned to one"
    print(f"\n| snippets | p50 (ms) | p99 (ms) | max (ms) | real-time factor |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['snippets']:,d} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['rtf']:.3f} |")
    print(f"\nmachine: {machine}; bundle {bundle_dir} ({fp}); update every {args.stride} frame(s) "
          f"({args.stride * 1102 / 22050 * 1e3:.0f} ms)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "bundle": str(bundle_dir), "results": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
