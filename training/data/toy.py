"""Seeded synthetic snippet pairs with the ``SplitData`` interface (tests, smoke runs).

Each pair is a random sparse piano roll and a "spectrogram" made from it: every
note lights its fundamental's band and a weaker second harmonic, plus noise. The
correspondence is learnable, so a few seconds of training already beat chance.
"""

from __future__ import annotations

import numpy as np

from follower.snippets import SnippetConfig


class ToySplit:
    def __init__(self, n_pairs: int, *, seed: int = 0, snippet_config: SnippetConfig | None = None,
                 n_bins: int = 92, n_pieces: int = 4):
        cfg = snippet_config or SnippetConfig()
        rng = np.random.default_rng(seed)
        c, p, t = len(cfg.roll_channels), cfg.n_pitches, cfg.roll_frames
        self.snippet_config = cfg
        self.rolls = np.zeros((n_pairs, c, p, t), np.float32)
        self.specs = rng.gamma(1.0, 0.05, (n_pairs, 1, n_bins, cfg.audio_frames)).astype(np.float32)
        for i in range(n_pairs):
            for _ in range(rng.integers(3, 9)):
                pitch, start = rng.integers(20, 70), rng.integers(0, t - 4)
                end = min(t, start + rng.integers(4, 20))
                self.rolls[i, :, pitch, start:end] = 1.0
                band = int(pitch * n_bins / p)
                self.specs[i, 0, band, start:end] += 1.0
                if band + 16 < n_bins:
                    self.specs[i, 0, band + 16, start:end] += 0.5
        self.pairs = np.stack([np.arange(n_pairs) % n_pieces, np.full(n_pairs, 21), np.full(n_pairs, 21)], 1)
        self.piece_of_pair = self.pairs[:, 0]

    def audio_batch(self, pair_idx) -> np.ndarray:
        return self.specs[np.asarray(pair_idx)]

    def roll_batch(self, pair_idx) -> np.ndarray:
        return self.rolls[np.asarray(pair_idx)]
