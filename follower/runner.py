"""The one path from an audio source to OSC, JSON lines and the console.

``follower replay`` and ``follower listen`` declare their shared options with
:func:`add_arguments` and turn the parsed values into :class:`RunOptions` with
:meth:`RunOptions.from_args`; past that point nothing here sees argparse.
:func:`load` gives the engine factory, and :func:`run` follows a source: its
blocks go through a bounded queue to a worker thread, which pushes them into the
:class:`follower.engine.Engine` and hands each update to every output (OSC, JSON
lines, the console line: each has ``emit(update)`` and ``close()``). The main
thread only waits (and turns Ctrl-C into a clean stop with the statistics).
"""

from __future__ import annotations

import argparse
import dataclasses
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .errors import BadAudioError, ConfigError
from .midi_out import MidiOutConfig
from .osc import DEFAULT_OSC, DEFAULT_PREFIX
from .pacing import Pacer
from .paths import DEFAULT_BUNDLE
from .runstats import Stats
from .view import DEFAULT_LINGER_S, DEFAULT_VIEW_HOST, DEFAULT_VIEW_PORT, ViewOptions

LOST = "lost"  # follower.engine.LOST, without importing the engine before the model is needed

if TYPE_CHECKING:
    from .engine import Engine

STALL_S = 2.0  # a live input that delivers nothing this long has stopped
BEHIND_S = 0.25  # more audio than this waiting for the worker: skip updates to catch up
BEHIND_REPORT_S = 10.0  # at most one "cannot keep up" line this often


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by replay and listen."""
    p.add_argument("--bundle", default=DEFAULT_BUNDLE, metavar="DIR",
                   help=f"model bundle (default {DEFAULT_BUNDLE}: the shipped model, from the checkout "
                        "or, once installed, from the package)")
    p.add_argument("--index", default=None, metavar="INDEX",
                   help="piece index built with that bundle (default: the *.index.npz shipped in the bundle folder)")
    p.add_argument("--osc", default=DEFAULT_OSC, metavar="HOST:PORT",
                   help=f"where to send OSC (default {DEFAULT_OSC}); sending never blocks")
    p.add_argument("--osc-prefix", default=DEFAULT_PREFIX, metavar="ADDR",
                   help=f"OSC address prefix (default {DEFAULT_PREFIX}); give each follower sending to the same "
                        "port its own, e.g. /violin")
    p.add_argument("--control", default=None, metavar="HOST:PORT",
                   help="receive OSC from the stage here (e.g. 127.0.0.1:9001): PREFIX/reset forgets everything heard "
                        "and identifies afresh (the piece starts now); PREFIX/listen 0 hears nothing (tuning, "
                        "talking, applause) until PREFIX/listen 1, which starts afresh. PREFIX is --osc-prefix")
    p.add_argument("--jsonl", default=None, metavar="PATH|-",
                   help="write one JSON object per update (keys t, piece, title, position_s, position_beats, "
                        "tempo, confidence, state, latency_ms); - = stdout (replaces the live line)")
    p.add_argument("--stats", action="store_true", help="print processing latency p50/p99 and real-time factor at the end")
    p.add_argument("--stride", type=int, default=1, metavar="FRAMES",
                   help="update every FRAMES spectrogram frames (1 = every 50 ms)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds of audio")
    p.add_argument("--quiet", action="store_true", help="no live line on the console")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (1 leaves cores to the audio)")
    p.add_argument("--search", choices=("auto", "exact", "ann"), default="auto",
                   help="neighbour search: auto = the index's approximate (faiss) structure where it carries one "
                        "(large indexes), else exact; exact = always the exact pass; ann = require the structure")
    p.add_argument("--view", action="store_true",
                   help="serve a live web page (piano roll, cursor, tempo, state, candidates); its address is "
                        "printed at start")
    p.add_argument("--view-port", type=int, default=DEFAULT_VIEW_PORT, metavar="N",
                   help=f"port of the live view (default {DEFAULT_VIEW_PORT}; 0 = any free port)")
    p.add_argument("--view-host", default=DEFAULT_VIEW_HOST, metavar="HOST",
                   help=f"address the live view binds to (default {DEFAULT_VIEW_HOST}: this machine only; "
                        "0.0.0.0 shows it to the network)")
    p.add_argument("--view-midi", action="append", default=[], metavar="DIR",
                   help="folder of the index's MIDI files, for the view's piano roll (default: the folders the "
                        "index was built from); may be repeated")
    p.add_argument("--view-linger", type=float, default=DEFAULT_LINGER_S, metavar="S",
                   help=f"keep the view up S seconds after a replay ends (default {DEFAULT_LINGER_S:g}; "
                        "Ctrl-C stops earlier)")
    p.add_argument("--midi-out", default=None, metavar="PORT",
                   help="send MIDI clock at the followed tempo, Song Position Pointer on lock and jumps, and "
                        "bar/beat as control changes to this MIDI port (name or part of it, see `follower "
                        "midi-ports`; virtual:NAME creates a port); needs the midi extra")
    p.add_argument("--midi-out-channel", type=int, default=16, metavar="1-16",
                   help="channel of the bar/beat control changes (default 16)")
    p.add_argument("--beats-per-bar", type=float, default=4.0, metavar="N",
                   help="quarter notes per bar for the bar numbers sent with --midi-out (default 4)")
    p.add_argument("--open-programme", action="store_true",
                   help="the programme may hold music that is not in the index: lock with the confidence fitted "
                        "on such music too, so that it is taken for an indexed piece less often, at the cost of "
                        "locking indexed pieces later (on the benchmark sets median +0-0.3 s, p90 +0-1.0 s)")
    p.add_argument("--slow-players", action=argparse.BooleanOptionalAction, default=True,
                   help="also follow with a second engine that hears the audio twice as fast, and report it where "
                        "the player is far slower than the MIDI's written tempo (below about 0.55x; a file's tempo "
                        "is often a default); about 1.25x the processing of one engine on the benchmark sets "
                        "(default: on; --no-slow-players: the one engine)")
    p.add_argument("--from-the-top", action=argparse.BooleanOptionalAction, default=True,
                   help="a lock within 8 s of the music starting takes the piece's beginning where the notes heard "
                        "sound the same there (an opening played twice), else the earliest earlier place that "
                        "plays the same notes (a passage written out twice); --no-from-the-top for rehearsals "
                        "that restart at a later statement of a repeated passage (default: on)")
    p.add_argument("--a4-hz", type=float, default=None, metavar="HZ",
                   help="the players' concert pitch, e.g. 415 (baroque pitch) or 430: the audio is heard as if "
                        "tuned to 440 Hz, as the index is. Without it the follower finds the tuning from the "
                        "audio, but only within about 40 cents of 440 (a semitone away sounds like another "
                        "key: say 415 here)")
    p.add_argument("--follow-tuning", action=argparse.BooleanOptionalAction, default=True,
                   help="find how far the music is tuned from A4 = 440 Hz and hear it as if at 440, where it is "
                        "25-40 cents off (from about half a second of music on; a notice on stderr says so); "
                        "--no-follow-tuning hears everything at 440 (default: on)")
    p.add_argument("--max-lag", type=float, default=BEHIND_S, metavar="S",
                   help=f"live or real-time audio that may wait for processing before updates are skipped to catch "
                        f"up (default {BEHIND_S}; the output then stays within about S of the audio); inf = never "
                        "skip (the queue may grow up to --buffer)")


@dataclass(frozen=True)
class RunOptions:
    """What a run needs to know, built from the command line by :meth:`from_args`."""

    bundle_dir: str = DEFAULT_BUNDLE      # as given; a relative default is found in the checkout
    index_path: str | None = None         # None: the *.index.npz shipped in the bundle folder
    osc_target: str = DEFAULT_OSC         # HOST:PORT
    jsonl_path: str | None = None         # one JSON object per update; "-" = stdout; None = none
    console: bool = True                  # the live line on stdout (never together with JSON lines there)
    stats: bool = False                   # the statistics line on stderr at the end
    stride_frames: int = 1                # an update every this many spectrogram frames
    duration_s: float | None = None       # stop after this much audio; None = when the source ends
    onnx_threads: int = 1                 # onnxruntime intra-op threads of each encoder
    search: str = "auto"                  # EngineConfig.search: auto, exact or ann (follower.ann)
    view: ViewOptions | None = None       # the live web page (--view); None = none
    midi_out: str | None = None           # MIDI output port for clock, song position and bar/beat
    midi_out_config: MidiOutConfig = MidiOutConfig()
    max_lag_s: float = BEHIND_S           # waiting audio beyond this: skip updates to catch up (inf = never)
    osc_prefix: str = DEFAULT_PREFIX      # replaces /follower in every OSC address
    reconnect: bool = False               # live audio input: wait for a vanished device to come back (listen)
    open_programme: bool = False          # music outside the index may be played: the lock fitted for that
    slow_players: bool = True             # a second engine at twice the speed for players far below the written tempo
    from_the_top: bool = True             # a lock soon after the music starts weighs the piece's beginning
    a4_hz: float | None = None            # the players' concert pitch (follower.tuning); None: found from the audio
    follow_tuning: bool = True            # find the tuning from the audio (where a4_hz is None)
    control: str | None = None            # HOST:PORT where OSC from the stage is received (follower.control)

    def __post_init__(self):
        from .osc import check_prefix

        check_prefix(self.osc_prefix)
        if not self.max_lag_s > 0:
            raise ConfigError(f"--max-lag {self.max_lag_s} must be a positive number of seconds (or inf)")
        if self.stride_frames < 1:
            raise ConfigError(f"--stride {self.stride_frames} must be a positive number of frames")
        if self.a4_hz is not None:
            from .tuning import TuningConfig

            TuningConfig(a4_hz=self.a4_hz)  # refused here, in one line, if it is no concert pitch
        if self.console and self.jsonl_path == "-":
            raise ConfigError("the live line and JSON lines cannot share stdout; turn the console off")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunOptions:
        """The options :func:`add_arguments` declared, as parsed."""
        return cls(bundle_dir=args.bundle, index_path=args.index, osc_target=args.osc,
                   jsonl_path=args.jsonl or None,
                   console=not args.quiet and args.jsonl != "-",  # JSON lines on stdout replace the live line
                   stats=args.stats, stride_frames=args.stride, duration_s=args.duration,
                   onnx_threads=args.threads, search=getattr(args, "search", "auto"),
                   max_lag_s=getattr(args, "max_lag", BEHIND_S),
                   osc_prefix=getattr(args, "osc_prefix", DEFAULT_PREFIX),
                   reconnect=getattr(args, "reconnect", False),
                   open_programme=getattr(args, "open_programme", False),
                   slow_players=getattr(args, "slow_players", True),
                   from_the_top=getattr(args, "from_the_top", True),
                   a4_hz=getattr(args, "a4_hz", None), follow_tuning=getattr(args, "follow_tuning", True),
                   control=getattr(args, "control", None),
                   view=ViewOptions(host=args.view_host, port=args.view_port, midi_dirs=tuple(args.view_midi),
                                    linger_s=args.view_linger) if getattr(args, "view", False) else None,
                   midi_out=getattr(args, "midi_out", None),
                   midi_out_config=MidiOutConfig(channel=getattr(args, "midi_out_channel", 16),
                                                 beats_per_bar=getattr(args, "beats_per_bar", 4.0)))


def load(options: RunOptions) -> Callable[[float], Engine]:
    """Load the bundle and the index, check that they belong together; return ``make_engine(input_rate_hz)``.

    The encoders are warmed up here; every engine the factory makes shares them and the index.
    """
    from .bundle import load_bundle
    from .engine import Engine, EngineConfig
    from .index import load_index
    from .paths import resolve_bundle, resolve_index

    bundle_dir = resolve_bundle(options.bundle_dir)
    bundle = load_bundle(bundle_dir, threads=max(1, options.onnx_threads))
    index_path = resolve_index(options.index_path, bundle_dir)
    index = load_index(index_path)
    index.check_bundle(bundle.config, index_path=index_path, bundle_path=bundle_dir)
    config = EngineConfig(stride_frames=options.stride_frames, search=options.search)
    if options.open_programme:
        from .engine import open_programme

        config = open_programme(config)
    if options.a4_hz is not None or not options.follow_tuning:  # (follower.tuning)
        from .tuning import TuningConfig

        config = dataclasses.replace(config, tuning=TuningConfig(a4_hz=options.a4_hz, auto=options.follow_tuning))
    if not options.from_the_top and config.fine is not None:  # (follower.start_prior)
        config = dataclasses.replace(config, fine=dataclasses.replace(config.fine, start_prior_s=0.0))
    from .ann import make_search

    make_search(index, index.embeddings[:0], options.search, index_path=str(index_path))  # refuse early, one line

    def make_engine(input_rate_hz: float, *, midi: bool = False) -> Engine:
        if midi:  # piano-roll frames from a MIDI source (follower.midi_engine)
            from .midi_engine import MidiEngine

            return MidiEngine(bundle, index, config=config)
        if options.slow_players:  # (follower.two_speeds)
            from .two_speeds import TwoSpeedEngine

            return TwoSpeedEngine(bundle, index, input_rate_hz=input_rate_hz, config=config)
        return Engine(bundle, index, input_rate_hz=input_rate_hz, config=config)

    return make_engine


class Output(Protocol):
    """Where updates go: :class:`follower.osc.OscSender`, :class:`follower.jsonlog.JsonlWriter`,
    :class:`follower.console.Console`, :class:`follower.view.LiveView`."""

    def emit(self, update) -> None: ...

    def close(self) -> None: ...


def _lost(update):
    """The last update, restated as ``lost``: what the outputs hear when the input disappears."""
    return dataclasses.replace(update, state=LOST, state_changed=update.state != LOST, latency_ms=0.0,
                               piece_changed=False)


def _say_tuning(engine, said: int, name: str) -> int:
    """One line on stderr when the front end starts (or stops) hearing the music off 440 Hz; the cents said."""
    cents = getattr(engine, "tuning_cents", 0)  # (a MIDI source has none)
    if cents != said:
        from .tuning import tuning_notice

        print(tuning_notice(name, cents), file=sys.stderr, flush=True)
    return cents


def run(source, make_engine, options: RunOptions, *, observers=(), stats: Stats | None = None) -> int:
    """Follow ``source`` until it ends, ``options.duration_s`` is reached, Ctrl-C or SIGTERM; return the exit code.

    ``observers`` get every update after the outputs (``emit(update)``, ``close()``);
    they may read ``stats`` and the block queue (``observer.blocks`` is set before the
    audio starts) -- the soak benchmark watches a run this way.

    Falling behind: a live input (or a file replayed in real time) cannot wait for
    the worker. When more than ``options.max_lag_s`` of audio is waiting, the worker takes
    all of it at once and computes only the newest update over it (the skipped
    updates' audio still enters the window), so the queue never grows and the output
    stays within about that plus one update of the audio; it then computes one update
    per two or four hops of audio until its measured processing time says every update
    fits again (:mod:`follower.pacing`). It says so on stderr (at most once every
    ``BEHIND_REPORT_S``) and counts the skipped updates in ``--stats`` and in each JSON
    line (``skipped``, with the update's ``lag_ms``).

    A live input that disappears (the stream ends, or nothing arrives for ``STALL_S``)
    ends the run with one line, after a last ``lost`` to the outputs; with
    ``options.reconnect`` the worker says ``lost`` and waits for the device to come back
    (:meth:`follower.audio_io.DeviceSource.reopen`), then searches for the piece again.
    """
    from .audio_io import EOF, BlockQueue, DeviceSource
    from .console import Console
    from .jsonlog import JsonlWriter
    from .osc import OscSender

    osc = OscSender(options.osc_target, options.osc_prefix)  # opened first: an unusable target is refused before any file is written
    outputs: list[Output] = [osc]
    control = None
    if options.control:
        from .control import Control

        try:
            control = Control(options.control, options.osc_prefix)
        except BaseException:
            osc.close()
            raise
    if options.midi_out:
        from .midi_out import MidiClockOut

        outputs.append(MidiClockOut(options.midi_out, realtime=source.realtime, config=options.midi_out_config))
    jsonl = None
    if options.jsonl_path:
        jsonl = JsonlWriter(options.jsonl_path)
        outputs.append(jsonl)
    if options.console:
        outputs.append(Console())
    outputs += list(observers)
    # a MIDI source delivers piano-roll frames, which the MIDI engine reads (follower.midi_sources)
    engine = make_engine(source.rate_hz, midi=True) if getattr(source, "is_midi", False) else make_engine(source.rate_hz)
    engine.warm_up()  # numba compiled (or loaded from cache) and onnxruntime run before audio starts
    def close_outputs() -> None:  # the view, observers, the console's last line, the OSC socket (`stopped`) last
        for o in reversed(outputs):
            o.close()
        if control is not None:
            control.close()

    view = None
    if options.view is not None:
        from .view import start_view

        try:
            view = start_view(options, engine.index)
        except BaseException:  # e.g. the port is taken: what is already open is closed, then one line
            close_outputs()
            raise
        outputs.append(view)
    stats = stats if stats is not None else Stats()
    blocks = BlockQueue(source.queue_blocks)
    for o in observers:
        o.blocks = blocks
    stop = threading.Event()
    finished = threading.Event()  # the worker is done (waiting on it, unlike Thread.join, is safe to interrupt)
    failure: list = []
    live = isinstance(source, DeviceSource)
    paced = live or getattr(source, "realtime", False)  # audio that will not wait for the worker
    last_update: list = []

    def emit(u) -> None:
        for o in outputs:
            o.emit(u)

    pacer = Pacer(options.max_lag_s, engine.update_s)
    from .control import Listening

    listening = Listening(control, source.name)
    tuning_said = [0]  # the tuning (cents from 440) the last notice gave

    def wait_for_input(reason: str) -> bool:
        """--reconnect: tell the outputs the input is gone, wait until it is back; False if stopped meanwhile."""
        if last_update:
            emit(_lost(last_update[0]))  # Max hears that the input is gone
        print(f"warning: {reason}; waiting for it to come back (--reconnect)", file=sys.stderr, flush=True)
        if not source.reopen(blocks, stop):
            return False
        engine.restart()  # the music went on without us: identify it afresh, on the same clock
        stats.reconnects += 1
        print(f"{source.name} is back; following again", file=sys.stderr, flush=True)
        return True

    def work():
        try:
            done = 0.0
            pending: list = []       # (arrival, item) taken from the queue but not yet processed
            held: list = []          # blocks kept for the next update while strided (follower.pacing)
            behind_told = -1e9
            behind = False
            while not stop.is_set():
                if pending:
                    stamp, block = pending.pop(0)
                else:
                    try:  # short waits, so that a stop (Ctrl-C, SIGTERM) is seen at once
                        block = blocks.get(timeout=0.1)
                    except queue.Empty:
                        # a live input that went quiet would still deliver (silent) blocks
                        if live and time.monotonic() - blocks.stamp > STALL_S:
                            reason = f"{source.name} delivered no audio for {STALL_S:.0f} s (disconnected?)"
                            if not options.reconnect:
                                raise BadAudioError(f"{reason}; check the device and restart") from None
                            if not wait_for_input(reason):
                                return
                            held, pending, behind = [], [], False
                        continue
                    stamp = blocks.stamp
                if isinstance(block, Exception):
                    raise block
                last = block is EOF
                if last and live and not stop.is_set():
                    reason = f"{source.name} stopped (the device disappeared?)"
                    if not options.reconnect:
                        raise BadAudioError(f"{reason}; reconnect it and restart `follower listen` "
                                            "(or run it with --reconnect)")
                    if not wait_for_input(reason):
                        return
                    held, pending, behind = [], [], False
                    continue
                chunk, held = held + ([] if last else [block]), []
                newest = stamp           # arrival of the newest audio this push covers
                catch_up = False
                if paced and not last and blocks.depth() * len(block) / source.rate_hz > options.max_lag_s:
                    waiting = blocks.drain()
                    while waiting and isinstance(waiting[0][1], np.ndarray):
                        newest, b = waiting.pop(0)
                        chunk.append(b)
                    pending.extend(waiting)  # the end marker or an error, handled next
                    catch_up = True
                    backlog_s = sum(len(b) for b in chunk) / source.rate_hz
                    stats.max_backlog_s = max(stats.max_backlog_s, backlog_s)
                    if not behind:
                        stats.behind += 1
                        behind = True
                        now = time.monotonic()
                        pacer.fell_behind(now)
                        if now - behind_told >= BEHIND_REPORT_S:
                            behind_told = now
                            print(f"warning: processing cannot keep up with the audio ({backlog_s:.2f} s waiting); "
                                  "computing fewer updates until it can (counted in --stats)",
                                  file=sys.stderr, flush=True)
                else:
                    if behind and blocks.depth() == 0:
                        behind = False
                    if paced and not last and not pacer.enough(sum(len(b) for b in chunk) / source.rate_hz):
                        held = chunk  # strided: wait for the audio of the next update
                        continue
                data = np.concatenate(chunk) if chunk else np.zeros((0, 1), np.float32)
                if options.duration_s is not None:
                    room = int(max(options.duration_s - done, 0) * source.rate_hz)
                    if len(data) >= room:
                        data, last = data[:room], True
                listening.apply(engine, done)  # the stage's messages, between two pushes (follower.control)
                data = listening.heard(data)
                t0 = time.perf_counter()
                skipped = engine.skipped_updates
                try:
                    updates = engine.push(data, last=last,
                                          max_updates=1 if catch_up or (paced and pacer.level > 1) else None)
                except BadAudioError as e:
                    raise BadAudioError(f"{source.name}: {e}") from e
                busy = time.perf_counter() - t0
                stats.skipped += engine.skipped_updates - skipped
                stats.busy_s += busy
                done += len(data) / source.rate_hz
                stats.audio_s = done
                now = time.monotonic()
                if paced:
                    pacer.processed(now, busy)
                    stats.max_stride = max(stats.max_stride, pacer.max_level)
                lag_ms = (now - newest) * 1e3 if paced else None
                for u in updates:
                    u.lag_ms, u.skipped = lag_ms, stats.skipped
                    stats.latency.add(u.latency_ms)
                    if paced:
                        stats.lag.add(lag_ms)
                    emit(u)
                if updates:
                    last_update[:] = updates[-1:]
                tuning_said[0] = _say_tuning(engine, tuning_said[0], source.name)
                if last:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, printed as one line
            if isinstance(e, BadAudioError) and live and last_update:
                try:
                    emit(_lost(last_update[0]))  # Max hears that the input is gone before `stopped`
                except Exception:  # noqa: BLE001 - the failure itself is what gets reported
                    pass
            failure.append(e)
        finally:
            stop.set()
            finished.set()

    def terminate(signum, frame):  # SIGTERM (a service manager, kill): stop as Ctrl-C does
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, terminate)
    worker = threading.Thread(target=work, name="follower-worker", daemon=True)
    worker.start()
    interrupted = False
    try:
        try:
            source.start(blocks, stop)
            while not finished.wait(0.2):
                pass
            if view is not None and not failure and options.view.linger_s > 0:  # the page stays for a last look
                source.stop()  # a live input is released now, not after the linger
                view.finish()
                print(f"input ended; the live view stays at {view.url} for {options.view.linger_s:g} s "
                      "(Ctrl-C stops it)", file=sys.stderr, flush=True)
                view.linger(options.view.linger_s)
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            finished.wait(2)
        except BaseException:
            stop.set()
            raise
        finally:
            stop.set()
            source.stop()
            close_outputs()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if options.stats:
        print(stats.report(source, blocks, osc), file=sys.stderr)
    if failure and not interrupted:
        raise failure[0]
    return 2 if jsonl is not None and jsonl.failed else 0
