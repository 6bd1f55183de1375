"""Soak and load: a long concert programme, in real time, through the real capture path.

``python -m benchmarks.soak --minutes 60`` renders a programme (corpus pieces back
to back at different tempi and instruments, pauses, applause-like noise, a piece
that is not in the corpus), loops it to fill the time, and plays it into PortAudio
through an ALSA ``file`` plugin capture device (the one the listen tests use)
whose input is a named pipe. A player process writes the pipe 512 frames at a time
(one atomic 2 KiB write, one capture period), paced by the clock, so the capture
delivers audio at exactly the rate a sound card would. The follower runs in this
process as ``follower listen`` does (:func:`follower.runner.run` with a
:class:`follower.audio_io.DeviceSource`); an observer records every update.

Recorded: RSS and the machine's load average once a second, per-update processing latency (wall
time) and the processing thread's CPU time per update (``time.thread_time``: on a shared machine
the wall time follows the other users' load, the CPU time is the follower's own cost), the output
lag (wall time minus the audio time the update covers, relative to the run's quickest update),
queue depth, dropped blocks and input overflows, skipped updates, and the
state/piece sequence, which is scored against the programme.

``--busy N --busy-from A --busy-until B`` adds N busy Python worker processes
(niced 0, like the follower) between minutes A and B: the load run. Results go to
``--out`` (summary.json, updates.npz) and the summary is printed as markdown.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 22050
BLOCK = 512  # frames per capture period and per write into the pipe (2 KiB: atomic)
STATES = ("searching", "following", "lost")

ASOUNDRC = """\
pcm.follower_soak {{
    type file
    slave.pcm {{
        type null
    }}
    file "/dev/null"
    infile "{fifo}"
    format "raw"
    hint.description "follower soak capture"
}}
"""


@dataclass(frozen=True)
class Segment:
    kind: str            # "piece" (in the corpus), "outside" (not in the corpus), "pause", "applause"
    piece: str | None    # index id of a corpus piece
    start_s: float       # programme time
    duration_s: float
    tempo: float = 1.0


# -- the programme ---------------------------------------------------------------------

def _render(midi: Path, tempo: float, programs: list[int], soundfont: str, max_s: float) -> np.ndarray:
    from follower.midi import load_midi
    from training.data.synth import Renderer, RenderSettings

    notes = load_midi(midi).notes.copy()
    notes = notes[notes["start_s"] < max_s * tempo]
    notes["start_s"] /= tempo
    notes["end_s"] = np.minimum(notes["end_s"] / tempo, max_s)
    r = Renderer(RenderSettings(sample_rate_hz=RATE))
    try:
        tracks = np.unique(notes["track"])
        audio = r.render(notes, {int(t): programs[i % len(programs)] for i, t in enumerate(tracks)}, soundfont)
    finally:
        r.close()
    peak = float(np.abs(audio).max()) or 1.0
    return (audio * (0.5 / peak)).astype(np.float32)


def applause(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Many hands: dense random claps (short decaying noise bursts), loud, then fading."""
    n = int(seconds * RATE)
    out = np.zeros(n, np.float32)
    clap = int(0.012 * RATE)
    env = np.exp(-np.arange(clap) / (0.003 * RATE)).astype(np.float32)
    for start in rng.integers(0, n - clap, int(seconds * 60)):
        out[start:start + clap] += rng.normal(0, 1, clap).astype(np.float32) * env * rng.uniform(0.2, 1.0)
    out *= np.linspace(1.0, 0.2, n, dtype=np.float32)
    return 0.4 * out / max(float(np.abs(out).max()), 1e-6)


def room_tone(rng: np.random.Generator, seconds: float) -> np.ndarray:
    return (0.002 * rng.normal(0, 1, int(seconds * RATE))).astype(np.float32)


