"""Tempo augmentation of training audio snippets by time-stretching the spectrogram.

The dataset renders each piece once at a tempo ratio drawn from 0.8-1.25 of the
written tempo. Real performers leave that range: the Bach10 quartets are played
at about 0.6-0.8 of their MIDI tempo, and a snippet of 42 frames then holds 25-35
frames' worth of written music, a mismatch the audio encoder never saw. Rendering
the whole corpus again at more tempi would cost hours of synthesis and disk; this
module instead stretches the stored spectrogram around each pair's audio centre:

    new frame j  <-  old frame  a + (j - half) * scale      (linear interpolation)

so the pair's centre stays aligned with the same score position and ``scale < 1``
shows the encoder *slower* playing of the same notes (``scale`` = played tempo /
rendered tempo). Linear interpolation of log-magnitude frames smears an onset
over ``1 / scale`` frames, about what the 93 ms analysis window already does, and
the harmonic content (the frequency axis) is untouched, as in a real slower
performance. Only the training split is stretched; validation and test stay as
rendered so their numbers remain comparable with the unaugmented runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follower.config import JsonConfig
from follower.errors import ConfigError
from follower.snippets import audio_input


@dataclass(frozen=True)
class TempoAugmentConfig(JsonConfig):
    p_stretch: float = 0.5           # share of training snippets that are stretched
    scale_range: tuple = (0.6, 1.0)  # played / rendered tempo, drawn log-uniform

    def __post_init__(self):
        if not 0 <= self.p_stretch <= 1:
            raise ConfigError(f"p_stretch={self.p_stretch!r} must be a probability in [0, 1]")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ConfigError(f"scale_range={self.scale_range!r} must satisfy 0 < low <= high")
        object.__setattr__(self, "scale_range", (float(lo), float(hi)))


def stretch_window(window: np.ndarray, scale: float, width: int) -> np.ndarray:
    """``width`` frames resampled from ``window`` (frames, bins), centred on ``len(window) // 2``.

    Output frame ``j`` reads the input at ``len(window) // 2 + (j - width // 2) * scale``;
    the window must reach that far on both sides (``stretch_source_width``).
    """
    centre = len(window) // 2
    pos = centre + (np.arange(width) - width // 2) * float(scale)
    if pos[0] < 0 or pos[-1] > len(window) - 1:
        raise ConfigError(f"window of {len(window)} frames too short to stretch {width} frames by {scale}")
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(window) - 1)
    frac = (pos - lo)[:, None].astype(np.float32)
    w = window.astype(np.float32)
    return (1 - frac) * w[lo] + frac * w[hi]


def stretch_source_width(width: int, scale: float) -> int:
    """Frames to cut around the centre so ``stretch_window`` can read ``width`` frames at ``scale``."""
    return int(np.ceil(width * max(float(scale), 1.0))) + 2


class TempoStretchedSplit:
    """A training split whose ``audio_batch`` time-stretches a random share of its snippets.

    Seeded; the random state is not checkpointed, so a resumed run draws other
    (equally distributed) stretches than an uninterrupted one.
    """

    def __init__(self, split, cfg: TempoAugmentConfig | None = None, *, seed: int = 0):
        self._split = split
        self.tempo_config = cfg or TempoAugmentConfig()
        self._rng = np.random.default_rng(seed)

    def audio_batch(self, pair_idx) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(pair_idx))
        x = self._split.audio_batch(idx)
        cfg = self.tempo_config
        chosen = np.flatnonzero(self._rng.random(len(idx)) < cfg.p_stretch)
        if len(chosen) == 0:
            return x
        lo, hi = np.log(cfg.scale_range[0]), np.log(cfg.scale_range[1])
        scales = np.exp(self._rng.uniform(lo, hi, len(chosen)))
        s = self._split
        width = s.snippet_config.audio_frames
        for i, scale in zip(chosen, scales):
            render, audio_c, _ = s.pairs[idx[i]]
            src = s._windows(s.spectrograms, s.spec_offsets, [render], [audio_c],
                             stretch_source_width(width, scale))[0]
            x[i] = audio_input(stretch_window(src, scale, width)[None])[0]
        return x

    def __getattr__(self, name):
        return getattr(self._split, name)
