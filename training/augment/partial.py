"""Partial windows: training audio snippets whose first frames are silence.

When music starts (the first notes of a performance, a restart after a pause), the
follower's 2.1 s window is only partly filled: its ring holds zeros (log1p 0 =
silence) before the first sounding frame, and a window votes as soon as
``EngineConfig.min_sound_fraction`` (30 %) of its frames sound, from about 0.65 s
(``follower.engine``). The encoders were trained on full windows only, so these
first windows are inputs they never saw, and the right piece reaches the first
stage's candidates only once the window is nearly full (docs/improvements.md (t),
(w)). Here a share of the training audio snippets gets its first frames set to 0,
keeping the last ``sounding`` share (drawn uniformly from ``min_sounding`` to 1), and
stays paired with the full score snippet: the pair the engine asks about then.

Only the training split is changed; validation and test stay as rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follower.config import JsonConfig
from follower.errors import ConfigError


@dataclass(frozen=True)
class PartialWindowConfig(JsonConfig):
    p_partial: float = 0.3        # share of training snippets made partial
    min_sounding: float = 0.3     # the engine's min_sound_fraction: emptier windows never vote

    def __post_init__(self):
        if not 0 <= self.p_partial <= 1:
            raise ConfigError(f"p_partial={self.p_partial!r} must be a probability in [0, 1]")
        if not 0 < self.min_sounding <= 1:
            raise ConfigError(f"min_sounding={self.min_sounding!r} must be in (0, 1]")


def keep_last(x: np.ndarray, shares) -> np.ndarray:
    """Copy of an audio batch (n, 1, n_bins, frames) whose snippet i keeps only the last ``shares[i]`` of its
    frames sounding (at least one); the frames before are set to 0 (silence in the log1p domain)."""
    out = np.array(x, dtype=np.float32, copy=True)
    frames = x.shape[3]
    for i, share in enumerate(shares):
        out[i, ..., : frames - max(1, int(round(share * frames)))] = 0.0
    return out


def silence_start(x: np.ndarray, rng: np.random.Generator, cfg: PartialWindowConfig) -> np.ndarray:
    """Copy of an encoder audio batch (n, 1, n_bins, frames) with the first frames of some
    snippets set to 0 (silence in the log1p domain)."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ConfigError(f"audio batch of shape {x.shape}; expected (n, 1, n_bins, frames)")
    chosen = np.flatnonzero(rng.random(len(x)) < cfg.p_partial)
    shares = np.ones(len(x))
    shares[chosen] = rng.uniform(cfg.min_sounding, 1.0, len(chosen))
    return keep_last(x, shares)


class PartialWindowSplit:
    """A training split whose ``audio_batch`` returns partly silent snippets; all else is the split's.

    Seeded; the random state is not checkpointed (as :class:`training.augment.acoustic.AugmentedSplit`).
    """

    def __init__(self, split, cfg: PartialWindowConfig | None = None, *, seed: int = 0):
        self._split = split
        self.partial_config = cfg or PartialWindowConfig()
        self._rng = np.random.default_rng(seed)

    def audio_batch(self, pair_idx) -> np.ndarray:
        return silence_start(self._split.audio_batch(pair_idx), self._rng, self.partial_config)

    def __getattr__(self, name):
        return getattr(self._split, name)