def build_programme(corpus: Path, pieces: list[str], outside: Path, soundfont: str, seed: int,
                    piece_s: float) -> tuple[np.ndarray, list[Segment]]:
    """Pieces back to back (the first two without a gap), a pause, applause, the outside piece."""
    rng = np.random.default_rng(seed)
    parts, segments, t = [], [], 0.0
    ensembles = [[0, 0, 0, 0], [73, 71, 41, 70], [52, 52, 52, 52], [40, 41, 42, 43], [19, 19, 19, 19]]

    def add(kind, audio, piece=None, tempo=1.0):
        nonlocal t
        parts.append(audio)
        segments.append(Segment(kind, piece, round(t, 3), round(len(audio) / RATE, 3), tempo))
        t += len(audio) / RATE

    for i, pid in enumerate(pieces):
        tempo = float(rng.choice([0.85, 1.0, 1.15]))
        add("piece", _render(corpus / f"{pid}.mid", tempo, ensembles[i % len(ensembles)], soundfont, piece_s),
            pid, tempo)
        if i == 0:
            continue  # the second piece follows at once: a change of piece without a pause
        add("pause", room_tone(rng, 6.0))
        if i % 2 == 0:
            add("applause", applause(rng, 5.0))
            add("pause", room_tone(rng, 3.0))
        if i == len(pieces) // 2:
            add("outside", _render(outside, 1.0, [0, 0, 0, 0], soundfont, piece_s))
            add("pause", room_tone(rng, 4.0))
    return np.concatenate(parts), segments


def default_pieces(corpus: Path, n: int, seed: int) -> list[str]:
    rows = list(csv.DictReader(open(corpus / "splits.csv"))) if (corpus / "splits.csv").is_file() else []
    files = [r["file"] for r in rows if r["split"] == "test"] or sorted(p.name for p in corpus.glob("*.mid"))
    rng = np.random.default_rng(seed)
    return [Path(files[i]).stem for i in sorted(rng.choice(len(files), size=min(n, len(files)), replace=False))]


# -- the player: a separate process writing the pipe in real time ----------------------

PLAYER = r"""
import os, sys, time
import numpy as np
fifo, raw, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
fd = os.open(fifo, os.O_RDWR)  # read-write: never blocks, and PortAudio's probing open finds a writer
audio = np.fromfile(raw, dtype="<f4")
print("ready", flush=True)
sys.stdin.readline()  # go
total = int(seconds * %(rate)d)
t0 = time.monotonic()
sent = 0
block = %(block)d
while sent < total:
    i = sent %% len(audio)
    chunk = audio[i:i + block]
    if len(chunk) < block:
        chunk = np.concatenate([chunk, audio[:block - len(chunk)]])
    os.write(fd, chunk.tobytes())
    sent += block
    wait = t0 + sent / %(rate)d - 0.05 - time.monotonic()  # stay 50 ms ahead of the capture
    if wait > 0:
        time.sleep(wait)
""" % {"rate": RATE, "block": BLOCK}


BUSY = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\nx = 0\n" \
       "while time.monotonic() < end:\n    x += 1\n"


# -- the observer ------------------------------------------------------------------------

