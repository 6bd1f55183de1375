"""Concert-hall acoustics on a rendered waveform: room, microphone, noise and level drift.

FluidSynth's output is dry and close; the follower hears instruments in a room
through a microphone. :mod:`training.augment.acoustic` imitates that on spectrogram
snippets at training time; this module does it on the audio itself while the
dataset is rendered (train renders only), where a real convolution is possible:

* **room**: a synthetic impulse response (no recorded IRs can be fetched here):
  a direct impulse, a pre-delay of 5-25 ms, then Gaussian noise under an
  exponential envelope with RT60 drawn from ``rt60_s``, low-passed by a one-pole
  filter (air and walls absorb the highs first), mixed at a direct-to-reverberant
  ratio drawn from ``drr_db``; convolved with the render (FFT).
* **microphone colouring**: a smooth random EQ over log frequency (tilt plus two
  broad bumps, within +-``mic_db``) and a high-pass below 40-120 Hz.
* **noise**: pink-to-white noise at ``snr_db`` below the signal's RMS.
* **level drift**: a gain that moves linearly (in dB) by up to +-``drift_db``
  over the render (a player or microphone at a changing distance).

Each effect has its own probability, so dry renders remain. Everything derives
from the generator given, so a render stays reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follower.errors import ConfigError


@dataclass(frozen=True)
class RoomConfig:
    p_room: float = 0.0
    rt60_s: tuple = (0.3, 1.6)
    drr_db: tuple = (-3.0, 12.0)
    p_mic: float = 0.0
    mic_db: float = 6.0
    p_noise: float = 0.0
    snr_db: tuple = (20.0, 50.0)
    drift_db: float = 0.0

    def __post_init__(self):
        for name in ("p_room", "p_mic", "p_noise"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a probability in [0, 1]")
        for name in ("rt60_s", "drr_db", "snr_db"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a (low, high) range")
            object.__setattr__(self, name, (float(lo), float(hi)))
        if self.rt60_s[0] <= 0 or self.mic_db < 0 or self.drift_db < 0:
            raise ConfigError("rt60_s must be positive, mic_db and drift_db not negative")

    @property
    def active(self) -> bool:
        return bool(self.p_room or self.p_mic or self.p_noise or self.drift_db)


def impulse_response(rng: np.random.Generator, sr: int, rt60: float, drr_db: float) -> np.ndarray:
    """A synthetic room impulse response (unit direct sound at sample 0)."""
    from scipy.signal import lfilter

    pre = int(rng.uniform(0.005, 0.025) * sr)
    n = int(rt60 * sr)                                   # down to -60 dB
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * 10.0 ** (-3.0 * t / rt60)
    a = rng.uniform(0.2, 0.8)                            # high-frequency damping
    tail = lfilter([1 - a], [1, -a], tail)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / max(float((tail ** 2).sum()), 1e-12))
    ir = np.zeros(pre + n)
    ir[0] = 1.0
    ir[pre:] += tail
    return ir


def mic_curve_db(rng: np.random.Generator, freqs: np.ndarray, mic_db: float,
                 cutoff_hz: float | None = None) -> np.ndarray:
    """Smooth random EQ (dB) over log frequency plus a high-pass, for ``freqs`` in Hz: at ``cutoff_hz``,
    or drawn from 40-120 Hz (the training renders' microphones)."""
    x = np.log2(np.maximum(freqs, 20.0) / 20.0) / 10.0   # 20 Hz .. 20 kHz -> 0 .. 1
    curve = rng.uniform(-mic_db, mic_db) * (x - 0.5)
    for _ in range(2):
        c, w = rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
        curve += rng.uniform(-mic_db, mic_db) * np.exp(-0.5 * ((x - c) / w) ** 2)
    cutoff = rng.uniform(40.0, 120.0) if cutoff_hz is None else float(cutoff_hz)
    curve += 20 * np.log10(1.0 / np.sqrt(1.0 + (cutoff / np.maximum(freqs, 1.0)) ** 4))  # 2nd-order high-pass
    return curve


def apply_room(audio: np.ndarray, sr: int, cfg: RoomConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(processed copy of ``audio``, what was applied); the length is kept (a tail past the
    end is cut: the render already carries a release tail)."""
    from scipy.signal import fftconvolve

    x = np.asarray(audio, dtype=np.float64)
    n = len(x)
    applied: dict = {}
    if n == 0 or not cfg.active:
        return x.astype(np.float32), applied
    if rng.random() < cfg.p_room:
        rt60 = float(np.exp(rng.uniform(*np.log(cfg.rt60_s))))
        drr = float(rng.uniform(*cfg.drr_db))
        x = fftconvolve(x, impulse_response(rng, sr, rt60, drr))[:n]
        applied["room"] = {"rt60_s": round(rt60, 3), "drr_db": round(drr, 1)}
    if rng.random() < cfg.p_mic:
        spec = np.fft.rfft(x)
        spec *= 10.0 ** (mic_curve_db(rng, np.fft.rfftfreq(n, 1.0 / sr), cfg.mic_db) / 20.0)
        x = np.fft.irfft(spec, n)
        applied["mic"] = True
    if rng.random() < cfg.p_noise:
        snr = float(rng.uniform(*cfg.snr_db))
        slope = rng.uniform(0.0, 1.0)                    # 0 white .. 1 pink (1/f power)
        freqs = np.fft.rfftfreq(n, 1.0 / sr)
        shaped = np.fft.rfft(rng.standard_normal(n)) / np.maximum(freqs, 20.0) ** (slope / 2)
        noise = np.fft.irfft(shaped, n)
        rms = np.sqrt(np.mean(x ** 2))
        x = x + noise * rms * 10.0 ** (-snr / 20.0) / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)
        applied["noise_snr_db"] = round(snr, 1)
    if cfg.drift_db:
        g0, g1 = rng.uniform(-cfg.drift_db, cfg.drift_db, 2)
        x = x * 10.0 ** (np.linspace(g0, g1, n) / 20.0)
        applied["drift_db"] = [round(float(g0), 1), round(float(g1), 1)]
    return x.astype(np.float32), applied
