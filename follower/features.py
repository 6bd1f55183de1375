"""The one audio front end, shared by training and the real-time follower.

Dorfer et al. (TISMIR 2018): 22.05 kHz mono, 2048-sample frames at 20 frames/s,
a logarithmic filterbank with 16 bands per octave from 30 Hz to 6 kHz (92 bands,
as madmom builds it), and log(1 + x) compression.

Two entry points share one per-frame kernel (:func:`_frames_to_features`):

* :func:`spectrogram` for a whole signal (dataset building, evaluation);
* :class:`StreamingSpectrogram` with ``push(block)`` for live input; it may hear music tuned
  away from A4 = 440 Hz as if it were at 440 (:func:`tuned_filterbank`, :mod:`follower.tuning`),
  and at 0 cents its frames are exactly those of the kernel.

Framing is *causal*: frame ``i`` covers the ``frame_size_samples`` samples that end
at sample ``(i + 1) * hop_samples`` (zeros before the signal starts), so a frame
exists as soon as its last sample has arrived and a signal of ``n`` samples has
exactly ``n // hop_samples`` frames. Offline and streaming output are the same
array for any block size (tested).

Deviation from the paper, measured: the paper's hop is 22050 / 20 = 1102.5
samples. We use an integer hop of 1102 samples (20.009 frames/s, 0.05 % faster)
so that the streaming buffer advances by whole samples; 42 frames then span
2.099 s instead of 2.100 s.

Resampling (other input rates, e.g. 44.1 or 48 kHz) uses soxr, the resampler
librosa uses by default, in its streaming form for both entry points so that
offline and live input see the same filter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .config import JsonConfig
from .errors import BadAudioError, ConfigError


@dataclass(frozen=True)
class FeatureConfig(JsonConfig):
    """Settings of the audio front end; saved in every exported bundle."""

    sample_rate_hz: int = 22050
    frame_size_samples: int = 2048
    hop_samples: int = 1102
    bands_per_octave: int = 16
    fmin_hz: float = 30.0
    fmax_hz: float = 6000.0
    fref_hz: float = 440.0
    framing: str = "causal"

    def __post_init__(self):
        for name in ("sample_rate_hz", "frame_size_samples", "hop_samples", "bands_per_octave"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        if self.hop_samples > self.frame_size_samples:
            raise ConfigError(
                f"hop_samples={self.hop_samples} must not exceed "
                f"frame_size_samples={self.frame_size_samples}"
            )
        if not 0 < self.fmin_hz < self.fmax_hz <= self.sample_rate_hz / 2:
            raise ConfigError(
                f"fmin_hz={self.fmin_hz}, fmax_hz={self.fmax_hz} must satisfy "
                f"0 < fmin_hz < fmax_hz <= sample_rate_hz/2={self.sample_rate_hz / 2}"
            )
        if self.framing != "causal":
            raise ConfigError(f"framing={self.framing!r} is not supported; expected 'causal'")

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.hop_samples

    @property
    def n_bins(self) -> int:
        return _filterbank(self).shape[1]

    def frame_end_s(self, frame_index):
        """Time (s) of the last sample of causal frame ``frame_index``."""
        return (np.asarray(frame_index) + 1) * self.hop_samples / self.sample_rate_hz

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


_FILTERBANK_CACHE: dict = {}


def _filterbank_key(config: FeatureConfig) -> tuple:
    """What the filterbank is built from (its cache key)."""
    return (config.sample_rate_hz, config.frame_size_samples, config.bands_per_octave,
            config.fmin_hz, config.fmax_hz, config.fref_hz)


def _filterbank(config: FeatureConfig) -> np.ndarray:
    """Triangular log-frequency filterbank, shape (frame_size/2, n_bands), float32.

    Built as madmom's LogarithmicFilterbank (unique_filters, norm_filters): centre
    frequencies every 1/16 octave (referenced to 440 Hz) are snapped to the nearest
    FFT bin, duplicates are dropped, and consecutive bin triplets form
    area-normalised triangles. 16 bands/octave over 30 Hz..6 kHz gives 92 bands.
    """
    key = _filterbank_key(config)
    if key in _FILTERBANK_CACHE:
        return _FILTERBANK_CACHE[key]
    n_fft_bins = config.frame_size_samples // 2
    fft_freqs_hz = np.fft.fftfreq(config.frame_size_samples, 1.0 / config.sample_rate_hz)[:n_fft_bins]
    bpo = config.bands_per_octave
    lo = np.floor(np.log2(config.fmin_hz / config.fref_hz) * bpo)
    hi = np.ceil(np.log2(config.fmax_hz / config.fref_hz) * bpo)
    freqs_hz = config.fref_hz * 2.0 ** (np.arange(lo, hi) / bpo)
    freqs_hz = freqs_hz[(freqs_hz >= config.fmin_hz) & (freqs_hz <= config.fmax_hz)]
    idx = np.clip(np.searchsorted(fft_freqs_hz, freqs_hz), 1, n_fft_bins - 1)
    idx = idx - (freqs_hz - fft_freqs_hz[idx - 1] < fft_freqs_hz[idx] - freqs_hz)
    bins = np.unique(idx)
    if len(bins) < 3:
        raise ConfigError(f"the filterbank settings {key} leave fewer than 3 distinct FFT bins")
    fb = np.zeros((n_fft_bins, len(bins) - 2), dtype=np.float64)
    for band, (start, centre, stop) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:])):
        # rising edge start..centre (centre included), falling edge centre..stop (exclusive)
        fb[start:centre + 1, band] = np.linspace(0.0, 1.0, centre - start + 1)
        fb[centre:stop, band] = np.linspace(1.0, 0.0, stop - centre, endpoint=False)
        fb[:, band] /= fb[:, band].sum()
    fb = fb.astype(np.float32)
    _FILTERBANK_CACHE[key] = fb
    return fb


_WINDOW_CACHE: dict = {}


def _window(n: int) -> np.ndarray:
    """The float32 Hann window of ``n`` samples, computed once (a live update computes one frame, and
    recomputing the window cost as much as its FFT)."""
    w = _WINDOW_CACHE.get(n)
    if w is None:
        w = _WINDOW_CACHE[n] = np.hanning(n).astype(np.float32)
        w.flags.writeable = False
    return w


def tuned_filterbank(config: FeatureConfig, cents: int = 0) -> np.ndarray:
    """The filterbank for music tuned ``cents`` away from ``fref_hz`` (A4 = 440 * 2**(cents/1200) Hz).

    The magnitude spectrum is read at every bin's frequency times 2**(cents/1200), linearly
    interpolated between FFT bins, and then filtered as always: one (frame_size/2, n_bands) matrix,
    so that a tuned frame costs what any frame costs, the bands stay the same, and at 0 cents it is
    :func:`_filterbank` itself. (Moving the bands' centres instead would not do: below ~250 Hz they
    are snapped to FFT bins, and the number of distinct bins, hence of bands, could change.)
    """
    cents = int(cents)
    fb = _filterbank(config)
    if cents == 0:
        return fb
    key = (*_filterbank_key(config), cents)
    if key in _FILTERBANK_CACHE:
        return _FILTERBANK_CACHE[key]
    n = fb.shape[0]
    src = np.arange(n) * 2.0 ** (cents / 1200.0)  # the bin each output bin reads, fractional
    lo = np.floor(src).astype(np.int64)
    frac = (src - lo)[:, None]
    w = np.zeros_like(fb, dtype=np.float64)
    ok = lo + 1 < n  # bins read beyond the spectrum's top read nothing
    np.add.at(w, lo[ok], (1.0 - frac[ok]) * fb[ok])
    np.add.at(w, lo[ok] + 1, frac[ok] * fb[ok])
    w = w.astype(np.float32)
    _FILTERBANK_CACHE[key] = w
    return w


def _magnitudes(frames: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(n, frame_size) float32 frames -> their (n, frame_size/2) float32 magnitude spectra."""
    window = _window(config.frame_size_samples)
    spec = np.abs(np.fft.rfft(frames * window, axis=1))[:, : config.frame_size_samples // 2]
    return spec.astype(np.float32)


def _frames_to_features(frames: np.ndarray, config: FeatureConfig, cents: int = 0) -> np.ndarray:
    """The shared kernel: (n, frame_size) float32 frames -> (n, n_bins) float32."""
    return np.log1p(_magnitudes(frames, config) @ tuned_filterbank(config, cents))


SAMPLE_LIMIT = 1e3  # 60 dB above full scale: louder float samples are clipped, not an error


def valid_audio(signal, *, name: str = "audio") -> np.ndarray:
    """Return ``signal`` as float32 mono (channels averaged), or raise BadAudioError.

    Accepts shape (n,) or (n, channels). Integer PCM is scaled to [-1, 1].
    """
    x = np.asarray(signal)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float64) - (info.max + info.min + 1) / 2) / (info.max + 1)
    elif x.dtype.kind != "f":
        raise BadAudioError(f"{name} has dtype {x.dtype}; expected float or integer PCM samples")
    if x.ndim == 2:
        if x.shape[1] == 1 and x.dtype == np.float32:
            # one channel: the mean of one sample, as mean() gives it (0 + sample: -0.0 becomes 0.0), without
            # the reduction's overhead (called for every block of live input)
            x = x[:, 0] + np.float32(0.0)
        else:
            with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf: caught as not finite just below
                x = x.mean(axis=1)
    elif x.ndim != 1:
        raise BadAudioError(f"{name} has shape {x.shape}; expected (samples,) or (samples, channels)")
    x = x.astype(np.float32, copy=False)
    # the largest magnitude is NaN or infinite exactly where a sample is (max propagates NaN): one pass
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if not np.isfinite(peak):
        raise BadAudioError(f"{name} contains NaN or infinite samples; check the file or the input device")
    if peak > SAMPLE_LIMIT:
        x = np.clip(x, -SAMPLE_LIMIT, SAMPLE_LIMIT)  # absurd float samples would overflow the float32 spectrum
    return x


