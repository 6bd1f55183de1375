"""Snippet geometry shared by training, evaluation and the follower's index.

An *audio snippet* is ``audio_frames`` spectrogram frames, laid out for the
encoder as (1, n_bins, audio_frames). A *roll snippet* is ``roll_frames`` piano-roll
frames, laid out as (n_channels, n_pitches, roll_frames). Both are cut around a
*centre frame* ``c`` as frames ``[c - width // 2, c - width // 2 + width)``, padded
with zeros outside the signal. At the written tempo audio frame ``c`` and roll
frame ``c`` describe the same moment (see :mod:`follower.midi`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import JsonConfig
from .errors import ConfigError
from .midi import Score, piano_roll

ROLL_CHANNELS = ("sustain", "onset")


@dataclass(frozen=True)
class SnippetConfig(JsonConfig):
    """Shapes of the two encoders' inputs; saved in every exported bundle."""

    audio_frames: int = 42
    roll_frames: int = 42
    pitch_lo: int = 21
    pitch_hi: int = 108
    # Both channels by default: a sustain-only roll cannot tell a held note from the same
    # note repeated, while the audio shows every attack; the onset channel costs nothing but
    # the first convolution's extra input channel (docs/improvements.md (b)).
    roll_channels: tuple = ROLL_CHANNELS
    roll_velocity: bool = False   # False: binary roll (scores carry little dynamics)

    def __post_init__(self):
        for name in ("audio_frames", "roll_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 8:
                raise ConfigError(f"{name}={value!r} must be an integer >= 8 (four 2x poolings)")
        if not 0 <= self.pitch_lo < self.pitch_hi <= 127:
            raise ConfigError(f"pitch_lo={self.pitch_lo}, pitch_hi={self.pitch_hi} must satisfy "
                              "0 <= pitch_lo < pitch_hi <= 127")
        object.__setattr__(self, "roll_channels", tuple(self.roll_channels))
        bad = [c for c in self.roll_channels if c not in ROLL_CHANNELS]
        if bad or not self.roll_channels:
            raise ConfigError(f"roll_channels={self.roll_channels!r}; expected a non-empty subset of {ROLL_CHANNELS}")

    @property
    def n_pitches(self) -> int:
        return self.pitch_hi - self.pitch_lo + 1



def score_roll(score: Score, cfg: SnippetConfig, frame_rate_hz: float, n_frames: int | None = None) -> np.ndarray:
    """The score's roll as stored: (n_frames, n_channels, n_pitches) uint8 velocities."""
    chans = [piano_roll(score, frame_rate_hz, pitch_lo=cfg.pitch_lo, pitch_hi=cfg.pitch_hi,
                        n_frames=n_frames, onsets=(name == "onset"))
             for name in cfg.roll_channels]
    return np.stack(chans, axis=1)


def cut(frames: np.ndarray, centres, width: int) -> np.ndarray:
    """Windows of ``width`` frames around each centre, zero-padded: (n, width, ...)."""
    centres = np.atleast_1d(np.asarray(centres, dtype=np.int64))
    half = width // 2
    pad = np.zeros((half + width,) + frames.shape[1:], dtype=frames.dtype)
    padded = np.concatenate([pad[:half], frames, pad])
    idx = centres[:, None] + np.arange(width)[None, :]  # into padded: c - half + half
    idx = np.clip(idx, 0, len(padded) - 1)
    return padded[idx]


def audio_input(windows: np.ndarray) -> np.ndarray:
    """(n, audio_frames, n_bins) spectrogram windows -> (n, 1, n_bins, audio_frames) float32."""
    return np.ascontiguousarray(windows.transpose(0, 2, 1)[:, None], dtype=np.float32)


def roll_input(windows: np.ndarray, cfg: SnippetConfig) -> np.ndarray:
    """(n, roll_frames, n_channels, n_pitches) uint8 -> (n, n_channels, n_pitches, roll_frames) float32."""
    x = windows.transpose(0, 2, 3, 1).astype(np.float32)
    if cfg.roll_velocity:
        x /= 127.0
    else:
        x = (x > 0).astype(np.float32)
    return np.ascontiguousarray(x)
