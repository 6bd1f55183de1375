"""Run each system on the test material, caching one JSON-lines log per (system, item).

Every system runs as a child process so that its peak memory (``ru_maxrss`` from
``os.wait4``, read by a small launcher: see ``run_child``) and wall time are its own:

* ``follower``: ``follower replay AUDIO --fast --jsonl ...``, one process per item
  (the numbers include loading the bundle and index and the warm-up);
* ``chroma``: benchmarks/chroma_identifier.py, one process per corpus batch;
* ``matchmaker-<method>``: benchmarks/peers_matchmaker.py in matchmaker's own venv,
  one process per method, told the true piece and, for mid-piece excerpts, the
  start (score cut at the excerpt's first moment, 30 s of margin after its end).

Logs land in ``<work>/runs/<system>/<item>.jsonl`` with ``.stats.json`` beside.
A log that exists is reused unless ``fresh``; the follower's folder carries the
bundle fingerprint, so a new bundle means new runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from follower.paths import REPO_ROOT

from . import paths
from .material import Item
from .midi_crop import crop_midi
from .warp import load_truth

MATCHMAKER_METHODS = ("arzt", "dixon", "skf", "outerhmm", "pf")
CROP_MARGIN_S = 30.0
QUIET_OSC = "127.0.0.1:9"  # the discard port: OSC goes out (as on stage) and nobody listens
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "PYTHONPATH": str(REPO_ROOT)}


# The child is started by this small launcher, and its peak memory read there: Linux carries the
# peak resident size of the process that forks into the child's ``ru_maxrss`` (exec records the
# old address space's high-water mark), so a child of run_all, which holds hundreds of MiB after
# rendering the material, would report at least that much. The launcher's own footprint (~13 MiB)
# is the floor instead.
_LAUNCHER = """import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_child(cmd: list[str], log_path: Path) -> dict:
    """Run ``cmd``; returns exit code, wall seconds and peak resident memory (MiB) of that command alone."""
    env = {**os.environ, **CHILD_ENV}
    measured = Path(str(log_path) + ".rusage")
    measured.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        rc = subprocess.call([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(measured), *map(str, cmd)],
                             stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    wall_s = time.perf_counter() - t0
    try:
        rc_text, maxrss_kib = measured.read_text().split()
        rc = int(rc_text)
    except (OSError, ValueError):  # the launcher itself failed (e.g. the command does not exist): its rc stands
        maxrss_kib = 0
    measured.unlink(missing_ok=True)
    return {"rc": rc, "wall_s": wall_s, "peak_rss_mib": int(maxrss_kib) / 1024, "loadavg_1min": os.getloadavg()[0]}


def follower_exe() -> str:
    exe = Path(sys.executable).parent / "follower"
    return str(exe) if exe.exists() else shutil.which("follower") or "follower"


def bundle_fingerprint(bundle: Path) -> str:
    from follower.bundle import read_config

    return read_config(bundle).fingerprint


def index_fingerprint(bundle: Path) -> str:
    """What a bundle's indexes depend on (score encoder and settings): bundles whose audio side alone
    differs (int8, partial-window or narrower audio encoders) share their cached indexes."""
    from follower.bundle import read_config

    return read_config(bundle).index_fingerprint


def index_path(name: str, bundle: Path, out_dir: Path, hop_frames: int | None = None) -> Path:
    hop = f"-hop{hop_frames}" if hop_frames else ""
    return out_dir / f"{name}-{index_fingerprint(bundle)[:12]}{hop}.index.npz"


def ensure_index(corpus_dir: Path, name: str, bundle: Path, out_dir: Path,
                 hop_frames: int | None = None) -> tuple[Path, dict]:
    """``follower index build`` of a whole corpus, once per score encoder (and hop)."""
    path = index_path(name, bundle, out_dir, hop_frames)
    stats_path = Path(str(path) + ".stats.json")
    if path.exists() and stats_path.exists():
        return path, json.loads(stats_path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"building the {name} index ({corpus_dir}) with {bundle} ...", flush=True)
    cmd = [follower_exe(), "index", "build", str(corpus_dir), "-o", str(path), "--bundle", str(bundle), "--quiet"]
    stats = run_child(cmd + (["--hop-frames", str(hop_frames)] if hop_frames else []), Path(str(path) + ".log"))
    if stats["rc"] != 0 or not path.exists():
        raise RuntimeError(f"follower index build failed for {corpus_dir}; see {path}.log")
    stats["summary"] = Path(str(path) + ".log").read_text().strip().splitlines()[-1]
    stats_path.write_text(json.dumps(stats))
    return path, stats


def follower_run_dir(bundle: Path, run_dir: Path, suffix: str = "") -> Path:
    return run_dir / f"follower-{bundle_fingerprint(bundle)[:12]}{suffix}"


def run_latency(bundle: Path, run_dir: Path, *, fresh: bool) -> Path:
    """benchmarks/latency.py (the follower's own scale benchmark, random index rows up to 1M)."""
    out = run_dir / f"latency-{bundle_fingerprint(bundle)[:12]}.json"
    if fresh or not out.exists():
        print("latency against index size (benchmarks/latency.py) ...", flush=True)
        stats = run_child([sys.executable, "-m", "benchmarks.latency", "--bundle", str(bundle), "--json", str(out)],
                          Path(str(out) + ".log"))
        if stats["rc"] != 0:
            print(f"benchmarks/latency.py failed (rc {stats['rc']}); see {out}.log", file=sys.stderr)
    return out


def run_follower(items: list[Item], bundle: Path, indexes: dict, run_dir: Path, *, fresh: bool,
                 suffix: str = "") -> Path:
    out = follower_run_dir(bundle, run_dir, suffix)
    out.mkdir(parents=True, exist_ok=True)
    for item in tqdm(items, desc="follower replay", unit="item"):
        jsonl = out / f"{item.name}.jsonl"
        if jsonl.exists() and not fresh:
            continue
        cmd = [follower_exe(), "replay", item.audio, "--fast", "--bundle", str(bundle), "--index",
               str(indexes[item.corpus]), "--jsonl", str(jsonl), "--osc", QUIET_OSC, "--quiet", "--stats"]
        stats = run_child(cmd, Path(str(jsonl) + ".log"))
        stats["stats_output"] = Path(str(jsonl) + ".log").read_text()[-2000:]
        if stats["rc"] != 0:
            print(f"follower failed on {item.name} (rc {stats['rc']}); see {jsonl}.log", file=sys.stderr)
        Path(str(jsonl) + ".stats.json").write_text(json.dumps(stats))
    return out


def run_chroma(items: list[Item], run_dir: Path, *, fresh: bool) -> Path:
    out = run_dir / "chroma"
    out.mkdir(parents=True, exist_ok=True)
    corpus_dirs = {"chorales": paths.chorale_dir(), "piano": paths.piano_dir()}
    jobs = [{"audio": i.audio, "corpus": str(corpus_dirs[i.corpus]), "jsonl": str(out / f"{i.name}.jsonl")}
            for i in items if fresh or not (out / f"{i.name}.jsonl").exists()]
    if jobs:
        (out / "jobs.json").write_text(json.dumps(jobs))
        print(f"chroma identifier on {len(jobs)} items ...", flush=True)
        stats = run_child([sys.executable, "-m", "benchmarks.chroma_identifier", "--jobs", str(out / "jobs.json"),
                           "--cache", str(paths.work_dir() / "cache")], out / "run.log")
        (out / "process.stats.json").write_text(json.dumps(stats))
    return out


def matchmaker_score(item: Item, score_dir: Path) -> tuple[str, float]:
    """The score matchmaker gets: the whole MIDI for Bach10 (it starts at the start),
    else the MIDI cut at the excerpt's first moment. Returns (path, offset_s)."""
    truth = json.loads(Path(item.truth).read_text())
    if "start_midi_s" not in truth:
        return item.midi, 0.0
    # renditions with jumps: up to the furthest point they reach (jumps back before the
    # start are out of a forward follower's reach, which is what that material measures)
    end_s = float(np.max(load_truth(Path(item.truth)).midi_s)) + CROP_MARGIN_S
    dst = score_dir / f"{item.name}.mid"
    offset = crop_midi(Path(item.midi), float(truth["start_midi_s"]), dst, end_s=end_s)
    return str(dst), offset


def run_matchmaker(items: list[Item], methods, run_dir: Path, *, fresh: bool) -> list[Path]:
    from .setup_matchmaker import setup

    python = setup()
    score_dir = run_dir / "matchmaker-scores"
    scores = {i.name: matchmaker_score(i, score_dir) for i in items}
    outs = []
    for method in methods:
        out = run_dir / f"matchmaker-{method}"
        out.mkdir(parents=True, exist_ok=True)
        outs.append(out)
        jobs = [{"score": scores[i.name][0], "audio": i.audio, "method": method, "offset_s": scores[i.name][1],
                 "piece": i.piece, "jsonl": str(out / f"{i.name}.jsonl")}
                for i in items if fresh or not (out / f"{i.name}.jsonl").exists()]
        if not jobs:
            continue
        (out / "jobs.json").write_text(json.dumps(jobs))
        print(f"matchmaker {method} on {len(jobs)} items ...", flush=True)
        stats = run_child([str(python), "-m", "benchmarks.peers_matchmaker", "--jobs", str(out / "jobs.json")],
                          out / "run.log")
        (out / "process.stats.json").write_text(json.dumps(stats))
    return outs
