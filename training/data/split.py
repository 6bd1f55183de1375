"""How training and evaluation open a dataset folder (written by ``training dataset build``).

A dataset folder holds one ``{split}.npz`` per split of :data:`SPLITS` and a
``dataset.json`` with the feature settings the spectrograms were made with. Reading
a split gives a :class:`SplitData`, which cuts the encoders' inputs on demand;
:func:`dataset_configs` recovers the feature and snippet settings the bundle must
record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig, audio_input, cut, roll_input

# train / valid: training soundfonts; test, test_slow, test_fast: the test pieces rendered
# with the held-out soundfont at tempo 1.0, 0.8 and 1.25 (training.data.build)
SPLITS = ("train", "valid", "test", "test_slow", "test_fast")


def _find(d: dict, *names):
    for name in names:
        if isinstance(d.get(name), dict):
            return d[name]
    for value in d.values():  # one level down, e.g. {"settings": {"features": ...}}
        if isinstance(value, dict):
            for name in names:
                if isinstance(value.get(name), dict):
                    return value[name]
    return None


def dataset_info(dataset_dir) -> dict:
    path = Path(dataset_dir) / "dataset.json"
    if not path.is_file():
        raise ConfigError(f"{dataset_dir}: not a dataset (no dataset.json); build one with "
                          "`training dataset build -o DIR`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); rebuild the dataset") from e


def dataset_configs(dataset_dir, roll_channels=None) -> tuple[SnippetConfig, FeatureConfig]:
    """The FeatureConfig recorded in DATASET/dataset.json and the SnippetConfig to train with.

    The dataset stores every roll channel; which ones the score encoder reads is a
    model choice (``roll_channels``), unless dataset.json fixes snippet settings.
    """
    info = dataset_info(dataset_dir)
    feat = _find(info, "features", "feature_config", "FeatureConfig")
    if feat is None:
        raise ConfigError(f"{dataset_dir}/dataset.json lacks the feature settings; rebuild the dataset")
    snip = _find(info, "snippets", "snippet_config", "SnippetConfig")
    if snip is not None:
        snippets = SnippetConfig.from_dict(snip)
        if roll_channels:
            snippets = SnippetConfig.from_dict({**snippets.to_dict(), "roll_channels": list(roll_channels)})
    else:
        snippets = SnippetConfig(roll_channels=tuple(roll_channels)) if roll_channels else SnippetConfig()
    return snippets, FeatureConfig.from_dict(feat)


@dataclass
class SplitData:
    """One split in memory, with the encoders' inputs cut on demand through follower.snippets.

    ``pairs[i] = (render, audio centre frame, roll centre frame)``; render ``r`` has
    spectrogram frames ``spectrograms[spec_offsets[r]:spec_offsets[r + 1]]`` and roll
    frames ``rolls[roll_offsets[r]:roll_offsets[r + 1]]`` (all channels in
    ``roll_channels``; ``snippet_config.roll_channels`` picks the ones returned).
    """

    split: str
    spectrograms: np.ndarray     # (frames, n_bins) float16
    spec_offsets: np.ndarray
    rolls: np.ndarray            # (frames, n_stored_channels, 88) uint8 velocities
    roll_offsets: np.ndarray
    roll_channels: tuple
    render_piece: np.ndarray     # piece index of each render
    render_ids: np.ndarray
    tempo_ratio: np.ndarray
    transpose: np.ndarray
    soundfont: np.ndarray
    piece_ids: np.ndarray
    piece_names: np.ndarray
    pairs: np.ndarray            # (n_pairs, 3) int64
    frame_rate_hz: float
    snippet_config: SnippetConfig

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def n_renders(self) -> int:
        return len(self.render_piece)

    def pair_piece(self, pair_idx) -> np.ndarray:
        """Piece index (into ``piece_ids``) of each pair."""
        return self.render_piece[self.pairs[np.asarray(pair_idx), 0]]

    def pair_position_s(self, pair_idx) -> np.ndarray:
        """Score position of each pair's centre, seconds on the MIDI's own timeline."""
        return self.pairs[np.asarray(pair_idx), 2] / self.frame_rate_hz

    def spectrogram(self, render: int) -> np.ndarray:
        return self.spectrograms[self.spec_offsets[render]:self.spec_offsets[render + 1]]

    def roll(self, render: int) -> np.ndarray:
        """(frames, n_channels, 88) of the channels in ``snippet_config``."""
        return self.rolls[self.roll_offsets[render]:self.roll_offsets[render + 1]][:, self._channels]

    @property
    def _channels(self) -> list:
        return [self.roll_channels.index(c) for c in self.snippet_config.roll_channels]

    def _windows(self, frames, offsets, renders, centres, width):
        """Per pair, cut only the frames its window touches, so cost does not grow with render length."""
        half = width // 2
        out = []
        for r, c in zip(renders, centres):
            start, stop = offsets[r], offsets[r + 1]
            lo, hi = max(start, start + c - half), min(stop, start + c - half + width)
            lo = min(lo, hi)
            out.append(cut(frames[lo:hi], [c - (lo - start)], width)[0])
        return np.stack(out) if out else np.zeros((0, width) + frames.shape[1:], frames.dtype)

    def audio_batch(self, pair_idx) -> np.ndarray:
        """(n, 1, n_bins, audio_frames) float32 encoder input."""
        p = self.pairs[np.atleast_1d(np.asarray(pair_idx))]
        w = self._windows(self.spectrograms, self.spec_offsets, p[:, 0], p[:, 1], self.snippet_config.audio_frames)
        return audio_input(w)

    def roll_batch(self, pair_idx) -> np.ndarray:
        """(n, n_channels, 88, roll_frames) float32 encoder input."""
        p = self.pairs[np.atleast_1d(np.asarray(pair_idx))]
        w = self._windows(self.rolls, self.roll_offsets, p[:, 0], p[:, 2], self.snippet_config.roll_frames)
        return roll_input(w[:, :, self._channels], self.snippet_config)


def load_split(dataset_dir, split: str, snippet_config: SnippetConfig | None = None) -> SplitData:
    """Read ``{split}.npz`` of a built dataset."""
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}; expected one of {SPLITS}")
    path = Path(dataset_dir) / f"{split}.npz"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; build the dataset first (training dataset build -o {dataset_dir})")
    cfg = snippet_config or SnippetConfig()
    if (cfg.pitch_lo, cfg.pitch_hi) != (21, 108):
        raise ConfigError(f"snippet pitches {cfg.pitch_lo}..{cfg.pitch_hi}; the dataset stores 21..108")
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    return SplitData(split=split, spectrograms=d["spectrograms"], spec_offsets=d["spec_offsets"],
                     rolls=d["rolls"], roll_offsets=d["roll_offsets"],
                     roll_channels=tuple(str(c) for c in d["roll_channels"]),
                     render_piece=d["render_piece"], render_ids=d["render_ids"], tempo_ratio=d["tempo_ratio"],
                     transpose=d["transpose"], soundfont=d["soundfont"], piece_ids=d["piece_ids"],
                     piece_names=d["piece_names"], pairs=d["pairs"], frame_rate_hz=float(d["frame_rate_hz"]),
                     snippet_config=cfg)
