"""CPU cost of the audio encoder and of replay's processing, robust to a busy machine.

    python -m benchmarks.speed encoder exported/default/audio_encoder.float.onnx exported/default/audio_encoder.onnx
    python -m benchmarks.speed replay --bundle exported/default AUDIO... [--block 131072] [--repeats 3]
    python -m benchmarks.speed build --bundle exported/default CORPUS... [--score-encoder full shared]

``encoder``: CPU time per window of each ONNX encoder on one onnxruntime thread, at
batch sizes 1, 8, 64 and 256 (256 random spectrogram windows, median of 5 passes), as the
follower runs it (the graph of follower.onnx_graph) and, with ``--as-exported``, also the
file as exported, the two in turn.
``replay``: the engine fed each recording as ``follower replay`` feeds it (1024-sample
blocks paced, 131072-sample blocks with ``--fast``; the follower's pair of engines,
follower.two_speeds, unless ``--no-slow-players``), CPU time of ``push`` per second of
audio (the real-time factor of the processing), median of the repeats: the pushing
thread's, and the whole process's (the note templates of a new candidate are built on a
helper thread, whose CPU the first leaves out); and the process's CPU to make and warm up each
file's engine, as a batch replay (``--jsonl-dir``) does per file, median over the files after
the first (the first pays the process's own start: kernels, caches).
``build``: ``follower index build``'s own code in this process (one worker, one
onnxruntime thread), once per score encoder in turn, each repeat alternating them
(paired under the same load); snippets per CPU-second of the whole process (MIDI
reading, rolls, repeats, the encoder), so two workers on two idle cores build about
twice that per second.

They count CPU time (``time.thread_time``, and for replay also ``time.process_time``), which
other processes on a shared machine disturb far less than wall time; docs/benchmarks.md
("Speed work of 2026-12-02") quotes them. A benchmark, not a test.
"""

from __future__ import annotations

import follower.blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import time

import numpy as np

from follower.bundle import SCORE_ENCODERS


def encoder_cost(path, batches=(1, 8, 64, 256), n: int = 256, passes: int = 5, rewrite: bool = True) -> dict:
    from follower.bundle import Encoder

    enc = Encoder(path, threads=1, rewrite=rewrite)
    inp = enc.session.get_inputs()[0].shape
    x = np.random.default_rng(0).uniform(0, 3, (n, *inp[1:])).astype(np.float32)
    enc(x[:8])
    out = {}
    for bs in batches:
        runs = []
        for _ in range(passes):
            t = time.thread_time()
            for i in range(0, n, bs):
                enc(x[i:i + bs])
            runs.append((time.thread_time() - t) / n * 1e3)
        out[bs] = float(np.median(runs))
    return out


def replay_cost(bundle_dir, index_path, files, block: int, repeats: int, slow_players: bool = True) -> dict:
    """Real-time factors of each repeat: ``thread`` (the pushing thread's CPU) and ``process`` (every
    thread's)."""
    import soundfile as sf

    from follower.bundle import load_bundle
    from follower.engine import Engine
    from follower.index import load_index
    from follower.paths import resolve_bundle, resolve_index

    bundle_dir = resolve_bundle(bundle_dir)
    bundle = load_bundle(bundle_dir)
    index_path = resolve_index(index_path, bundle_dir)
    index = load_index(index_path)
    index.check_bundle(bundle.config, index_path=index_path, bundle_path=bundle_dir)
    from follower.two_speeds import TwoSpeedEngine

    make = TwoSpeedEngine if slow_players else Engine
    rtf = {"thread": [], "process": []}
    starts = []
    for _ in range(repeats):
        cpu = proc = audio_s = 0.0
        for f in files:
            audio, rate = sf.read(str(f), dtype="float32", always_2d=True)
            p = time.process_time()
            engine = make(bundle, index, input_rate_hz=rate)
            engine.warm_up()
            starts.append(time.process_time() - p)
            t, p = time.thread_time(), time.process_time()
            for i in range(0, len(audio), block):
                engine.push(audio[i:i + block], last=i + block >= len(audio))
            cpu += time.thread_time() - t
            proc += time.process_time() - p
            audio_s += len(audio) / rate
        rtf["thread"].append(cpu / audio_s)
        rtf["process"].append(proc / audio_s)
    rtf["start_ms"] = [1e3 * float(np.median(starts[1:]))] if len(starts) > 1 else []
    return rtf


