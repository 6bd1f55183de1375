"""Offline alignment of a whole recording to its score, for ``follower align``.

Unlike the live follower, which must decide from the past alone, this sees the
whole recording and may look ahead. Two passes:

1. **Coarse, learned.** Every audio frame's 2.1 s window is embedded by the bundle's
   audio encoder, every roll frame's window by its score encoder (the same
   cross-modal space the follower searches), and dynamic time warping over their
   cosine distance finds the path through the whole piece. The learned similarity
   tolerates timbre and room (it was trained for that) but, at 2.1 s a window,
   does not separate neighbouring notes.
2. **Fine, note level.** In a band around the coarse path, a second warping at a
   finer frame rate (``fine_hop_samples``, 50 frames/s by default) over two
   features that do separate neighbouring notes: chroma (the follower's own
   log-filterbank folded onto the 12 pitch classes) against the score's sounding
   pitch classes, and chroma onsets (the rise of each pitch class's energy) against
   the score's note onsets; plus the learned similarity of pass 1 (nearest coarse
   frame), which keeps the path on course where chroma is ambiguous. The learned
   pass alone places notes about 50 ms early (measured on renders with exact
   timing); ``learned_lag_s`` moves its times by that much.

Which weights, band and penalty: see the "Offline alignment" section of
docs/benchmarks.md (``python -m benchmarks.alignment``).

Time base. Audio frame ``i`` of a front end with hop ``h`` and frame size ``N`` is
stamped with the centre of its window, ``((i + 1) h - N / 2) / rate``; roll frame
``j`` covers ``[j, j + 1) / fps`` of the MIDI's timeline and is stamped with its centre,
``(j + 0.5) / fps``: each frame stands for the moment in its middle, on both sides.
The result maps MIDI seconds to recording seconds (and back), piecewise linear between path points.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .config import JsonConfig
from .errors import ConfigError
from .features import FeatureConfig, _filterbank, spectrogram
from .midi import Score, piano_roll
from .snippets import audio_input, cut, score_roll


EDGE_S = 0.03  # half a frame of the coarse pass, about


@dataclass(frozen=True)
class AlignConfig(JsonConfig):
    """Settings of the offline alignment (defaults: docs/benchmarks.md, "Offline alignment")."""

    coarse_max_cells: int = 40_000_000  # longer pieces are warped on every k-th frame to stay under this
    coarse_penalty: float = 0.05        # extra cost of a non-diagonal step, in cosine distance
    # the learned pass places events this much early: median -49 ms on renders with exact timing
    # (docs/benchmarks.md, "Offline alignment": `coarse` without this shift); its times are moved by it
    learned_lag_s: float = 0.049
    refine: bool = True                 # False: the coarse path only (20 frames/s)
    fine_hop_samples: int = 441         # 50 frames/s at 22.05 kHz
    band_s: float = 1.0                 # the fine path stays within this of the coarse one
    chroma_weight: float = 1.0
    onset_weight: float = 1.0
    embed_weight: float = 1.0           # the learned similarity in the fine pass too (keeps it on course)
    fine_penalty: float = 0.05
    free_ends: bool = True              # the recording may be an excerpt: start and end anywhere in the score
    confidence_window_s: float = 1.0    # confidence is smoothed over this much audio
    batch: int = 256

    def __post_init__(self):
        if self.fine_hop_samples <= 0 or self.band_s <= 0 or self.coarse_max_cells < 10_000:
            raise ConfigError("fine_hop_samples and band_s must be positive, coarse_max_cells at least 10000")
        if min(self.chroma_weight, self.onset_weight, self.embed_weight) < 0:
            raise ConfigError("feature weights must not be negative")


@dataclass
class Alignment:
    """A monotone map between the recording and the score, with a confidence along it."""

    audio_s: np.ndarray       # (m,) path points, non-decreasing
    midi_s: np.ndarray        # (m,) non-decreasing
    conf_audio_s: np.ndarray  # confidence samples: where in the recording ...
    confidence: np.ndarray    # ... and how clearly the score matched there (0..1)

    @property
    def midi_span(self) -> tuple[float, float]:
        return float(self.midi_s[0]), float(self.midi_s[-1])

    def audio_time(self, midi_s) -> np.ndarray:
        """Recording seconds of MIDI seconds (NaN outside the aligned part of the score).

        Where the path holds one score moment over several audio frames (a held note),
        the first of them is the moment it began."""
        m, a = _first_per_value(self.midi_s, self.audio_s)
        t = np.asarray(midi_s, dtype=np.float64)
        out = np.interp(t, m, a)
        # path points stand for frame centres: half a coarse frame past either end is still in
        return np.where((t < m[0] - EDGE_S) | (t > m[-1] + EDGE_S), np.nan, out)

    def confidence_at(self, audio_s) -> np.ndarray:
        return np.interp(audio_s, self.conf_audio_s, self.confidence)


def _first_per_value(keys: np.ndarray, values: np.ndarray):
    keys, first = np.unique(keys, return_index=True)
    return keys, values[first]


def frame_times(n: int, features: FeatureConfig) -> np.ndarray:
    """Centre of each causal frame's window, seconds of the recording (the first frames' windows
    reach back before the recording, which starts at 0)."""
    i = np.arange(n)
    return np.maximum(((i + 1) * features.hop_samples - features.frame_size_samples / 2) / features.sample_rate_hz,
                      0.0)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def band_pitch_classes(features: FeatureConfig) -> np.ndarray:
    """(n_bins, 12) 0/1: each filterbank band to the pitch class of its centre frequency."""
    fb = _filterbank(features)
    freqs = np.fft.fftfreq(features.frame_size_samples, 1 / features.sample_rate_hz)[: fb.shape[0]]
    centre_hz = (fb * freqs[:, None]).sum(0) / fb.sum(0)
    pc = np.round(12 * np.log2(centre_hz / 440.0) + 69).astype(int) % 12
    return np.eye(12, dtype=np.float32)[pc]


def roll_pitch_classes(pitch_lo: int, pitch_hi: int) -> np.ndarray:
    return np.eye(12, dtype=np.float32)[np.arange(pitch_lo, pitch_hi + 1) % 12]


def embed_frames(encode, windows_of, n: int, batch: int, progress, desc: str) -> np.ndarray:
    """Embeddings of the windows centred on frames 0..n-1, in batches, with a progress bar."""
    from tqdm import tqdm

    out = []
    with tqdm(total=n, desc=desc, unit="frame", disable=not progress, dynamic_ncols=True, leave=False) as bar:
        for start in range(0, n, batch):
            idx = np.arange(start, min(start + batch, n))
            out.append(encode(windows_of(idx)))
            bar.update(len(idx))
    return _unit(np.concatenate(out))


def align_recording(signal: np.ndarray, rate_hz: float, score: Score, bundle, config: AlignConfig = AlignConfig(),
                    *, reference: np.ndarray | None = None, progress: bool = False, cents: int = 0) -> Alignment:
    """Align ``signal`` to ``score``; ``reference``: score-snippet embeddings of a whole corpus (an
    index's, same bundle) against which the confidence is judged (default: this score's own windows);
    ``cents``: the recording heard as if tuned that much nearer 440 Hz (follower.tuning)."""
    from .dtw import band_dtw
    from .index import ScoreEmbedder

    feat, snip = bundle.config.features, bundle.config.snippets
    fps = feat.frame_rate_hz
    spec = spectrogram(signal, rate_hz, feat, cents=cents)
    roll = score_roll(score, snip, fps)
    if len(spec) < 2:
        raise ConfigError("the recording is shorter than two frames (0.1 s); nothing to align")

    # 1. coarse: learned embeddings of every frame's window
    audio_emb = embed_frames(bundle.audio, lambda idx: audio_input(cut(spec, idx, snip.audio_frames)),
                             len(spec), config.batch, progress, "embed audio")
    score_embedder = ScoreEmbedder(bundle.score, snip, batch=config.batch)  # repeated windows embedded once
    score_emb = embed_frames(score_embedder, lambda idx: cut(roll, idx, snip.roll_frames),
                             len(roll), config.batch, progress, "embed score")
    k = max(1, int(np.ceil(np.sqrt(len(spec) * len(roll) / config.coarse_max_cells))))
    A, B = audio_emb[::k], score_emb[::k]
    path = band_dtw(A, B, np.zeros(len(A), np.int64), np.full(len(A), len(B), np.int64),
                    offset=1.0, penalty=config.coarse_penalty, free_ends=config.free_ends)
    coarse_times = frame_times(len(spec), feat) + config.learned_lag_s
    coarse_audio_s = coarse_times[path[:, 0] * k]
    coarse_midi_s = (path[:, 1] * k + 0.5) / fps
    conf_s, conf = _confidence(A, B, B if reference is None else _unit(reference), path, coarse_audio_s,
                               config.confidence_window_s)
    if not config.refine:
        return Alignment(coarse_audio_s, coarse_midi_s, conf_s, conf)

    # 2. fine: chroma and chroma onsets in a band around the coarse path
    fine = dataclasses.replace(feat, hop_samples=int(config.fine_hop_samples))
    ffps = fine.frame_rate_hz
    fspec = spectrogram(signal, rate_hz, fine, cents=cents)
    a_times = frame_times(len(fspec), fine)
    n_score = int(np.ceil(score.duration_s * ffps)) + 1
    X, Y = _fine_features(fspec, fine, score, ffps, n_score, config)
    w_total = config.chroma_weight + config.onset_weight
    if config.embed_weight > 0:
        Xe, Ye = _resampled_embeddings(audio_emb, score_emb, coarse_times, a_times, fps, ffps,
                                       n_score, config.embed_weight)
        X, Y = np.hstack([X, Xe]), np.hstack([Y, Ye])
        w_total += config.embed_weight
    # the fine path runs from the coarse path's first score moment to its last (the ends are
    # the coarse pass's decision: a band with free ends lets onsets at the edges go unmatched)
    j0 = int(np.clip(np.floor(coarse_midi_s[0] * ffps), 0, n_score - 1))
    j1 = int(np.clip(np.ceil(coarse_midi_s[-1] * ffps) + 1, j0 + 1, n_score))
    Y = Y[j0:j1]
    centre = np.interp(a_times, *_first_per_value(coarse_audio_s, coarse_midi_s)) * ffps - 0.5 - j0
    radius = config.band_s * ffps
    lo = np.clip(np.floor(centre - radius), 0, len(Y) - 1).astype(np.int64)
    hi = np.clip(np.ceil(centre + radius) + 1, 1, len(Y)).astype(np.int64)
    lo, hi = np.minimum.accumulate(lo[::-1])[::-1], np.maximum.accumulate(hi)  # a connected, monotone band
    lo[0], hi[-1] = 0, len(Y)
    fpath = band_dtw(X, Y, lo, hi, offset=w_total, penalty=config.fine_penalty, free_ends=False)
    fpath[:, 1] += j0
    return Alignment(a_times[fpath[:, 0]], (fpath[:, 1] + 0.5) / ffps, conf_s, conf)


def _fine_features(fspec, fine: FeatureConfig, score: Score, ffps: float, n_score: int, config: AlignConfig):
    """Audio and score rows whose dot product is chroma_weight * cos(chroma) + onset_weight * cos(onsets)."""
    pcs = band_pitch_classes(fine)
    chroma_a = _unit(fspec @ pcs)
    rise = np.maximum(np.diff(fspec, axis=0, prepend=fspec[:1]), 0.0)
    onset_a = _unit(rise @ pcs)
    rpcs = roll_pitch_classes(21, 108)
    sounding = piano_roll(score, ffps, n_frames=n_score) > 0
    starts = piano_roll(score, ffps, n_frames=n_score, onsets=True) > 0
    chroma_s = _unit(np.sqrt(sounding.astype(np.float32) @ rpcs))  # sqrt: a doubled voice does not dominate
    onset_s = starts.astype(np.float32) @ rpcs
    # an audio onset rises over the frames whose window reaches it (about +-2 frames at 50/s)
    half = max(1, int(round(fine.frame_size_samples / 2 / fine.hop_samples)))
    kernel = 1.0 - np.abs(np.arange(-half, half + 1)) / (half + 1)
    onset_s = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, onset_s)
    onset_s = _unit(onset_s) * (onset_s.sum(1, keepdims=True) > 0)
    wc, wo = np.sqrt(config.chroma_weight), np.sqrt(config.onset_weight)
    return (np.hstack([wc * chroma_a, wo * onset_a]).astype(np.float32),
            np.hstack([wc * chroma_s, wo * onset_s]).astype(np.float32))


def _resampled_embeddings(audio_emb, score_emb, coarse_times, fine_times, fps, ffps, n_score, weight):
    """The coarse embeddings at the fine frames (nearest), scaled so the dot product is weight * cosine."""
    ia = np.clip(np.searchsorted(coarse_times, fine_times), 0, len(audio_emb) - 1)
    js = np.clip(np.round(np.arange(n_score) / ffps * fps).astype(np.int64), 0, len(score_emb) - 1)
    w = np.sqrt(weight)
    return w * audio_emb[ia], w * score_emb[js]


def _confidence(A, B, R, path, audio_s, window_s, chunk: int = 256):
    """How the matched score window ``B[j]`` compares with the best match anywhere in ``R``, per path point,
    smoothed.

    ``(matched - median) / (best - median)`` of the audio window's similarities to every row of
    ``R`` (an index of many pieces, or this score's own windows), clipped to 0..1: 1 where the
    score matches as well as anything in the corpus, near 0 where it is no better than a typical
    snippet. Against a whole corpus, a wrong score is told by a low value."""
    matched = np.einsum("ij,ij->i", A[path[:, 0]], B[path[:, 1]])
    frames = np.unique(path[:, 0])
    best = np.empty(len(A), np.float32)
    typical = np.empty(len(A), np.float32)
    for start in range(0, len(frames), chunk):
        f = frames[start:start + chunk]
        sims = A[f] @ np.asarray(R, np.float32).T
        best[f] = sims.max(axis=1)
        typical[f] = np.median(sims, axis=1)
    i = path[:, 0]
    score = np.clip((matched - typical[i]) / np.maximum(best[i] - typical[i], 1e-6), 0.0, 1.0)
    if len(audio_s) > 1:
        step = max(float(np.median(np.diff(np.unique(audio_s)))), 1e-3)
        width = max(1, int(round(window_s / step)))
        kernel = np.ones(width) / width
        padded = np.pad(score, (width // 2, width - 1 - width // 2), mode="edge")
        score = np.convolve(padded, kernel, mode="valid")
    return audio_s, np.clip(score, 0.0, 1.0)
