"""Acoustic augmentation of training spectrogram snippets, aimed at real recordings.

The training audio is dry FluidSynth output with two soundfonts; the real test
recordings (Bach10: violin, clarinet, saxophone, bassoon) were played in a room
and picked up by microphones. Three differences a 2 s log-spectrogram snippet
shows and the dataset does not vary, each simulated here on the encoder's input
(``follower.features``: log(1 + x) of filterbank magnitudes), so no re-rendering
is needed and validation/test stay untouched:

* **colour** (instrument body, microphone, room EQ): a random gain per band, a
  spectral tilt (±``tilt_db`` across the 92 bands) plus a few smooth bumps
  (±``eq_db``), and an overall gain;
* **reverb**: each band gets an exponentially decaying tail along time (RT60 drawn
  from ``rt60_s``, decay per 50 ms frame ``10**(-3 / (rt60 * fps))``), mixed in
  with a random wet share: notes smear into the following frames as in a room;
* **noise floor**: Rayleigh-distributed band magnitudes at ``snr_db`` below the
  snippet's peak, with a random pink-to-white slope, added in power.

Everything is applied in the linear magnitude domain (``expm1``), so a gain is a
gain whatever the level, then compressed back with ``log1p``. Each effect is
applied per snippet with its own probability, so clean snippets remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follower.config import JsonConfig
from follower.errors import ConfigError


@dataclass(frozen=True)
class AudioAugmentConfig(JsonConfig):
    p_eq: float = 0.8
    tilt_db: float = 6.0                  # +- this much from the lowest to the highest band
    eq_db: float = 6.0                    # +- gain of each smooth bump
    eq_bumps: int = 3
    gain_db: float = 6.0                  # +- overall level
    p_reverb: float = 0.5
    rt60_s: tuple = (0.3, 1.5)
    wet: tuple = (0.2, 0.7)               # share of the reverberant part in the mix
    p_noise: float = 0.5
    snr_db: tuple = (25.0, 50.0)          # noise floor below the snippet's peak band magnitude
    frame_rate_hz: float = 22050 / 1102

    def __post_init__(self):
        for name in ("p_eq", "p_reverb", "p_noise"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a probability in [0, 1]")
        for name in ("rt60_s", "wet", "snr_db"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a (low, high) range")
            object.__setattr__(self, name, (float(lo), float(hi)))
        if self.rt60_s[0] <= 0 or not 0 <= self.wet[0] <= self.wet[1] <= 1:
            raise ConfigError(f"rt60_s={self.rt60_s} must be positive and wet={self.wet} within [0, 1]")
        if self.frame_rate_hz <= 0 or self.eq_bumps < 0:
            raise ConfigError("frame_rate_hz must be positive and eq_bumps not negative")


def _db(x):
    return 10.0 ** (np.asarray(x) / 20.0)


def band_gains_db(rng: np.random.Generator, n: int, n_bins: int, cfg: AudioAugmentConfig) -> np.ndarray:
    """(n, n_bins) random EQ curves in dB: tilt + smooth Gaussian bumps + overall gain."""
    pos = np.linspace(-0.5, 0.5, n_bins)[None, :]
    curve = rng.uniform(-cfg.tilt_db, cfg.tilt_db, (n, 1)) * pos  # lowest to highest band differ by the tilt
    curve = curve + rng.uniform(-cfg.gain_db, cfg.gain_db, (n, 1))
    bins = np.arange(n_bins)[None, :]
    for _ in range(cfg.eq_bumps):
        centre = rng.uniform(0, n_bins, (n, 1))
        width = rng.uniform(3, 16, (n, 1))      # bands (16 per octave): a fifth to an octave
        curve = curve + rng.uniform(-cfg.eq_db, cfg.eq_db, (n, 1)) * np.exp(-0.5 * ((bins - centre) / width) ** 2)
    return curve


def reverb_smear(lin: np.ndarray, decay: np.ndarray, wet: np.ndarray) -> np.ndarray:
    """Mix each (bins, frames) snippet with its exponentially decaying tail along time.

    ``lin``: (n, bins, frames) magnitudes; ``decay``, ``wet``: (n,). The tail is the
    causal sum ``(1 - a) * sum_k a**k x[t - k]``, normalised so a steady tone keeps its level.
    """
    a = decay[:, None]
    tail = np.empty_like(lin)
    acc = lin[:, :, 0] * 0
    for t in range(lin.shape[2]):
        acc = a * acc + (1 - a) * lin[:, :, t]
        tail[:, :, t] = acc
    w = wet[:, None, None]
    return (1 - w) * lin + w * tail


def augment_batch(x: np.ndarray, rng: np.random.Generator, cfg: AudioAugmentConfig | None = None) -> np.ndarray:
    """Augmented copy of an encoder audio batch (n, 1, n_bins, frames), log1p domain, float32."""
    cfg = cfg or AudioAugmentConfig()
    if x.ndim != 4 or x.shape[1] != 1:
        raise ConfigError(f"audio batch of shape {x.shape}; expected (n, 1, n_bins, frames)")
    n, _, n_bins, _ = x.shape
    lin = np.expm1(x[:, 0].astype(np.float64))              # (n, bins, frames) magnitudes

    eq = rng.random(n) < cfg.p_eq
    if eq.any():
        lin[eq] *= _db(band_gains_db(rng, int(eq.sum()), n_bins, cfg))[:, :, None]

    rev = rng.random(n) < cfg.p_reverb
    if rev.any():
        k = int(rev.sum())
        rt60 = np.exp(rng.uniform(np.log(cfg.rt60_s[0]), np.log(cfg.rt60_s[1]), k))
        decay = 10.0 ** (-3.0 / (rt60 * cfg.frame_rate_hz))
        lin[rev] = reverb_smear(lin[rev], decay, rng.uniform(*cfg.wet, k))

    noisy = rng.random(n) < cfg.p_noise
    if noisy.any():
        k = int(noisy.sum())
        peak = lin[noisy].max(axis=(1, 2))
        level = peak * _db(-rng.uniform(*cfg.snr_db, k))
        octaves = np.linspace(0, 1, n_bins)[None, :] * n_bins / 16.0
        shape = _db(-rng.uniform(0, 3, (k, 1)) * octaves)          # 0 (white) to -3 dB/octave (pink)
        # complex Gaussian noise in each band: Rayleigh magnitudes, power adds
        noise = (level[:, None] * shape)[:, :, None] * np.abs(
            rng.standard_normal((k, n_bins, x.shape[3])) + 1j * rng.standard_normal((k, n_bins, x.shape[3]))
        ) / np.sqrt(2)
        lin[noisy] = np.sqrt(lin[noisy] ** 2 + noise ** 2)

    return np.log1p(np.maximum(lin, 0.0)).astype(np.float32)[:, None]


class AugmentedSplit:
    """A training split whose ``audio_batch`` returns augmented snippets; all else is the split's.

    Seeded; the augmentation's random state is not checkpointed, so a resumed run
    draws other (equally distributed) augmentations than an uninterrupted one.
    """

    def __init__(self, split, cfg: AudioAugmentConfig | None = None, *, seed: int = 0):
        self._split = split
        self.augment_config = cfg or AudioAugmentConfig()
        self._rng = np.random.default_rng(seed)

    def audio_batch(self, pair_idx) -> np.ndarray:
        return augment_batch(self._split.audio_batch(pair_idx), self._rng, self.augment_config)

    def __getattr__(self, name):
        return getattr(self._split, name)
