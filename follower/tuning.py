"""Music not tuned to A4 = 440 Hz: how far off it is, found from the audio as it comes.

The encoders and the note templates know music at 440 Hz (the renders they learnt from and the
MIDI pitches they are built from). Real players are often elsewhere: an orchestra at 443, a
period ensemble at 430, a recording whose tape ran fast, a choir that sank. Up to about 20 cents
(a quarter of the front end's 75-cent band) this costs nothing measurable; at 40 cents the piece is
named later, and a semitone away (baroque pitch, A4 = 415 Hz) the follower hears another key and
follows a wrong piece (validation renders detuned by resampling, docs/improvements.md (hhh)).

:class:`TuningTracker` reads the magnitude spectrum of every frame that the front end computes
anyway, takes the peaks between ``lo_hz`` and ``hi_hz`` (their frequency interpolated between FFT
bins), and keeps a weighted circular mean of their distance from the 440 Hz semitone grid (cents
modulo 100, each peak weighed by its magnitude), forgetting with a time constant of ``memory_s``
of tonal audio. Which shift the front end then applies (:func:`follower.features.tuned_filterbank`):

* none until ``min_s`` of tonal frames have been heard and the peaks agree (``min_resultant``:
  the mean resultant length; timbres whose partials sit off the grid, or noise, score low);
* the estimate, in whole cents, once it lies between ``on_cents`` and ``max_cents`` from 440;
  kept (following the estimate in steps of ``step_cents``) while it stays between ``off_cents``
  and ``release_cents``. Below that the music is near enough; beyond ``max_cents`` the audio
  cannot tell whether it is sharp of one semitone or flat of the next (cents are heard modulo a
  semitone), and the wrong choice would move every note by a semitone, far worse than leaving it.

A semitone or more away (A4 = 415 Hz) cannot be found from the audio at all: ``a4_hz`` (``--a4-hz``
on the command line) sets the pitch outright, and then nothing is estimated.

Every frame's shift depends only on the frames up to it, so a file pushed in large blocks is
heard exactly as one pushed live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .config import JsonConfig
from .errors import ConfigError


@dataclass(frozen=True)
class TuningConfig(JsonConfig):
    # the ensemble's concert pitch, if known (415: baroque pitch); None: found from the audio
    a4_hz: float | None = None
    auto: bool = True             # find it from the audio (where a4_hz is None); False: hear all at 440
    lo_hz: float = 150.0          # the peaks read: above the bass, whose partials crowd the FFT bins ...
    hi_hz: float = 2500.0         # ... and below the upper partials that a piano's stiff strings stretch
    peak_rel: float = 0.1         # a peak counts at >= this fraction of the frame's strongest
    tonal_ratio: float = 10.0     # a frame is tonal where its strongest peak is >= 20 dB over its median bin
    memory_s: float = 60.0        # of tonal audio: a choir that sinks is followed down
    min_s: float = 0.5            # tonal audio heard before the first shift
    min_resultant: float = 0.5    # the peaks' agreement needed to act (1: all on one offset)
    # the shift applied: engaged at on_cents..max_cents from 440, kept while off_cents..release_cents
    on_cents: float = 25.0
    max_cents: float = 40.0
    off_cents: float = 15.0
    release_cents: float = 45.0
    step_cents: float = 5.0       # a shift in force moves only by this much or more

    def __post_init__(self):
        if self.a4_hz is not None and not 300.0 <= self.a4_hz <= 600.0:
            raise ConfigError(f"A4 = {self.a4_hz!r} Hz (--a4-hz) is no concert pitch: give the players' A in Hz, "
                              "e.g. 415, 430 or 442 (300-600)")
        if not 0 < self.lo_hz < self.hi_hz:
            raise ConfigError(f"lo_hz={self.lo_hz}, hi_hz={self.hi_hz} must satisfy 0 < lo_hz < hi_hz")
        if not 0 <= self.off_cents <= self.on_cents <= self.max_cents <= self.release_cents <= 50:
            raise ConfigError("the tuning thresholds must satisfy 0 <= off_cents <= on_cents <= max_cents "
                              f"<= release_cents <= 50 (got {self.off_cents}, {self.on_cents}, "
                              f"{self.max_cents}, {self.release_cents})")

    @property
    def fixed_cents(self) -> int | None:
        """The shift that ``a4_hz`` sets, in whole cents (None: not set)."""
        if self.a4_hz is None:
            return None
        return int(round(1200.0 * math.log2(self.a4_hz / 440.0)))


def cents_to_a4_hz(cents: float) -> float:
    return 440.0 * 2.0 ** (cents / 1200.0)


def tuning_notice(name: str, cents: int) -> str:
    """The stderr line that says at which tuning ``name`` is now heard (follower listen/replay/align)."""
    what = (f"tuned {cents:+d} cents from 440 Hz (A4 = {cents_to_a4_hz(cents):.1f} Hz): heard as if at 440"
            if cents else "heard at 440 Hz again")
    return f"tuning: {name}: {what}"


def recording_cents(signal, sample_rate_hz: float, features, config: TuningConfig | None = None) -> int:
    """The shift (whole cents) at which a whole recording is best heard, offline: ``a4_hz``'s where it is
    given, else the tracker's, run over the recording, at its end (0 where the tuning is near 440, or
    half a semitone off, or not found)."""
    from .features import StreamingSpectrogram

    config = config or TuningConfig()
    if config.fixed_cents is not None or not config.auto:
        return config.fixed_cents or 0
    tracker = TuningTracker(features.sample_rate_hz, features.frame_size_samples, features.frame_rate_hz, config)
    StreamingSpectrogram(features, input_rate_hz=sample_rate_hz, tuning=tracker).push(signal, last=True)
    return tracker.applied_cents


class TuningTracker:
    """Per frame, the shift in cents at which the front end hears the audio (see the module's doc)."""

    def __init__(self, sample_rate_hz: int, frame_size_samples: int, frame_rate_hz: float,
                 config: TuningConfig | None = None):
        self.config = config or TuningConfig()
        c = self.config
        self._bin_hz = sample_rate_hz / frame_size_samples
        n_bins = frame_size_samples // 2
        self._lo = max(1, int(c.lo_hz / self._bin_hz))
        self._hi = min(n_bins - 1, int(math.ceil(c.hi_hz / self._bin_hz)))
        self._decay = math.exp(-1.0 / (c.memory_s * frame_rate_hz))
        self._min_frames = c.min_s * frame_rate_hz
        self.reset()

    def reset(self):
        fixed = self.config.fixed_cents
        self.applied_cents = fixed if fixed is not None else 0
        self._z = 0j           # the peaks' weighted phasors, forgetting
        self._w = 0.0          # their weights, likewise
        self._tonal = 0        # tonal frames heard
        self.estimate_cents: float | None = None   # the running estimate (None: nothing heard yet)
        self.resultant = 0.0

    def observe(self, magnitudes: np.ndarray) -> np.ndarray:
        """(k, frame_size/2) magnitude spectra of the next k frames -> (k,) int shifts in cents."""
        k = len(magnitudes)
        c = self.config
        if c.fixed_cents is not None or not c.auto or k == 0:
            return np.full(k, self.applied_cents, dtype=np.int64)
        z, w = self._peaks(magnitudes)
        out = np.empty(k, dtype=np.int64)
        for i in range(k):
            if w[i] > 0.0:
                self._z = self._decay * self._z + z[i]
                self._w = self._decay * self._w + w[i]
                self._tonal += 1
                self.estimate_cents = math.atan2(self._z.imag, self._z.real) * 100.0 / (2 * math.pi)
                self.resultant = abs(self._z) / self._w
                if self._tonal >= self._min_frames and self.resultant >= c.min_resultant:
                    self._decide(self.estimate_cents)
            out[i] = self.applied_cents
        return out

    def _decide(self, est: float):
        c = self.config
        a = abs(est)
        if self.applied_cents == 0:
            target = int(round(est)) if c.on_cents <= a <= c.max_cents else 0
        else:
            target = int(round(est)) if c.off_cents <= a <= c.release_cents else 0
        if target == 0 or self.applied_cents == 0 or abs(target - self.applied_cents) >= c.step_cents:
            self.applied_cents = target

    def _peaks(self, mags: np.ndarray):
        c = self.config
        return _peak_phasors(np.ascontiguousarray(mags, dtype=np.float32), self._lo, self._hi, self._bin_hz,
                             c.peak_rel, c.tonal_ratio)

    def warm_up(self):
        """Compile the kernel (numba caches it on disk) so that no live frame waits for it."""
        self._peaks(np.zeros((1, 2 * self._hi), np.float32))


@numba.njit(cache=True, nogil=True)
def _peak_phasors(mags, lo, hi, bin_hz, peak_rel, tonal_ratio):
    """Per frame: the sum of its peaks' phasors (their distance from the 440 Hz semitone grid, a
    semitone a full turn) weighed by magnitude, and the sum of the weights; 0 for a frame that is not
    tonal. Peaks are bins lo..hi-1 above their neighbours, their frequency at the vertex of the parabola
    through the log magnitudes of the three bins."""
    k = mags.shape[0]
    zr = np.zeros(k)
    zi = np.zeros(k)
    w = np.zeros(k)
    for r in range(k):
        row = mags[r]
        top = 0.0
        for j in range(lo, hi):
            if row[j] > top:
                top = row[j]
        if top <= 0.0 or top < tonal_ratio * np.median(row[lo:hi]):
            continue
        floor = peak_rel * top
        for j in range(lo, hi):
            v = row[j]
            if v < floor or v <= row[j - 1] or v < row[j + 1]:
                continue
            a = np.log(row[j - 1] + 1e-12)
            b = np.log(v + 1e-12)
            g = np.log(row[j + 1] + 1e-12)
            den = a - 2.0 * b + g
            offset = 0.5 * (a - g) / den if den < 0.0 else 0.0
            turn = 2.0 * np.pi * 12.0 * np.log2((j + offset) * bin_hz / 440.0)
            zr[r] += v * np.cos(turn)
            zi[r] += v * np.sin(turn)
            w[r] += v
    return zr + 1j * zi, w
