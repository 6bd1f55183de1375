"""The one path from an audio source to OSC, JSON lines and the console.

``follower replay`` and ``follower listen`` both call :func:`run`: the source's
blocks go through a bounded queue to a worker thread, which pushes them into the
:class:`follower.engine.Engine` and hands each update to the outputs. The main
thread only waits (and turns Ctrl-C into a clean stop with the statistics).
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time

import numpy as np

from .errors import BadAudioError
from .osc import DEFAULT_OSC
from .paths import DEFAULT_BUNDLE

STALL_S = 2.0  # a live input that delivers nothing this long has stopped


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by replay and listen."""
    p.add_argument("--bundle", default=DEFAULT_BUNDLE, metavar="DIR",
                   help=f"model bundle (default {DEFAULT_BUNDLE})")
    p.add_argument("--index", default=None, metavar="INDEX",
                   help="piece index built with that bundle (default: the *.index.npz shipped in the bundle folder)")
    p.add_argument("--osc", default=DEFAULT_OSC, metavar="HOST:PORT",
                   help=f"where to send OSC (default {DEFAULT_OSC}); sending never blocks")
    p.add_argument("--jsonl", default=None, metavar="PATH|-",
                   help="write one JSON object per update (keys t, piece, title, position_s, position_beats, "
                        "tempo, confidence, state, latency_ms); - = stdout (replaces the live line)")
    p.add_argument("--stats", action="store_true", help="print processing latency p50/p99 and real-time factor at the end")
    p.add_argument("--stride", type=int, default=1, metavar="FRAMES",
                   help="update every FRAMES spectrogram frames (1 = every 50 ms)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds of audio")
    p.add_argument("--quiet", action="store_true", help="no live line on the console")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (1 leaves cores to the audio)")


def load(args):
    """Bundle, index (checked against each other) and engine, warmed up."""
    from .bundle import load_bundle
    from .engine import Engine, EngineConfig
    from .errors import ConfigError
    from .index import load_index
    from .paths import resolve_bundle, resolve_index

    if args.stride < 1:
        raise ConfigError(f"--stride {args.stride} must be a positive number of frames")
    bundle_dir = resolve_bundle(args.bundle)
    bundle = load_bundle(bundle_dir, threads=max(1, args.threads))
    index_path = resolve_index(args.index, bundle_dir)
    index = load_index(index_path)
    index.check_bundle(bundle.config, index_path=index_path, bundle_path=bundle_dir)
    return bundle, index, lambda rate: Engine(bundle, index, input_rate_hz=rate,
                                              config=EngineConfig(stride_frames=args.stride))


class Stats:
    """What ``--stats`` reports: the worker's processing time per update and in all, against audio time."""

    def __init__(self):
        self.latency_ms: list = []
        self.busy_s = 0.0
        self.audio_s = 0.0

    def report(self, source, blocks, osc) -> str:
        lat = np.array(self.latency_ms) if self.latency_ms else np.zeros(1)
        rtf = self.busy_s / self.audio_s if self.audio_s else float("nan")
        return (f"stats: {len(self.latency_ms)} updates over {self.audio_s:.1f} s of audio; latency per update "
                f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms, "
                f"max {lat.max():.2f} ms; real-time factor {rtf:.3f} (processing / audio time); "
                f"input overflows {source.overflows}, blocks dropped {blocks.dropped}; "
                f"OSC sent {osc.sent}, send errors {osc.errors}")


def run(source, make_engine, args) -> int:
    """Follow ``source`` until it ends, ``--duration`` is reached or Ctrl-C; return the exit code."""
    from .audio_io import EOF, BlockQueue, DeviceSource
    from .console import Console
    from .jsonlog import JsonlWriter
    from .osc import OscSender

    osc = OscSender(args.osc)  # opened first: an unusable target is refused before any file is written
    jsonl = JsonlWriter(args.jsonl) if args.jsonl else None
    console = None if (args.quiet or (jsonl and jsonl.to_stdout)) else Console()
    outputs = [o for o in (osc, jsonl, console) if o is not None]
    engine = make_engine(source.rate_hz)
    engine.warm_up()  # numba compiled (or loaded from cache) and onnxruntime run before audio starts
    stats = Stats()
    blocks = BlockQueue(source.queue_blocks)
    stop = threading.Event()
    failure: list = []

    live = isinstance(source, DeviceSource)

    def work():
        try:
            done = 0.0
            while not stop.is_set():
                try:
                    block = blocks.get(timeout=STALL_S)
                except queue.Empty:
                    if live:  # a live input that went quiet would still deliver (silent) blocks
                        raise BadAudioError(f"{source.name} delivered no audio for {STALL_S:.0f} s "
                                            "(disconnected?); check the device and restart") from None
                    continue
                if isinstance(block, Exception):
                    raise block
                last = block is EOF
                if last and live and not stop.is_set():
                    raise BadAudioError(f"{source.name} stopped (the device disappeared?); "
                                        "reconnect it and restart `follower listen`")
                data = np.zeros((0, 1), np.float32) if last else block
                if args.duration is not None:
                    room = int(max(args.duration - done, 0) * source.rate_hz)
                    if len(data) >= room:
                        data, last = data[:room], True
                t0 = time.perf_counter()
                try:
                    updates = engine.push(data, last=last)
                except BadAudioError as e:
                    raise BadAudioError(f"{source.name}: {e}") from e
                stats.busy_s += time.perf_counter() - t0
                done += len(data) / source.rate_hz
                stats.audio_s = done
                for u in updates:
                    stats.latency_ms.append(u.latency_ms)
                    for o in outputs:
                        o.emit(u)
                if last:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, printed as one line
            failure.append(e)
        finally:
            stop.set()

    worker = threading.Thread(target=work, name="follower-worker", daemon=True)
    worker.start()
    interrupted = False
    try:
        source.start(blocks, stop)
        while worker.is_alive():
            worker.join(timeout=0.2)
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        worker.join(timeout=2)
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()
        source.stop()
        for o in reversed(outputs):  # the console's last line first, the OSC socket last
            o.close()
    if args.stats:
        print(stats.report(source, blocks, osc), file=sys.stderr)
    if failure and not interrupted:
        raise failure[0]
    return 0