class _Resampler:
    """Streaming soxr resampler (identity when the rates match)."""

    def __init__(self, in_rate_hz: float, out_rate_hz: int):
        if not in_rate_hz or in_rate_hz <= 0:
            raise ConfigError(f"input sample rate {in_rate_hz!r} Hz must be positive")
        self.in_rate_hz = float(in_rate_hz)
        self.out_rate_hz = int(out_rate_hz)
        self._stream = None
        self.reset()

    def reset(self):
        if self.in_rate_hz != self.out_rate_hz:
            import soxr  # imported here so that 22.05 kHz input never needs it

            self._stream = soxr.ResampleStream(self.in_rate_hz, self.out_rate_hz, 1, dtype="float32",
                                               quality="HQ")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=last)


class StreamingSpectrogram:
    """Causal log-filtered spectrogram, fed block by block.

    ``push(block)`` takes any number of samples (mono or (n, channels), at
    ``input_rate_hz``) and returns the frames completed by it, shape (k, n_bins).
    The state (a preallocated frame buffer) is created in ``reset()``.
    """

    def __init__(self, config: FeatureConfig | None = None, *, input_rate_hz: float | None = None,
                 tuning=None):
        """``tuning``: a :class:`follower.tuning.TuningTracker` that says, frame by frame, how many
        cents from A4 = 440 Hz the music is heard (:func:`tuned_filterbank`); None: always at 440."""
        self.config = config or FeatureConfig()
        self.input_rate_hz = float(input_rate_hz or self.config.sample_rate_hz)
        self.n_bins = self.config.n_bins
        self.tuning = tuning
        self._resampler = _Resampler(self.input_rate_hz, self.config.sample_rate_hz)
        self.reset()

    def reset(self):
        """Forget all audio: the next frame starts from silence."""
        if self.tuning is not None:
            self.tuning.reset()
        self._buffer = np.zeros(self.config.frame_size_samples, dtype=np.float32)
        self._filled = 0  # samples of the current hop already written
        self.frames_emitted = 0
        self._resampler.reset()

    def push(self, block, *, last: bool = False) -> np.ndarray:
        """Add samples; return the (k, n_bins) frames they complete.

        ``last=True`` flushes the resampler's tail (end of a file).
        """
        x = self._resampler(valid_audio(block, name="audio block"), last=last)
        hop = self.config.hop_samples
        size = self.config.frame_size_samples
        n_new = (self._filled + len(x)) // hop
        frames = np.empty((n_new, size), dtype=np.float32)
        pos = 0
        for k in range(n_new + 1):
            take = min(hop - self._filled, len(x) - pos)
            start = size - hop + self._filled
            self._buffer[start:start + take] = x[pos:pos + take]
            self._filled += take
            pos += take
            if self._filled < hop:
                break
            frames[k] = self._buffer
            self._buffer[: size - hop] = self._buffer[hop:]  # in-place shift, no allocation
            self._filled = 0
        self.frames_emitted += n_new
        if n_new == 0:
            return np.empty((0, self.n_bins), dtype=np.float32)
        if self.tuning is None:
            return _frames_to_features(frames, self.config)
        mags = _magnitudes(frames, self.config)
        cents = self.tuning.observe(mags)
        out = np.empty((n_new, self.n_bins), dtype=np.float32)
        start = 0
        for stop in [*np.flatnonzero(np.diff(cents)) + 1, n_new]:  # runs of one shift
            out[start:stop] = np.log1p(mags[start:stop] @ tuned_filterbank(self.config, int(cents[start])))
            start = stop
        return out


def spectrogram(signal, sample_rate_hz: float, config: FeatureConfig | None = None,
                *, chunk_frames: int = 4096, cents: int = 0) -> np.ndarray:
    """Whole-signal causal spectrogram, shape (n_frames, n_bins), float32.

    Identical to pushing ``signal`` through :class:`StreamingSpectrogram` (with
    ``last=True``), computed in large chunks. ``cents``: the music heard as if tuned that
    many cents nearer 440 Hz (:func:`tuned_filterbank`), every frame alike.
    """
    config = config or FeatureConfig()
    x = valid_audio(signal)
    x = _Resampler(sample_rate_hz, config.sample_rate_hz)(x, last=True)
    hop, size = config.hop_samples, config.frame_size_samples
    n_frames = len(x) // hop
    padded = np.concatenate([np.zeros(size - hop, dtype=np.float32), x[: n_frames * hop]])
    windows = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop]
    out = np.empty((n_frames, _filterbank(config).shape[1]), dtype=np.float32)
    for start in range(0, n_frames, chunk_frames):
        out[start:start + chunk_frames] = _frames_to_features(windows[start:start + chunk_frames], config, cents)
    return out
