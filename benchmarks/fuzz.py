"""Hostile files through the follower's readers: ``python -m benchmarks.fuzz --cases 5000``.

A seeded mutator makes each case from real files (or from nothing) and puts it
through the same entry points the commands use, in this process:

* MIDI (mutated corpus files: bit flips, interesting bytes, cut, spliced, repeated
  or inserted chunks, broken header and track lengths, huge delta times and tempi;
  and random bytes, with or without a valid header) through ``follower index
  build`` (:func:`follower.index.build_index`) and ``training dataset build``
  (:func:`training.data.render.render_piece`, one real FluidSynth render);
* audio (mutated headers, truncated files, NaN/Inf samples, one sample, 8 channels,
  192 kHz, huge values, silence, random bytes named .wav/.flac/.ogg/.mp3) through
  ``follower replay`` (:class:`follower.audio_io.FileSource` and
  :func:`follower.runner.run`, as fast as possible).

Every ``--spawn-every``-th case also runs the real command in a subprocess.

A case passes when the file is accepted, or refused with the project's own error
(one line that names the file); it fails on any other exception (a traceback for a
user), an exit code other than 0 or 2, or when it takes more CPU time than
``--timeout`` (a hang; a spawned command: ten times that in wall time). The report (``--out``/report.json) names every case, bad file and
outcome; failing files are kept next to it for replaying.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIDI_KINDS = ("midi-mutated", "midi-random")
AUDIO_KINDS = ("audio-header", "audio-truncated", "audio-nonfinite", "audio-one-sample", "audio-8ch",
               "audio-192k", "audio-huge", "audio-silence", "audio-random", "audio-mutated")
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x40)


HOP_FRAMES = 16        # a coarser snippet grid than the default 4: the same code, a quarter of the embedding
MAX_PIECE_S = 120.0    # the dataset's max_piece_s: longer (mutated) pieces are refused instead of rendered


class Hang(Exception):
    """Raised by the per-case alarm."""


# -- mutators ------------------------------------------------------------------------

def mutate_bytes(data: bytes, rng: np.random.Generator, n_ops: int) -> bytes:
    b = bytearray(data)
    for _ in range(n_ops):
        if not b:
            b = bytearray(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes())
        op = int(rng.integers(0, 9))
        i = int(rng.integers(0, len(b)))
        if op == 0:  # bit flip
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:  # interesting byte
            b[i] = INTERESTING[int(rng.integers(0, len(INTERESTING)))]
        elif op == 2:  # cut the end
            del b[max(1, i):]
        elif op == 3:  # delete a chunk
            del b[i:i + int(rng.integers(1, 64))]
        elif op == 4:  # duplicate a chunk
            j = i + int(rng.integers(1, 256))
            b[i:i] = b[i:j]
        elif op == 5:  # insert random bytes
            b[i:i] = rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
        elif op == 6:  # a 32-bit length field made huge or zero
            b[i:i + 4] = [(0xFF, 0xFF, 0xFF, 0xFF), (0, 0, 0, 0), (0x7F, 0xFF, 0xFF, 0xFF)][int(rng.integers(0, 3))]
        elif op == 7:  # a huge variable-length quantity (MIDI delta time)
            b[i:i] = b"\xff\xff\xff\x7f"
        else:  # splice in a copy of another part of the file
            j = int(rng.integers(0, len(b)))
            b[i:i + 16] = b[j:j + 16]
    return bytes(b)


def mutate_midi_messages(data: bytes, rng: np.random.Generator) -> bytes:
    """Musically hostile but well-formed: huge gaps, extreme tempi, lost note-offs, drums, odd resolutions."""
    import mido

    mid = mido.MidiFile(file=io.BytesIO(data))
    for _ in range(int(rng.integers(1, 6))):
        track = mid.tracks[int(rng.integers(0, len(mid.tracks)))]
        if not track:
            continue
        i = int(rng.integers(0, len(track)))
        msg = track[i]
        op = int(rng.integers(0, 9))
        if op == 0:
            msg.time = int(rng.choice([0, 10 ** 6, 2 ** 28 - 1]))
        elif op == 1 and msg.type in ("note_on", "note_off"):
            msg.note = int(rng.integers(0, 128))
        elif op == 2 and msg.type != "end_of_track":
            del track[i]
        elif op == 3:
            track.insert(i, msg.copy())
        elif op == 4:
            track.insert(i, mido.MetaMessage("set_tempo", tempo=int(rng.choice([1, 2 ** 24 - 1, 60]))))
        elif op == 5 and hasattr(msg, "channel"):
            msg.channel = 9
        elif op == 6 and msg.type == "note_on":
            msg.velocity = 0
        elif op == 7:
            mid.ticks_per_beat = int(rng.choice([1, 3, 32767]))
        elif op == 8:
            for m in track:
                if m.type == "note_off":
                    m.time = 0
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def mutate_midi(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    r = rng.random()
    if r < 0.5:
        try:
            return mutate_midi_messages(data, rng)
        except Exception:  # noqa: BLE001 - mido refused to write it: mutate the bytes instead
            pass
    if r < 0.7 and len(b) > 22:  # bytes inside the first track's events, lengths untouched
        for _ in range(int(rng.integers(1, 6))):
            i = int(rng.integers(22, len(b)))
            b[i] = int(rng.integers(0, 256)) if rng.random() < 0.5 else b[i] ^ (1 << int(rng.integers(0, 8)))
        return bytes(b)
    if r < 0.8 and len(b) >= 14:  # header fields: format, track count, division
        field_at = int(rng.choice([8, 10, 12]))
        b[field_at:field_at + 2] = rng.integers(0, 256, 2, dtype=np.uint8).tobytes()
        return bytes(b)
    if r < 0.85:  # a tempo meta event made extreme
        k = b.find(b"\xff\x51\x03")
        if k >= 0:
            b[k + 3:k + 6] = [(0, 0, 1), (0xFF, 0xFF, 0xFF), (0, 0, 0)][int(rng.integers(0, 3))]
            return bytes(b)
    return mutate_bytes(data, rng, int(rng.integers(1, 9)))


def wav_bytes(audio: np.ndarray, rate: int, subtype: str = "FLOAT", fmt: str = "WAV") -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, rate, subtype=subtype, format=fmt)
    return buf.getvalue()


def make_audio(kind: str, seeds: list[np.ndarray], rng: np.random.Generator) -> tuple[bytes, str]:
    """(file bytes, suffix) of one audio case."""
    base = seeds[int(rng.integers(0, len(seeds)))]
    n = int(rng.integers(1102, min(len(base), int(22050 * 2.5))))
    clip = base[:n].copy()
    if kind == "audio-header":
        data = bytearray(wav_bytes(clip, 22050, "PCM_16"))
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(0, 44))] = int(rng.integers(0, 256))
        return bytes(data), ".wav"
    if kind == "audio-truncated":
        fmt, suffix = [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg")][int(rng.integers(0, 3))]
        data = wav_bytes(clip, 22050, "VORBIS" if fmt == "OGG" else "PCM_16", fmt)
        return data[: int(rng.integers(1, len(data)))], suffix
    if kind == "audio-nonfinite":
        bad = rng.choice([np.nan, np.inf, -np.inf])
        where = rng.integers(0, len(clip), int(rng.integers(1, max(2, len(clip) // 10))))
        clip[where] = bad
        return wav_bytes(clip, 22050, "FLOAT"), ".wav"
    if kind == "audio-one-sample":
        return wav_bytes(clip[:1], int(rng.choice([8000, 22050, 44100])), "PCM_16"), ".wav"
    if kind == "audio-8ch":
        return wav_bytes(np.stack([clip * (0.5 + 0.05 * c) for c in range(8)], axis=1), 48000, "PCM_24"), ".wav"
    if kind == "audio-192k":
        import soxr

        return wav_bytes(soxr.resample(clip, 22050, 192000).astype(np.float32), 192000, "PCM_24"), ".wav"
    if kind == "audio-huge":
        return wav_bytes(clip * np.float32(rng.choice([1e6, 1e30, 3e38])), 22050, "FLOAT"), ".wav"
    if kind == "audio-silence":
        return wav_bytes(np.zeros(n, np.float32), 22050, "PCM_16"), ".wav"
    if kind == "audio-random":
        data = rng.integers(0, 256, int(rng.integers(0, 8192)), dtype=np.uint8).tobytes()
        return data, str(rng.choice([".wav", ".flac", ".ogg", ".mp3"]))
    # audio-mutated: any format, bytes mutated anywhere
    fmt, suffix, sub = [("WAV", ".wav", "PCM_16"), ("FLAC", ".flac", "PCM_16"), ("OGG", ".ogg", "VORBIS"),
                        ("WAV", ".wav", "FLOAT")][int(rng.integers(0, 4))]
    return mutate_bytes(wav_bytes(clip, 22050, sub, fmt), rng, int(rng.integers(1, 6))), suffix


# -- the checks ----------------------------------------------------------------------

@dataclass
class Outcome:
    case: int
    kind: str
    path: str
    target: str                  # "index", "dataset", "replay", or "cli:..." for the spawned sample
    result: str                  # "accepted", "refused", "traceback", "hang", "bad-exit"
    message: str = ""
    seconds: float = 0.0
    noise: str = ""              # what else reached the user: Python warnings, a C library's own stderr lines

    @property
    def failed(self) -> bool:
        return self.result in ("traceback", "hang", "bad-exit", "unnamed")


@dataclass
class Setup:
    bundle: object
    make_engine: object
    options: object
    out: Path
    timeout_s: float
    bundle_dir: str
    index_path: str
    outcomes: list = field(default_factory=list)


def _alarm(signum, frame):
    raise Hang()


def checked(setup: Setup, case: int, kind: str, path: Path, target: str, call) -> Outcome:
    """Run ``call()``; classify what happened."""
    from follower.errors import FollowerError

    import warnings

    t0 = time.perf_counter()
    # CPU time, not wall time: a busy loop is a hang, a machine shared with other work is not
    signal.setitimer(signal.ITIMER_PROF, setup.timeout_s)
    caught = warnings.catch_warnings(record=True)
    seen = caught.__enter__()
    warnings.simplefilter("always")
    try:
        message = call() or ""
        result = "accepted" if not message else "refused"
    except Hang:
        result, message = "hang", f"still running after {setup.timeout_s:g} s of CPU time"
    except FollowerError as e:
        result, message = "refused", str(e)
    except Exception as e:  # noqa: BLE001 - exactly what the fuzzer is looking for
        import traceback

        result, message = "traceback", "".join(traceback.format_exception(e))[-2000:]
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        caught.__exit__(None, None, None)
    noise = "; ".join(sorted({f"{w.category.__name__}: {w.message}" for w in seen}))[:500]
    if result == "refused" and (path.name not in message or "\n" in message.strip()):
        result, message = "unnamed", f"the refusal does not name the file on one line: {message!r}"
    return Outcome(case, kind, str(path), target, result, message, round(time.perf_counter() - t0, 3), noise)


def index_build(setup: Setup, path: Path):
    from follower.index import build_index

    def call():
        index = build_index([path], setup.bundle, hop_frames=HOP_FRAMES, progress=False, workers=1)
        if index.header["skipped"]:  # (only with several files; one bad file raises instead)
            return index.header["skipped"][0]["reason"]
        return ""
    return call


def dataset_build(setup: Setup, path: Path):
    from training.data.build import DatasetConfig, plan_renders
    from training.data.corpus import Piece
    from training.data.synth import find_soundfont

    cfg = DatasetConfig(max_piece_s=MAX_PIECE_S)

    def call():
        from training.data.render import render_piece

        piece = Piece(f"fuzz/{path.stem}", "fuzz", str(path), "train", f"fuzz/{path.stem}")
        spec = plan_renders(piece, cfg)[0]
        import dataclasses

        spec = dataclasses.replace(spec, soundfont=find_soundfont(spec.soundfont))
        res = render_piece((piece, [(spec, str(setup.out / "render.npz"))], cfg.features, cfg.render,
                            cfg.max_piece_s))
        err = res["error"] or ""
        if "could not be rendered (Hang" in err:  # the build's catch-all caught our alarm
            raise Hang()
        if "could not be rendered (" in err:  # the build's catch-all: an exception nobody meant
            raise RuntimeError(err)
        return err
    return call


def replay(setup: Setup, path: Path):
    def call():
        from follower import runner
        from follower.audio_io import FileSource

        source = FileSource(path, realtime=False)
        runner.run(source, setup.make_engine, setup.options)
        return ""
    return call


def spawned(setup: Setup, case: int, kind: str, path: Path, target: str) -> Outcome:
    """The real command in a subprocess: exit 0 or 2, no traceback, one line naming the file."""
    work = setup.out / "spawn"
    work.mkdir(exist_ok=True)
    if target == "index":
        cmd = [sys.executable, "-m", "follower.cli", "index", "build", str(path), "-o", str(work / "x.index.npz"),
               "--bundle", setup.bundle_dir, "--workers", "1", "--quiet"]
    elif target == "dataset":
        corpus = work / "corpus"
        shutil.rmtree(corpus, ignore_errors=True)
        corpus.mkdir()
        shutil.copy(path, corpus / path.name)
        cmd = [sys.executable, "-c", "import sys; from training.cli import main; sys.exit(main())", "dataset", "build", "-o", str(work / "ds"), "--corpus",
               str(corpus), "--train-renders", "1", "--valid-renders", "1", "--workers", "1", "--quiet"]
        shutil.rmtree(work / "ds", ignore_errors=True)
    else:
        cmd = [sys.executable, "-m", "follower.cli", "replay", str(path), "--fast", "--quiet", "--bundle",
               setup.bundle_dir, "--index", setup.index_path, "--osc", "127.0.0.1:9"]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10 * setup.timeout_s,
                           cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        return Outcome(case, kind, str(path), f"cli:{target}", "hang", "the command did not end",
                       round(time.perf_counter() - t0, 3))
    err = r.stderr.strip()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if "Traceback" in err:
        result = "traceback"
    elif r.returncode not in (0, 2):
        result = "bad-exit"
    elif r.returncode == 2 and (len(errors) != 1 or path.name not in errors[0]):
        result = "unnamed"
    else:
        result = "accepted" if r.returncode == 0 else "refused"
    msg = err[-2000:] if result not in ("accepted", "refused") else (errors[0] if errors else "")
    noise = "; ".join(line for line in err.splitlines() if not line.startswith("error:"))[:500]
    if target == "dataset" and r.returncode == 0 and (work / "ds" / "report.csv").is_file():
        report = (work / "ds" / "report.csv").read_text()
        if path.name in report:
            result, msg = "refused", report.strip().splitlines()[-1]
    return Outcome(case, kind, str(path), f"cli:{target}", result, f"exit {r.returncode}: {msg}",
                   round(time.perf_counter() - t0, 3), noise)


# -- the run -------------------------------------------------------------------------

def seed_audio(midi_seeds: list[Path]) -> list[np.ndarray]:
    """A few seconds of real synthesized music per seed MIDI (the audio mutations start from music)."""
    from follower.midi import load_midi
    from training.data.synth import Renderer, RenderSettings

    r = Renderer(RenderSettings(sample_rate_hz=22050))
    try:
        out = []
        for p in midi_seeds:
            notes = load_midi(p).notes
            notes = notes[notes["start_s"] < 4.0]
            out.append(r.render(notes, {}, "/usr/share/sounds/sf2/TimGM6mb.sf2")[: 22050 * 4].astype(np.float32))
        return out
    finally:
        r.close()


def run(*, cases: int, seed: int, corpus: Path, bundle_dir: str, index_path: str | None, out: Path,
        timeout_s: float = 60.0, spawn_every: int = 50, progress: bool = True) -> dict:
    from follower import runner
    from follower.bundle import load_bundle
    from follower.paths import resolve_bundle, resolve_index

    out.mkdir(parents=True, exist_ok=True)
    cases_dir = out / "cases"
    shutil.rmtree(cases_dir, ignore_errors=True)
    cases_dir.mkdir()
    failing_dir = out / "failing"
    shutil.rmtree(failing_dir, ignore_errors=True)
    rng = np.random.default_rng(seed)
    bundle_dir = str(resolve_bundle(bundle_dir))
    index_path = str(resolve_index(index_path, Path(bundle_dir)))
    options = runner.RunOptions(bundle_dir=bundle_dir, index_path=index_path, osc_target="127.0.0.1:9",
                                console=False)
    setup = Setup(load_bundle(bundle_dir), runner.load(options), options, out, timeout_s, bundle_dir, index_path)
    # the shortest files of the corpus: mutations of a short file are as hostile and cheaper to embed
    midi_paths = sorted(sorted(corpus.rglob("*.mid")), key=lambda p: p.stat().st_size)[:12]
    seeds = [p.read_bytes() for p in midi_paths]
    audio_seeds = seed_audio(midi_paths[:3])
    previous = signal.signal(signal.SIGPROF, _alarm)
    t0 = time.perf_counter()
    try:
        for case in range(cases):
            # the spawned sample: cases k*N (MIDI, through both builds) and k*N + 1 (audio, through replay)
            spawn = bool(spawn_every) and case % spawn_every in (0, 1)
            kind = (MIDI_KINDS + AUDIO_KINDS)[int(rng.integers(0, len(MIDI_KINDS) + len(AUDIO_KINDS)))] \
                if case % 2 else MIDI_KINDS[int(rng.integers(0, 2))]
            if spawn and case % 2:
                kind = AUDIO_KINDS[int(rng.integers(0, len(AUDIO_KINDS)))]
            if kind == "midi-mutated":
                data, suffix = mutate_midi(seeds[int(rng.integers(0, len(seeds)))], rng), ".mid"
            elif kind == "midi-random":
                data = rng.integers(0, 256, int(rng.integers(0, 2048)), dtype=np.uint8).tobytes()
                if rng.random() < 0.5:  # a valid header over random tracks
                    data = b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk" + data
                suffix = ".mid"
            else:
                data, suffix = make_audio(kind, audio_seeds, rng)
            path = cases_dir / f"case{case:05d}-{kind}{suffix}"
            path.write_bytes(data)
            if kind.startswith("midi"):
                targets = [("index", index_build(setup, path))]
                if case % 8 == 0 or spawn:  # a render per case would dominate the run: one MIDI case in four
                    targets.append(("dataset", dataset_build(setup, path)))
            else:
                targets = [("replay", replay(setup, path))]
            for target, call in targets:
                setup.outcomes.append(checked(setup, case, kind, path, target, call))
            if spawn:
                for target, _ in targets:
                    setup.outcomes.append(spawned(setup, case, kind, path, target))
            if any(o.failed for o in setup.outcomes[-3:] if o.case == case):
                failing_dir.mkdir(exist_ok=True)
                shutil.copy(path, failing_dir / path.name)
            else:
                path.unlink()
            if case % 100 == 99:  # a partial report, in case the run is cut short
                report(setup.outcomes, case + 1, seed, time.perf_counter() - t0, out)
            if progress and case % 100 == 99:
                bad = sum(o.failed for o in setup.outcomes)
                print(f"fuzz: {case + 1}/{cases} cases, {bad} failures, {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGPROF, previous)
        shutil.rmtree(cases_dir, ignore_errors=True)
    return report(setup.outcomes, cases, seed, time.perf_counter() - t0, out)


def report(outcomes: list[Outcome], cases: int, seed: int, seconds: float, out: Path) -> dict:
    by_target: dict = {}
    for o in outcomes:
        d = by_target.setdefault(o.target, {"accepted": 0, "refused": 0, "traceback": 0, "hang": 0, "bad-exit": 0,
                                            "unnamed": 0, "noisy": 0, "max_s": 0.0})
        d[o.result] += 1
        d["noisy"] += bool(o.noise)
        d["max_s"] = max(d["max_s"], o.seconds)
    summary = {"cases": cases, "seed": seed, "seconds": round(seconds, 1), "checks": len(outcomes),
               "tracebacks": sum(o.result == "traceback" for o in outcomes),
               "hangs": sum(o.result == "hang" for o in outcomes),
               "bad_exits": sum(o.result == "bad-exit" for o in outcomes),
               "unnamed": sum(o.result == "unnamed" for o in outcomes),
               "by_target": by_target,
               "failures": [o.__dict__ for o in outcomes if o.failed],
               "noisy": [{"file": Path(o.path).name, "target": o.target, "noise": o.noise}
                         for o in outcomes if o.noise],
               "refused": [{"file": Path(o.path).name, "target": o.target, "message": o.message}
                           for o in outcomes if o.result == "refused"]}
    (out / "report.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def markdown(s: dict, command: str) -> str:
    lines = [f"`{command}` ({s['seconds'] / 60:.1f} min)", "",
             "| entry point | accepted | refused (one line naming the file) | tracebacks | hangs | other failures "
             "| more on stderr than the one line | slowest case |", "|---|---|---|---|---|---|---|---|"]
    for target, d in sorted(s["by_target"].items()):
        lines.append(f"| {target} | {d['accepted']} | {d['refused']} | {d['traceback']} | {d['hang']} | "
                     f"{d['bad-exit'] + d['unnamed']} | {d['noisy']} | {d['max_s']:.1f} s |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from benchmarks import paths

    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=5000)
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--corpus", default=str(paths.chorale_dir()), help="MIDI files the mutations start from")
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--index", default=None, help="default: the bundle's shipped index")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="a case using more CPU time than this is a hang (s); a spawned command, 10x in wall time")
    p.add_argument("--spawn-every", type=int, default=100, help="run the real command for every N-th case (0: never)")
    p.add_argument("--out", default=str(paths.work_dir() / "fuzz"))
    args = p.parse_args(argv)
    s = run(cases=args.cases, seed=args.seed, corpus=Path(args.corpus), bundle_dir=args.bundle,
            index_path=args.index, out=Path(args.out), timeout_s=args.timeout, spawn_every=args.spawn_every)
    print(markdown(s, "python -m benchmarks.fuzz " + " ".join(argv if argv is not None else sys.argv[1:])))
    for f in s["failures"]:
        print(f"FAILED case {f['case']} {f['target']} {f['path']}: {f['result']}: {f['message'][-300:]}",
              file=sys.stderr)
    return 0 if not s["failures"] else 1


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
