"""A non-learned peer for piece identification: chroma + streaming subsequence DTW.

The classic audio-to-score matching baseline (Mueller, "Fundamentals of Music
Processing", ch. 7): audio chroma (librosa ``chroma_stft``, causal frames) against chroma folded
from every MIDI's piano roll, compared by cosine distance. For every piece of the
corpus a subsequence DTW (free start anywhere in the piece, local tempo 0.5-2x:
steps (1,1), (2,1), (1,2)) is advanced by one row per audio frame, so after each
frame the system names the piece whose best path costs least per query frame,
and the path's end gives a position. Cost per frame is linear in the corpus length.

Chroma frames are causal (a frame is stamped with the time its last sample
arrives). They are computed for the whole file before matching, so the latency
reported per update is the matching only; feature time counts in the real-time factor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from follower.midi import load_midi, piano_roll

SAMPLE_RATE_HZ = 22050
HOP_SAMPLES = 2048
WINDOW_SAMPLES = 4096  # 186 ms: 5.4 Hz bins resolve semitones from ~90 Hz up
FRAME_RATE_HZ = SAMPLE_RATE_HZ / HOP_SAMPLES  # 10.77 frames/s: chroma changes slowly
MIDI_EXTENSIONS = (".mid", ".midi")


def _normalise(chroma: np.ndarray) -> np.ndarray:
    """Unit-length frames; silent frames become the flat vector (equally far from all)."""
    chroma = np.asarray(chroma, dtype=np.float32)
    norm = np.linalg.norm(chroma, axis=1, keepdims=True)
    flat = np.full(12, 1 / np.sqrt(12), dtype=np.float32)
    return np.where(norm > 1e-6, chroma / np.maximum(norm, 1e-6), flat)


def midi_chroma(path: Path) -> np.ndarray:
    """(frames, 12) chroma of a MIDI file at FRAME_RATE_HZ: sounding notes per pitch class."""
    roll = piano_roll(load_midi(path), FRAME_RATE_HZ) > 0  # pitches 21..108
    chroma = np.zeros((roll.shape[0], 12), dtype=np.float32)
    for k in range(roll.shape[1]):
        chroma[:, (21 + k) % 12] += roll[:, k]
    return _normalise(np.sqrt(chroma))  # sqrt: a doubled octave should not dominate


def audio_chroma(signal: np.ndarray, rate_hz: int) -> np.ndarray:
    import librosa
    import soxr

    if signal.ndim == 2:
        signal = signal.mean(axis=1)
    if rate_hz != SAMPLE_RATE_HZ:
        signal = soxr.resample(signal, rate_hz, SAMPLE_RATE_HZ)
    # causal frames (center=False): frame i ends at sample i * HOP + WINDOW, so the
    # identifier never hears the future; a CQT would look up to ~0.8 s ahead in the bass
    chroma = librosa.feature.chroma_stft(y=signal.astype(np.float32), sr=SAMPLE_RATE_HZ, n_fft=WINDOW_SAMPLES,
                                         hop_length=HOP_SAMPLES, center=False, tuning=0.0)
    return _normalise(chroma.T)


@dataclass
class ChromaCorpus:
    pieces: list[str]          # ids: MIDI path relative to the corpus folder, no extension
    starts: np.ndarray         # first frame of each piece in ``chroma``
    chroma: np.ndarray         # (total frames, 12), pieces concatenated

    @classmethod
    def build(cls, folder: Path, cache_dir: Path | None = None) -> "ChromaCorpus":
        from tqdm import tqdm

        folder = Path(folder)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_EXTENSIONS)
        key = hashlib.sha1(("\n".join(str(p.relative_to(folder)) for p in files) + f"{FRAME_RATE_HZ}").encode()).hexdigest()[:12]
        cache = Path(cache_dir) / f"chroma_{folder.name}_{key}.npz" if cache_dir else None
        if cache and cache.exists():
            z = np.load(cache, allow_pickle=False)
            return cls(list(z["pieces"]), z["starts"], z["chroma"])
        pieces, blocks = [], []
        for f in tqdm(files, desc=f"chroma of {folder.name}", unit="piece"):
            try:
                blocks.append(midi_chroma(f))
            except Exception as e:  # a bad file is skipped, as the follower's index does
                print(f"skipped {f}: {e}", file=sys.stderr)
                continue
            pieces.append(str(f.relative_to(folder).with_suffix("")))
        starts = np.concatenate([[0], np.cumsum([len(b) for b in blocks])[:-1]]).astype(np.int64)
        corpus = cls(pieces, starts, np.concatenate(blocks))
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, pieces=np.array(pieces), starts=starts, chroma=corpus.chroma)
        return corpus


@njit(cache=True)
def _advance(cost, prev_cost, d1, d2, local, out):
    """One query frame of subsequence DTW over the concatenated corpus.

    ``d1``/``d2``: accumulated costs at query frames i-1 and i-2 (zeros = free start);
    ``local[j]``: frame index of corpus frame ``j`` within its piece (paths never
    cross pieces). Each query frame adds exactly one local cost, so costs of paths
    with different step mixes stay comparable.
    """
    for j in range(cost.shape[0]):
        best = np.inf
        if local[j] >= 1:
            best = min(best, d1[j - 1], d2[j - 1] + prev_cost[j])
        if local[j] >= 2:
            best = min(best, d1[j - 2])
        out[j] = cost[j] + best


class StreamingIdentifier:
    """Feed audio chroma frames one at a time; ask for the best piece after each."""

    def __init__(self, corpus: ChromaCorpus):
        self.corpus = corpus
        n = len(corpus.chroma)
        self._local = np.arange(n) - np.repeat(corpus.starts, np.diff(np.append(corpus.starts, n)))
        self.reset()

    def reset(self):
        n = len(self.corpus.chroma)
        self._d1 = np.zeros(n)   # free start: a path may begin at any corpus frame
        self._d2 = np.zeros(n)
        self._prev_cost = np.zeros(n)
        self._frames = 0

    def push(self, frame: np.ndarray) -> tuple[int, float, int]:
        """Returns (piece index, margin to the runner-up per frame, corpus frame of the path end)."""
        cost = 1.0 - self.corpus.chroma @ frame.astype(np.float32)
        out = np.empty_like(self._d1)
        if self._frames == 0:
            out[:] = cost
        else:
            _advance(cost, self._prev_cost, self._d1, self._d2, self._local, out)
        self._d2, self._d1, self._prev_cost = self._d1, out, cost
        self._frames += 1
        per_piece = np.minimum.reduceat(out, self.corpus.starts)
        order = np.argsort(per_piece)[:2]
        best = int(order[0])
        margin = float((per_piece[order[1]] - per_piece[best]) / self._frames) if len(order) > 1 else 0.0
        start = self.corpus.starts[best]
        end = self.corpus.starts[best + 1] if best + 1 < len(self.corpus.starts) else len(out)
        return best, margin, int(np.argmin(out[start:end]))


def identify_file(corpus: ChromaCorpus, audio_path: Path, jsonl_path: Path) -> dict:
    """Replay a file through the identifier, writing the follower's JSON-lines schema."""
    import soundfile as sf

    signal, rate = sf.read(str(audio_path), dtype="float32", always_2d=False)
    audio_chroma(np.zeros(SAMPLE_RATE_HZ, dtype=np.float32), SAMPLE_RATE_HZ)  # librosa compiles on first use
    t0 = time.perf_counter()
    chroma = audio_chroma(signal, rate)
    feature_s = time.perf_counter() - t0
    ident = StreamingIdentifier(corpus)
    ident.push(chroma[0])  # numba compiles on the first call: keep it out of the timings
    ident.reset()
    match_s = 0.0
    with open(jsonl_path, "w") as out:
        for i, frame in enumerate(chroma):
            t1 = time.perf_counter()
            best, margin, local_frame = ident.push(frame)
            dt = time.perf_counter() - t1
            match_s += dt
            out.write(json.dumps({
                "t": round((i * HOP_SAMPLES + WINDOW_SAMPLES) / SAMPLE_RATE_HZ, 4), "piece": corpus.pieces[best],
                "title": corpus.pieces[best], "position_s": round(local_frame / FRAME_RATE_HZ, 3),
                "position_beats": None, "tempo": None, "confidence": round(margin, 5),
                "state": "following", "latency_ms": round(dt * 1000, 3)}) + "\n")
    duration_s = len(signal) / rate
    return {"duration_s": duration_s, "feature_s": feature_s, "match_s": match_s,
            "rtf": (feature_s + match_s) / duration_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chroma_identifier", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path, nargs="?")
    parser.add_argument("--corpus", type=Path, help="folder of MIDI files")
    parser.add_argument("--jsonl", type=Path, help="where to write the per-frame log")
    parser.add_argument("--jobs", type=Path, help="JSON list of {audio, corpus, jsonl}; each also writes JSONL.stats.json")
    parser.add_argument("--cache", type=Path, default=None, help="folder for the corpus chroma cache")
    args = parser.parse_args(argv)
    if args.jobs:
        jobs = json.loads(args.jobs.read_text())
    elif args.audio and args.corpus and args.jsonl:
        jobs = [{"audio": args.audio, "corpus": args.corpus, "jsonl": args.jsonl}]
    else:
        parser.error("give --jobs, or AUDIO with --corpus and --jsonl")
    corpora = {}
    for job in jobs:
        corpus = corpora.get(str(job["corpus"]))
        if corpus is None:
            t0 = time.perf_counter()
            corpus = corpora[str(job["corpus"])] = ChromaCorpus.build(Path(job["corpus"]), args.cache)
            print(f"corpus {job['corpus']}: {len(corpus.pieces)} pieces, {len(corpus.chroma)} frames, "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        stats = identify_file(corpus, Path(job["audio"]), Path(job["jsonl"]))
        stats["loadavg_1min"] = os.getloadavg()[0]
        Path(str(job["jsonl"]) + ".stats.json").write_text(json.dumps(stats))
        print(f"{Path(job['audio']).name}: {stats}", flush=True)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
