"""A non-learned cross-modal baseline: chroma from the spectrogram against chroma from the roll.

Both modalities are folded onto the 12 pitch classes: each spectrogram band by the
pitch of its centre frequency, each roll row by its MIDI pitch. A snippet becomes
``time_blocks`` blocks of averaged chroma (a block of 7 frames is 0.35 s, coarse
enough to forgive small timing offsets), each block unit-length, the whole vector
unit-length; similarity is the cosine, as for the learned embeddings. It takes the
same encoder inputs, so the evaluation protocols run unchanged on it.
"""

from __future__ import annotations

import numpy as np

from follower.features import FeatureConfig, _filterbank
from follower.snippets import SnippetConfig

MIN_PITCH = 36  # below C2 a band spans several semitones: its pitch class is noise


def band_pitch_classes(feature_config: FeatureConfig) -> np.ndarray:
    """(n_bins, 12) one-hot folding of the spectrogram bands (bands below MIN_PITCH dropped)."""
    fb = _filterbank(feature_config)  # (fft bins, bands); each band peaks at its centre bin
    centre_hz = fb.argmax(axis=0) * feature_config.sample_rate_hz / feature_config.frame_size_samples
    pitch = 69 + 12 * np.log2(np.maximum(centre_hz, 1e-3) / feature_config.fref_hz)
    fold = np.zeros((len(pitch), 12), np.float32)
    keep = pitch >= MIN_PITCH - 0.5
    fold[np.flatnonzero(keep), np.round(pitch[keep]).astype(int) % 12] = 1.0
    return fold


def _blocks(chroma: np.ndarray, time_blocks: int) -> np.ndarray:
    """(n, 12, frames) -> (n, 12 * time_blocks) unit-length vectors."""
    n, _, t = chroma.shape
    edges = np.linspace(0, t, time_blocks + 1).astype(int)
    pooled = np.stack([chroma[:, :, a:b].mean(axis=2) for a, b in zip(edges[:-1], edges[1:])], axis=2)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True) + 1e-6
    flat = pooled.reshape(n, -1)
    return flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-6)


class ChromaBaseline:
    """Embeds encoder inputs as block chroma vectors: ``audio(x)``, ``score(x)`` -> (n, 12 * blocks)."""

    name = "baseline_chroma"

    def __init__(self, snippet_config: SnippetConfig | None = None,
                 feature_config: FeatureConfig | None = None, *, time_blocks: int = 6):
        self.snippet_config = snippet_config or SnippetConfig()
        self.time_blocks = time_blocks
        self._band_fold = band_pitch_classes(feature_config or FeatureConfig())
        pitches = np.arange(self.snippet_config.pitch_lo, self.snippet_config.pitch_hi + 1)
        self._roll_fold = np.eye(12, dtype=np.float32)[pitches % 12]          # (n_pitches, 12)
        self._sustain = (list(self.snippet_config.roll_channels).index("sustain")
                         if "sustain" in self.snippet_config.roll_channels else 0)

    def audio(self, x: np.ndarray) -> np.ndarray:
        """(n, 1, n_bins, frames) log spectrogram -> chroma blocks."""
        chroma = np.einsum("nbt,bc->nct", np.asarray(x, np.float32)[:, 0], self._band_fold)
        return _blocks(chroma, self.time_blocks)

    def score(self, x: np.ndarray) -> np.ndarray:
        """(n, C, n_pitches, frames) roll -> chroma blocks of its sustain channel."""
        chroma = np.einsum("npt,pc->nct", np.asarray(x, np.float32)[:, self._sustain], self._roll_fold)
        return _blocks(chroma, self.time_blocks)