class Recorder:
    """Every update into preallocated arrays (no growth during the run); RSS once a second."""

    def __init__(self, capacity: int, pieces: list[str], stats):
        self.n = 0
        self.cap = capacity
        self.t = np.zeros(capacity, np.float32)
        self.wall = np.zeros(capacity, np.float64)
        self.latency = np.zeros(capacity, np.float32)
        # CPU time of the processing thread since its previous update (every push in between and the
        # outputs): what the follower itself spent, whatever else runs on the machine. NaN for the first.
        self.cpu_ms = np.full(capacity, np.nan, np.float32)
        self._cpu_last = None
        self.depth = np.zeros(capacity, np.int16)
        self.state = np.zeros(capacity, np.int8)
        self.piece = np.full(capacity, -1, np.int16)
        self.ids = {p: i for i, p in enumerate(pieces)}
        self.stats = stats
        self.blocks = None          # set by follower.runner.run
        self.t_start = None         # monotonic time of the first captured sample (as the first update says)
        self.rss_mb = []            # (wall, MB) once a second, from the sampler thread
        self.drops = []             # (wall, dropped blocks, overflows, skipped updates)
        self._stop = threading.Event()

    def emit(self, u) -> None:
        now = time.monotonic()
        cpu = time.thread_time()  # emit runs on the processing thread (follower.runner's worker)
        if self.t_start is None:
            self.t_start = now - u.t  # the capture started this long ago (as far as the follower knows)
        if self.n >= self.cap:
            return
        i = self.n
        self.t[i], self.wall[i], self.latency[i] = u.t, now, u.latency_ms
        if self._cpu_last is not None:
            self.cpu_ms[i] = (cpu - self._cpu_last) * 1e3
        self._cpu_last = cpu
        self.depth[i] = self.blocks.depth() if self.blocks is not None else -1
        self.state[i] = STATES.index(u.state) if u.state in STATES else -1
        self.piece[i] = self.ids.get(u.piece, -2) if u.piece is not None else -1
        self.n += 1

    def close(self) -> None:
        self._stop.set()

    def save(self, path: Path) -> None:
        """Every update and the once-a-second samples (read back by :func:`resummarise`)."""
        n = self.n
        np.savez_compressed(path, t=self.t[:n], wall=self.wall[:n], latency_ms=self.latency[:n],
                            cpu_ms=self.cpu_ms[:n], depth=self.depth[:n], state=self.state[:n],
                            piece=self.piece[:n], rss_mb=np.array(self.rss_mb), drops=np.array(self.drops))

    def sample(self, source) -> None:
        page_kb = os.sysconf("SC_PAGE_SIZE") / 1024
        while not self._stop.wait(1.0):
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page_kb / 1024
            with open("/proc/loadavg") as f:
                load1 = float(f.read().split()[0])
            self.rss_mb.append((time.monotonic(), rss, load1))
            dropped = self.blocks.dropped if self.blocks is not None else 0
            self.drops.append((time.monotonic(), dropped, source.overflows, self.stats.skipped))


# -- scoring ---------------------------------------------------------------------------

def score(rec: Recorder, segments: list[Segment], programme_s: float, pieces: list[str]) -> dict:
    """Per segment kind: how often the follower named the played piece (after 10 s of it), or any piece."""
    n = rec.n
    t = rec.t[:n].astype(np.float64)
    loop_t = np.mod(t, programme_s)
    out = {"pieces_right": 0, "pieces": 0, "piece_time_right": 0.0, "outside_false_follow": 0.0}
    seg_of = np.searchsorted([s.start_s for s in segments], loop_t, side="right") - 1
    follow = rec.state[:n] == STATES.index("following")
    per_piece = []
    for k, s in enumerate(segments):
        sel = seg_of == k
        if s.kind == "piece":
            late = sel & (loop_t >= s.start_s + 10.0)
            if late.any():
                right = follow[late] & (rec.piece[:n][late] == pieces.index(s.piece))
                per_piece.append(float(right.mean()))
        elif s.kind == "outside" and sel.any():
            out["outside_false_follow"] = max(out["outside_false_follow"], float(follow[sel].mean()))
    out["pieces"] = len(per_piece)
    out["pieces_right"] = int(sum(p >= 0.5 for p in per_piece))
    out["piece_time_right"] = float(np.mean(per_piece)) if per_piece else float("nan")
    return out


def state_sequence(rec: Recorder, pieces: list[str], limit: int = 400) -> list[str]:
    """Runs of (state, piece) with the audio time each began."""
    runs, prev = [], None
    for i in range(rec.n):
        key = (int(rec.state[i]), int(rec.piece[i]))
        if key != prev:
            p = key[1]
            name = pieces[p] if p >= 0 else ("-" if p == -1 else "other")
            runs.append(f"{rec.t[i]:.1f}s {STATES[key[0]]} {name}")
            prev = key
    return runs[:limit]


def window_percentile(values: np.ndarray, rec: Recorder, start_s: float, end_s: float, q: float) -> float | None:
    """The q-th percentile of the updates whose audio time lies in [start_s, end_s); NaNs left out."""
    sel = (rec.t[:rec.n] >= start_s) & (rec.t[:rec.n] < end_s)
    v = values[:rec.n][sel]
    v = v[np.isfinite(v)]
    return round(float(np.percentile(v, q)), 2) if len(v) else None


