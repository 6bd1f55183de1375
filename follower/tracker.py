"""Following one piece: an HMM over the piece's snippet grid, and a tempo estimate.

States are the piece's index snippets (one every ``hop_frames`` frames). Each update:

* predict: the belief moves by the audio time elapsed times the tempo estimate
  (MIDI seconds); whole cells are shifted, the remainder is carried in ``_carry_cells``
  and added to the reported position, so no interpolation blur accumulates. A
  three-tap kernel adds ``diffusion_cells2`` of variance per update (tempo wobble),
  and a small ``jump_prob`` of uniform mass lets the belief recover after a jump,
  a repeat or a wrong start;
* observe: the likelihood is ``exp(kappa * (z - max z))``, z the similarity of the
  current audio embedding with each snippet of the piece, standardised against the
  whole index (see :mod:`follower.verify`);
* the position is the belief's mean around its peak (sub-cell precision).

During silence nothing moves (a pause, a fermata): the belief is held.

The tempo is the slope of position (MIDI s) against audio time (s) over the last
``tempo_window_s``, a least-squares fit restarted after each jump, clipped to
[``tempo_min``, ``tempo_max``] and smoothed; 1.0 means the MIDI's written tempo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class TrackerConfig:
    kappa: float = 1.5                # sharpness of the likelihood, per z-score unit of similarity
    jump_prob: float = 1e-5           # mass mixed in per update (big jumps: the engine re-locks) ...
    # ... half of it uniform over the piece, half falling off as exp(-distance / jump_local_s) from the
    # current position: two places the audio cannot tell apart (a repeat, a returning theme) are then
    # told apart by distance, players skipping back a few bars more often than across the piece; 0: all
    # uniform. 30 s: on 42 validation jump renditions 1.5 points more updates within 0.25 s than uniform
    # mass, 15 s half of that (docs/improvements.md (jj))
    jump_local_s: float = 30.0
    diffusion_cells2: float = 0.02    # variance added per update, in cells^2
    tempo_window_s: float = 6.0
    tempo_min: float = 0.5
    tempo_max: float = 2.0
    tempo_smoothing: float = 0.9      # exponential smoothing of the slope per update
    jump_s: float = 2.0               # a position change this large (beyond prediction) is a jump
    init_sigma_s: float = 1.0
    # music written out twice gives the belief two modes of about equal mass, and the estimate flipped
    # between them with every small difference of the similarities, each flip a jump (a second apart on
    # a rendition with a repeat taken). The estimate stays at the mode around the predicted position
    # while that holds at least stay_ratio of the mass the highest mode holds (each mode: the mass within
    # stay_s of its centre); a real jump drains the old place in an update or two. 0 = always the highest.
    # 0.5 chosen on validation renders with the engine's fine.settle_s (docs/improvements.md (xx))
    stay_ratio: float = 0.5
    stay_s: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.stay_ratio <= 1.0 or self.stay_s <= 0:
            raise ConfigError("tracker.stay_ratio must be in [0, 1] and tracker.stay_s > 0")


class _Track:
    """The recent (audio time, position) points of the tempo fit, oldest first, in two growing arrays
    (a deque of tuples made a new (n, 2) array on every update); the fit reads contiguous slices."""

    def __init__(self, capacity: int = 512):
        self.t = np.empty(capacity)
        self.p = np.empty(capacity)
        self.lo = self.hi = 0

    def __len__(self) -> int:
        return self.hi - self.lo

    def clear(self) -> None:
        self.lo = self.hi = 0

    def append(self, t: float, p: float) -> None:
        if self.hi == len(self.t):  # full: move the points kept to the front, or grow
            n = len(self)
            if 2 * n > len(self.t):
                self.t, self.p = np.resize(self.t, 2 * len(self.t)), np.resize(self.p, 2 * len(self.p))
            self.t[:n], self.p[:n] = self.t[self.lo:self.hi].copy(), self.p[self.lo:self.hi].copy()
            self.lo, self.hi = 0, n
        self.t[self.hi], self.p[self.hi] = t, p
        self.hi += 1


class PieceTracker:
    """Belief over the positions of one piece; see the module docstring."""

    def __init__(self, positions_s: np.ndarray, config: TrackerConfig | None = None, *, cell_s: float):
        """``positions_s``: the piece's snippet centres, ``cell_s`` apart (:attr:`follower.index.Index.cell_s`)."""
        self.config = config or TrackerConfig()
        self.positions_s = np.asarray(positions_s, dtype=np.float64)
        self.cell_s = float(cell_s)
        self.reset(float(self.positions_s[0]))

    def reset(self, centre_s: float, *, tempo: float = 1.0) -> None:
        """Start (again) with a Gaussian belief around ``centre_s`` (MIDI seconds)."""
        c = self.config
        d = (self.positions_s - centre_s) / max(c.init_sigma_s, 1e-3)
        belief = np.exp(-0.5 * d * d) + 1e-6
        self._belief = belief / belief.sum()
        self._carry_cells = 0.0
        self.tempo = float(tempo)
        self._history = _Track()
        self.position_s = float(centre_s)
        self.jumped = False

    def step(self, similarities: np.ndarray, elapsed_s: float, audio_time_s: float, *,
             silent: bool = False) -> float:
        """Advance by ``elapsed_s`` of audio, fold in the similarities (if any); return the position (s)."""
        c = self.config
        self.jumped = False
        if silent:
            return self.position_s
        self._carry_cells += self.tempo * elapsed_s / self.cell_s
        shift = int(np.floor(self._carry_cells))
        self._carry_cells -= shift
        b = self._belief
        if shift > 0:
            b = np.concatenate([np.zeros(min(shift, len(b))), b[: max(len(b) - shift, 0)]])
            if b.sum() <= 0:  # ran off the end of the piece: stay on its last cell
                b = np.zeros_like(self._belief)
                b[-1] = 1.0
        q = c.diffusion_cells2 / 2
        b = (1 - 2 * q) * b + q * (np.concatenate([[0.0], b[:-1]]) + np.concatenate([b[1:], [0.0]]))
        b = (1 - c.jump_prob) * b / max(b.sum(), 1e-300) + c.jump_prob * self._jump_mass(self.position_s)
        if similarities is not None:  # None: predict only (no trustworthy observation)
            sims = np.asarray(similarities, dtype=np.float64)
            # belief cell j stands for position positions[j] + carry * cell: observe the
            # similarity there (linear between snippets), not at the cell's own snippet,
            # or the estimate runs ahead of the music by the mean carry (half a cell)
            f = self._carry_cells
            if f > 0 and len(sims) > 1:
                sims = (1 - f) * sims + f * np.append(sims[1:], sims[-1])
            b = b * np.exp(c.kappa * (sims - sims.max()))
        self._belief = b / b.sum()
        previous = self.position_s
        predicted = previous + self.tempo * elapsed_s
        self.position_s = self._estimate(predicted - self._carry_cells * self.cell_s) + self._carry_cells * self.cell_s
        if abs(self.position_s - predicted) > c.jump_s:
            self.jumped = True
            self._history.clear()
        self._update_tempo(audio_time_s)
        return self.position_s

    def _jump_mass(self, position_s: float) -> np.ndarray | float:
        """Where the mass of a jump from ``position_s`` lands (sums to 1): see ``jump_local_s``."""
        n, local_s = len(self.positions_s), self.config.jump_local_s
        if local_s <= 0:
            return 1.0 / n
        near = np.exp(-np.abs(self.positions_s - position_s) / local_s)
        return 0.5 / n + 0.5 * near / near.sum()

    def _estimate(self, predicted_s: float | None = None) -> float:
        b = self._belief
        peak = int(np.argmax(b))
        c = self.config
        if c.stay_ratio > 0 and predicted_s is not None:
            w = max(int(round(c.stay_s / self.cell_s)), 1)
            near = int(np.clip(np.searchsorted(self.positions_s, predicted_s), 0, len(b) - 1))
            if abs(near - peak) > 2 * w:  # the highest mode is elsewhere: is the predicted one still as likely?
                lo, hi = max(near - w, 0), min(near + w + 1, len(b))
                if b[lo:hi].sum() >= c.stay_ratio * b[max(peak - w, 0):peak + w + 1].sum():
                    peak = lo + int(np.argmax(b[lo:hi]))
        lo, hi = max(peak - 3, 0), min(peak + 4, len(b))
        w = b[lo:hi]
        return float(np.dot(w, self.positions_s[lo:hi]) / w.sum())

    def _update_tempo(self, audio_time_s: float) -> None:
        c = self.config
        h = self._history
        h.append(audio_time_s, self.position_s)
        while len(h) and audio_time_s - h.t[h.lo] > c.tempo_window_s:
            h.lo += 1
        if len(h) < 10 or h.t[h.hi - 1] - h.t[h.lo] < 1.5:
            return
        # the same sums as over the columns of an (n, 2) array: numpy sums a strided column pairwise too
        ht, hp = h.t[h.lo:h.hi], h.p[h.lo:h.hi]
        t, p = ht - ht.mean(), hp - hp.mean()
        slope = float(np.dot(t, p) / max(np.dot(t, t), 1e-9))
        slope = min(max(slope, c.tempo_min), c.tempo_max)
        self.tempo = c.tempo_smoothing * self.tempo + (1 - c.tempo_smoothing) * slope

    @property
    def peak_mass(self) -> float:
        """Belief mass within +-1 s of the estimate: how sure the tracker is of where."""
        near = np.abs(self.positions_s - self.position_s) <= 1.0
        return float(self._belief[near].sum())