def build_cost(bundle_dir, paths, encoders, repeats: int, hop_frames: int = 4) -> dict:
    """{encoder: [snippets per CPU-second of each repeat]}, and the snippet count."""
    from follower.bundle import load_bundle
    from follower.index import build_index

    bundles = {name: load_bundle(bundle_dir, score_encoder=name) for name in encoders}
    out: dict = {name: [] for name in encoders}
    n = 0
    for _ in range(repeats):
        for name in encoders:
            t = time.process_time()
            index = build_index(paths, bundles[name], hop_frames=hop_frames, workers=1, progress=False)
            out[name].append(index.n_snippets / (time.process_time() - t))
            n = index.n_snippets
    return {"per_cpu_s": out, "snippets": n}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("encoder", help="CPU time per window of ONNX encoders")
    e.add_argument("onnx", nargs="+")
    e.add_argument("--as-exported", action="store_true",
                   help="also time each file as exported, without the follower's graph rewrite")
    r = sub.add_parser("replay", help="CPU time of the engine per second of audio")
    r.add_argument("audio", nargs="+")
    r.add_argument("--bundle", default="exported/default")
    r.add_argument("--index", default=None)
    r.add_argument("--block", type=int, default=131072, help="samples per block (131072: replay --fast; 1024: paced)")
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--slow-players", action=argparse.BooleanOptionalAction, default=True,
                   help="the follower's pair of engines, as replay runs it (default); --no-slow-players: one")
    b = sub.add_parser("build", help="index build: snippets per CPU-second, per score encoder")
    b.add_argument("paths", nargs="+", metavar="PATH", help="MIDI files or folders")
    b.add_argument("--bundle", default="exported/default")
    b.add_argument("--score-encoder", nargs="+", default=["full", "shared"], choices=tuple(SCORE_ENCODERS),
                   help="score encoders to time, each of which the bundle must carry (default: the shipped "
                        "bundle's full and shared)")
    b.add_argument("--hop-frames", type=int, default=4)
    b.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.what == "build":
        cost = build_cost(args.bundle, args.paths, args.score_encoder, args.repeats, args.hop_frames)
        for name, runs in cost["per_cpu_s"].items():
            print(f"{name} score encoder: {np.median(runs):.0f} snippets per CPU-second (median; runs "
                  f"{', '.join(f'{x:.0f}' for x in runs)}) over {cost['snippets']} snippets")
    elif args.what == "encoder":
        for path in args.onnx:
            for rewrite in ((False, True) if args.as_exported else (True,)):
                cost = encoder_cost(path, rewrite=rewrite)
                how = "as run" if rewrite else "as exported"
                print(f"{path} ({how}): CPU per window " + ", ".join(f"batch {b} {ms:.3f} ms" for b, ms in cost.items()))
    else:
        rtf = replay_cost(args.bundle, args.index, args.audio, args.block, args.repeats, args.slow_players)
        engines = "two engines" if args.slow_players else "one engine"
        start_ms = rtf.pop("start_ms")
        for what, runs in rtf.items():
            med = float(np.median(runs))
            print(f"{args.bundle}, {engines}, blocks of {args.block}: CPU per second of audio ({what}) {med:.4f} "
                  f"({1 / med:.1f}x real time); runs {', '.join(f'{x:.4f}' for x in runs)}")
        if start_ms:
            print(f"{args.bundle}, {engines}: CPU to make and warm up a file's engine {start_ms[0]:.0f} ms "
                  "(median over the files after the first)")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