def cost_windows(rec: Recorder, total_s: float, win: float) -> dict:
    """p50 / p99 of the wall latency and of the thread CPU time, whole run and first / last window."""
    out = {}
    spans = {"": (0.0, total_s + 1), "_first_window": (0.0, win), "_last_window": (total_s - win, total_s + 1)}
    for name, values in (("latency", rec.latency), ("cpu", rec.cpu_ms)):
        for q in (50, 99):
            for suffix, (lo, hi) in spans.items():
                out[f"{name}_p{q}{suffix}_ms"] = window_percentile(values, rec, lo, hi, q)
    # the thread's CPU seconds per second of audio: unlike a percentile per update it does not move when
    # updates are skipped under load (one update then covers, and costs, the audio of several)
    t = rec.t[:rec.n]
    for suffix, (lo, hi) in spans.items():
        sel = (t >= lo) & (t < hi) & np.isfinite(rec.cpu_ms[:rec.n])
        span = float(t[sel][-1] - t[sel][0]) if sel.sum() > 1 else 0.0
        out[f"cpu_share{suffix}"] = round(float(rec.cpu_ms[:rec.n][sel].sum()) / 1e3 / span, 4) if span else None
    return out


def load_windows(rss: np.ndarray, rss_t: np.ndarray, total_s: float, win: float) -> dict:
    """The machine's 1-minute load average (other work shares the cores): over the run and the two windows."""
    load = rss[:, 2]

    def mean(sel):
        return round(float(load[sel].mean()), 1) if sel.any() else None

    whole = rss_t <= total_s + 1
    return {"load_first_window": mean(rss_t < win), "load_last_window": mean(rss_t >= total_s - win),
            "load_mean": mean(whole), "load_min": round(float(load[whole].min()), 1) if whole.any() else None,
            "load_max": round(float(load[whole].max()), 1) if whole.any() else None,
            # minute by minute (the sampler's first reading of each minute), to see when the machine was busy
            "load_by_minute": [round(float(load[rss_t >= m * 60][0]), 2)
                               for m in range(int(total_s // 60) + 1) if (rss_t >= m * 60).any()]}


def summarise(rec: Recorder, segments, programme_s, pieces, minutes, warmup_s, busy, stats) -> dict:
    n = rec.n
    t = rec.t[:n]
    rss = np.array(rec.rss_mb) if rec.rss_mb else np.zeros((1, 3))
    rss_t = rss[:, 0] - (rec.t_start or rss[0, 0])
    after = rss[rss_t >= warmup_s, 1]
    drops = np.array(rec.drops) if rec.drops else np.zeros((1, 4))
    drops_t = drops[:, 0] - (rec.t_start or drops[0, 0])
    total_s = float(t[-1]) if n else 0.0
    win = min(600.0, total_s / 3)
    # output lag: wall time minus audio time, from the best update of the run (whose own lag is one
    # capture period plus its processing: the figures are that much optimistic, ~25 ms)
    ahead = rec.wall[:n] - t.astype(np.float64)
    lag = (ahead - ahead.min()) if n else np.zeros(1)
    s = {
        "minutes": minutes, "audio_s": round(total_s, 1), "updates": int(n), "programme_s": round(programme_s, 4),
        "rss_start_mb": round(float(rss[0, 1]), 1), "rss_after_warmup_mb": round(float(after[0]), 1) if len(after) else None,
        "rss_end_mb": round(float(rss[-1, 1]), 1),
        "rss_growth_after_warmup_mb": round(float(rss[-1, 1] - after[0]), 2) if len(after) else None,
        "rss_max_mb": round(float(rss[:, 1].max()), 1),
        **cost_windows(rec, total_s, win),
        "window_s": round(win, 1),
        **load_windows(rss, rss_t, total_s, win),
        "lag_p50_ms": round(float(np.percentile(lag, 50)) * 1e3, 1) if n else None,
        "lag_p99_ms": round(float(np.percentile(lag, 99)) * 1e3, 1) if n else None,
        "lag_max_ms": round(float(lag.max()) * 1e3, 1) if n else None,
        "queue_depth_max_blocks": int(rec.depth[:n].max()) if n else None,
        "blocks_dropped": int(drops[-1, 1]), "input_overflows": int(drops[-1, 2]),
        "updates_skipped": int(stats.skipped), "behind_episodes": int(stats.behind),
        "updates_skipped_first_window": int(np.interp(win, drops_t, drops[:, 3])) if n else 0,
        "updates_skipped_last_window": int(drops[-1, 3] - np.interp(total_s - win, drops_t, drops[:, 3])) if n else 0,
        "max_backlog_s": round(stats.max_backlog_s, 3),
        "max_stride": int(stats.max_stride),  # the most hops per computed update while behind (follower.pacing)
        "lag_over_500ms": int((lag > 0.5).sum()) if n else 0,
        # changes of (state, piece): locks, switches, losses, searches (the sequence is in "states")
        "state_changes": int((np.diff(rec.state[:n].astype(np.int32) * 65536 + rec.piece[:n]) != 0).sum()) if n else 0,
        "recognition": score(rec, segments, programme_s, pieces),
    }
    if busy:
        n_busy, a, b = busy
        for name, lo, hi in (("before_load", 0, a * 60), ("under_load", a * 60, b * 60),
                             ("after_load", b * 60 + 10, total_s + 1)):
            sel = (t >= lo) & (t < hi)
            if sel.any():
                s[f"lag_p99_ms_{name}"] = round(float(np.percentile(lag[sel], 99)) * 1e3, 1)
                s[f"lag_max_ms_{name}"] = round(float(lag[sel].max()) * 1e3, 1)
                s[f"latency_p99_ms_{name}"] = round(float(np.percentile(rec.latency[:n][sel], 99)), 2)
                upd = float(sel.sum()) / max(float(t[sel][-1] - t[sel][0]), 1e-9)
                s[f"updates_per_s_{name}"] = round(upd, 2)
        s["busy_workers"] = n_busy
        s["busy_minutes"] = [a, b]
    return s


# -- the run ---------------------------------------------------------------------------

def run(args) -> dict:
    from follower.bundle import read_config
    from follower.errors import BundleError, MissingToolError
    from follower.paths import resolve_bundle

    corpus = Path(args.corpus)
    # what the follower will be given is checked before an hour of programme is rendered for it; the
    # project's errors, so that module_main says them in one line with the usual exit code
    if args.index is not None and not Path(args.index).is_file():
        raise BundleError(f"--index {args.index}: no such index file; build one with `follower index build`")
    if not Path(args.soundfont).is_file():
        raise MissingToolError(f"--soundfont {args.soundfont}: no such file; install "
                               "musescore-general-soundfont-small or give another .sf2/.sf3")
    read_config(resolve_bundle(args.bundle))  # "not a model bundle (no config.json)" when it is not one
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pieces = args.pieces.split(",") if args.pieces else default_pieces(corpus, args.n_pieces, args.seed)
    missing = [p for p in pieces if not (corpus / f"{p}.mid").is_file()]
    if not pieces or missing or not Path(args.outside).is_file():
        sys.exit(f"error: no MIDI pieces to play in {corpus} (missing: {', '.join(missing) or 'all'}) or no "
                 f"--outside file {args.outside}; give --corpus (the folder the index was built from)")
    print(f"rendering the programme: {len(pieces)} pieces ({', '.join(pieces)}), outside {args.outside}",
          file=sys.stderr, flush=True)
    audio, segments = build_programme(corpus, pieces, Path(args.outside), args.soundfont, args.seed, args.piece_s)
    programme_s = len(audio) / RATE
    seconds = args.minutes * 60.0
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    raw, fifo = work / "programme.raw", work / "capture.fifo"
    audio.astype("<f4").tofile(raw)
    os.mkfifo(fifo)
    (work / ".asoundrc").write_text(ASOUNDRC.format(fifo=fifo))
    os.environ["HOME"] = str(work)  # PortAudio reads ~/.asoundrc once, when sounddevice is imported
    os.environ.pop("ALSA_CONFIG_PATH", None)
    # extra seconds: the capture runs until the follower's --duration is reached
    player = subprocess.Popen([sys.executable, "-c", PLAYER, str(fifo), str(raw), str(seconds + 30)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert player.stdout.readline().strip() == "ready"

    from follower import runner
    from follower.audio_io import DeviceSource
    from follower.runstats import Stats

    options = runner.RunOptions(bundle_dir=str(resolve_bundle(args.bundle)), index_path=args.index,
                                osc_target="127.0.0.1:9", console=False, duration_s=seconds,
                                jsonl_path=args.jsonl,
                                max_lag_s=args.max_lag)
    make_engine = runner.load(options)
    source = DeviceSource("follower_soak", rate_hz=RATE, block_frames=BLOCK, buffer_s=5.0)
    stats = Stats()
    rec = Recorder(int(seconds * 20 * 1.05) + 1000, pieces, stats)
    sampler = threading.Thread(target=rec.sample, args=(source,), daemon=True)
    busy = []
    timers = []
    if args.busy:
        def start_busy():
            print(f"load: {args.busy} busy workers for {args.busy_until - args.busy_from:g} min", file=sys.stderr,
                  flush=True)
            for _ in range(args.busy):
                busy.append(subprocess.Popen([sys.executable, "-c", BUSY,
                                              str((args.busy_until - args.busy_from) * 60)]))
        timers.append(threading.Timer(args.busy_from * 60, start_busy))
    start = source.start

    def start_and_play(blocks, stop):
        start(blocks, stop)
        player.stdin.write("go\n")
        player.stdin.flush()
        sampler.start()
        for tm in timers:
            tm.start()

    source.start = start_and_play
    t0 = time.monotonic()
    print(f"playing {args.minutes:g} min in real time (programme {programme_s / 60:.1f} min, looped)",
          file=sys.stderr, flush=True)
    try:
        code = runner.run(source, make_engine, options, observers=[rec], stats=stats)
    finally:
        for tm in timers:
            tm.cancel()
        for p in busy:
            p.wait()
        player.terminate()  # only now: a pipe that runs dry would feed the capture stale audio
        player.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)  # the rendered programme (25 MB an hour's run) and the pipe
    wall = time.monotonic() - t0
    rec.save(out / "updates.npz")
    summary = summarise(rec, segments, programme_s, pieces, args.minutes, args.warmup_min * 60,
                        (args.busy, args.busy_from, args.busy_until) if args.busy else None, stats)
    summary.update(exit_code=code, wall_s=round(wall, 1), bundle=str(args.bundle), index=str(args.index),
                   command="python -m benchmarks.soak " + " ".join(args.argv),
                   finished_utc=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), warmup_s=args.warmup_min * 60,
                   pieces=pieces, outside=str(args.outside),
                   segments=[s.__dict__ for s in segments], states=state_sequence(rec, pieces))
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _change(first, last) -> str:
    return f"{100 * (last - first) / first:+.0f} %" if first and last is not None else "n/a"


def resummarise(summary: dict, saved: Path) -> dict:
    """``summary`` recomputed from a run's ``updates.npz`` with this version's figures (the run's own
    counters, which the arrays do not hold, are taken from the summary)."""
    from follower.runstats import Stats

    a = np.load(saved, allow_pickle=False)
    stats = Stats()
    stats.skipped, stats.behind = summary["updates_skipped"], summary["behind_episodes"]
    stats.max_backlog_s, stats.max_stride = summary["max_backlog_s"], summary["max_stride"]
    n = len(a["t"])
    rec = Recorder(n, summary["pieces"], stats)
    rec.n = n
    for name, key in (("t", "t"), ("wall", "wall"), ("latency", "latency_ms"), ("depth", "depth"),
                      ("state", "state"), ("piece", "piece")):
        getattr(rec, name)[:] = a[key]
    if "cpu_ms" in a:
        rec.cpu_ms[:] = a["cpu_ms"]
    rec.t_start = float(a["wall"][0] - a["t"][0]) if n else None  # as the first update set it
    rec.rss_mb, rec.drops = [tuple(r) for r in a["rss_mb"]], [tuple(r) for r in a["drops"]]
    segments = [Segment(**g) for g in summary["segments"]]
    busy = summary.get("busy_workers")
    # the programme's length from its segments (ms): the summary's own figure is rounded to 0.1 s, which
    # over a dozen loops would shift where each update falls in the programme
    programme_s = segments[-1].start_s + segments[-1].duration_s if segments else summary["programme_s"]
    fresh = summarise(rec, segments, programme_s, summary["pieces"], summary["minutes"],
                      summary.get("warmup_s", 300.0), (busy, *summary["busy_minutes"]) if busy else None, stats)
    return {**summary, **fresh}


def markdown(s: dict, command: str) -> str:
    r = s["recognition"]
    lines = [f"`{command}`", "",
             "| figure | value |", "|---|---|",
             f"| audio played | {s['audio_s'] / 60:.1f} min ({s['updates']} updates; programme of "
             f"{s['programme_s'] / 60:.1f} min looped) |",
             f"| RSS after warm-up / at the end (growth) | {s['rss_after_warmup_mb']} / {s['rss_end_mb']} MB "
             f"({s['rss_growth_after_warmup_mb']:+} MB) |",
             f"| machine's 1-minute load average over the run: mean (min-max) | {s['load_mean']} "
             f"({s['load_min']}-{s['load_max']}) on {os.cpu_count()} cores |",
             f"| per-update processing, wall time p50 / p99 | {s['latency_p50_ms']} / {s['latency_p99_ms']} ms |",
             f"| per-update processing, thread CPU time p50 / p99 | {s['cpu_p50_ms']} / {s['cpu_p99_ms']} ms |",
             f"| first / last {s['window_s'] / 60:.0f} min: wall p50, p99 | "
             f"{s['latency_p50_first_window_ms']}, {s['latency_p99_first_window_ms']} / "
             f"{s['latency_p50_last_window_ms']}, {s['latency_p99_last_window_ms']} ms |",
             f"| first / last {s['window_s'] / 60:.0f} min: CPU p50, p99 | "
             f"{s['cpu_p50_first_window_ms']}, {s['cpu_p99_first_window_ms']} / "
             f"{s['cpu_p50_last_window_ms']}, {s['cpu_p99_last_window_ms']} ms "
             f"(CPU p99 change {_change(s['cpu_p99_first_window_ms'], s['cpu_p99_last_window_ms'])}) |",
             f"| first / last {s['window_s'] / 60:.0f} min: CPU seconds per second of audio | "
             f"{s.get('cpu_share_first_window')} / {s.get('cpu_share_last_window')} "
             f"(whole run {s.get('cpu_share')}) |",
             f"| first / last {s['window_s'] / 60:.0f} min: machine load average; updates skipped | "
             f"{s['load_first_window']} / {s['load_last_window']}; {s.get('updates_skipped_first_window')} / "
             f"{s.get('updates_skipped_last_window')} |",
             f"| output lag p50 / p99 / max | {s['lag_p50_ms']} / {s['lag_p99_ms']} / {s['lag_max_ms']} ms |",
             f"| queue depth max | {s['queue_depth_max_blocks']} blocks of {BLOCK} frames |",
             f"| blocks dropped / input overflows | {s['blocks_dropped']} / {s['input_overflows']} |",
             f"| updates skipped (times behind; most hops per update) | {s['updates_skipped']} "
             f"({s['behind_episodes']}; {s['max_stride']}) |",
             f"| updates more than 0.5 s behind their audio | {s['lag_over_500ms']} of {s['updates']} |",
             f"| corpus pieces named right (>= half the time after 10 s) | {r['pieces_right']} / {r['pieces']} "
             f"(following the right piece {100 * r['piece_time_right']:.0f} % of that time) |",
             f"| piece not in the corpus: time spent following something (all loops) | "
             f"{100 * r['outside_false_follow']:.0f} % |"]
    if "state_changes" in s:
        loops = max(s["audio_s"] / s["programme_s"], 1e-9)
        lines.append(f"| changes of state or piece | {s['state_changes']} ({s['state_changes'] / loops:.0f} per "
                     f"programme loop) |")
    if "busy_workers" in s:
        for name in ("before_load", "under_load", "after_load"):
            if f"lag_p99_ms_{name}" in s:
                lines.append(f"| {name.replace('_', ' ')}: lag p99 / max, latency p99, updates/s | "
                             f"{s[f'lag_p99_ms_{name}']} / {s[f'lag_max_ms_{name}']} ms, "
                             f"{s[f'latency_p99_ms_{name}']} ms, {s[f'updates_per_s_{name}']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from benchmarks import paths

    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=60.0, help="how long to play (default 60)")
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--index", default=None, help="default: the bundle's shipped index")
    p.add_argument("--corpus", default=str(paths.chorale_dir()), help="the MIDI folder the index was built from")
    p.add_argument("--pieces", default=None, help="comma-separated piece ids to play (default: drawn from the "
                                                  "corpus' test split)")
    p.add_argument("--n-pieces", type=int, default=6)
    p.add_argument("--piece-s", type=float, default=75.0, help="play at most this much of each piece")
    p.add_argument("--outside", default=str(paths.data_root() / "midi" / "nottingham" / "ashover1.mid"),
                   help="a MIDI file that is not in the index")
    p.add_argument("--soundfont", default="/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--warmup-min", type=float, default=5.0, help="RSS growth is measured from here")
    p.add_argument("--max-lag", type=float, default=0.25, help="the follower's --max-lag")
    p.add_argument("--busy", type=int, default=0, help="busy worker processes (the load run)")
    p.add_argument("--busy-from", type=float, default=1.0, help="minute the load starts")
    p.add_argument("--busy-until", type=float, default=4.0, help="minute the load ends")
    p.add_argument("--jsonl", default=None, help="also write the follower's JSON lines here (as --jsonl of "
                                                 "follower listen)")
    p.add_argument("--out", default=str(paths.work_dir() / "soak"))
    p.add_argument("--doc", action="store_true",
                   help="also write the table into docs/benchmarks.md (its generated:soak block, or "
                        "generated:soak-load with --busy)")
    p.add_argument("--report", metavar="SUMMARY_JSON", default=None,
                   help="play nothing: print (and with --doc write) the table of an earlier run's summary.json")
    args = p.parse_args(argv)
    # the command as given, for the report (without --doc/--report, which only say where it goes)
    args.argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--doc"]
    if args.report:
        try:
            summary = json.loads(Path(args.report).read_text())
            missing = {"recognition", "minutes", "updates"} - set(summary)
            if missing:
                raise ValueError(f"no {', '.join(sorted(missing))}")
            arrays = Path(args.report).with_name("updates.npz")
            if arrays.is_file():
                summary = resummarise(summary, arrays)
        except (OSError, ValueError, TypeError, KeyError) as e:
            print(f"error: --report {args.report}: not a soak summary.json ({e})", file=sys.stderr)
            return 2
    else:
        summary = run(args)
    command = summary.get("command") or f"python -m benchmarks.soak --minutes {summary['minutes']:g}"
    body = markdown(summary, command)
    print(body)
    if args.doc:
        write_doc(summary, body)
    return 0 if summary.get("exit_code", 0) == 0 else 1


def write_doc(summary: dict, body: str) -> Path:
    """The table into docs/benchmarks.md, with when and where it was measured."""
    from benchmarks.paths import docs_dir
    from benchmarks.report import machine_description, replace_block

    name = "soak-load" if "busy_workers" in summary else "soak"
    when = summary.get("finished_utc") or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = f"- Machine: {machine_description()}; run finished {when}.\n- Command: {body}"
    doc = docs_dir() / "benchmarks.md"
    doc.write_text(replace_block(doc.read_text(), name, text))
    print(f"wrote the {name} block of {doc}", file=sys.stderr)
    return doc


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
