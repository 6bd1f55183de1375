"""The two encoders of Dorfer et al. (TISMIR 2018, §3.3), with a piano roll as the score view.

Both paths follow the authors' ``models/mutopia_ccal_cont_rsz.py``: four blocks of
2 x [Conv 3x3 (no bias), BatchNorm, ELU] + MaxPool 2 with 24/48/96/96 channels,
then Conv 1x1 to ``embed_dim`` + BatchNorm, global average pooling and length
normalisation, so that cosine similarity is a dot product. The paths share no
weights. He-uniform initialisation as in the original (``lasagne.init.HeUniform``).

Adapting the symbolic path to the piano roll. The paper feeds
a 160x200 sheet-image crop, halved to 80x100 and scaled to [0, 1]. A roll snippet
is already at the spectrogram's scale (88 pitch rows x 42 frames against 92 bins x
42 frames), so it is fed as is: no resize, values binarised (``follower.snippets.
roll_input``), and the first convolution takes ``C`` input channels, one per roll
channel of :class:`follower.snippets.SnippetConfig` (sustain, optionally onsets).
Pitch rows play the role of image rows; with four poolings the last 3x3 layer
sees about 46 semitones x 46 frames, several octaves, which covers the harmonic
relations the audio path has to learn.

CCA. The paper ends both paths with a CCA layer (projections computed from
batch covariances). Here it is optional and post hoc (``ModelConfig.cca``): after
training, a regularised linear CCA is fitted on training-pair embeddings
(:func:`training.evaluate.protocols.posthoc_cca`, ``training cca``) and stored as a fixed
centring + projection at the end of each path, followed by length normalisation.
It is part of the ONNX graphs, so the runtime needs nothing extra.
``docs/results.md`` reports the measured effect of this layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from follower.config import JsonConfig
from follower.errors import ConfigError
from follower.snippets import SnippetConfig

MIN_SIDE = 16  # four 2x poolings leave at least one cell


@dataclass(frozen=True)
class ModelConfig(JsonConfig):
    """Architecture settings; stored in checkpoints and in the bundle's training info."""

    n_bins: int = 92
    audio_frames: int = 42
    roll_channels: int = len(SnippetConfig().roll_channels)
    n_pitches: int = 88
    roll_frames: int = 42
    embed_dim: int = 32
    base_filters: int = 24
    cca: bool = False   # a fixed CCA projection after the embedding (fitted post hoc)
    # the audio path's own width where it is narrower (training student-audio); 0: base_filters
    audio_base_filters: int = 0

    def __post_init__(self):
        for name in ("n_bins", "audio_frames", "n_pitches", "roll_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < MIN_SIDE:
                raise ConfigError(f"{name}={value!r} must be an integer >= {MIN_SIDE} "
                                  "(the encoders pool by 2 four times)")
        if not isinstance(self.cca, bool):
            raise ConfigError(f"cca={self.cca!r} must be true or false")
        for name in ("roll_channels", "embed_dim", "base_filters"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        if not isinstance(self.audio_base_filters, int) or self.audio_base_filters < 0:
            raise ConfigError(f"audio_base_filters={self.audio_base_filters!r} must be 0 (as base_filters) "
                              "or a positive integer")

    @property
    def audio_filters(self) -> int:
        return self.audio_base_filters or self.base_filters

    @property
    def audio_shape(self) -> tuple:
        return (1, self.n_bins, self.audio_frames)

    @property
    def roll_shape(self) -> tuple:
        return (self.roll_channels, self.n_pitches, self.roll_frames)

    @classmethod
    def for_snippets(cls, snippet_config, feature_config, **kw) -> "ModelConfig":
        """The model whose inputs match a dataset's snippet and feature settings."""
        return cls(n_bins=feature_config.n_bins, audio_frames=snippet_config.audio_frames,
                   roll_channels=len(snippet_config.roll_channels), n_pitches=snippet_config.n_pitches,
                   roll_frames=snippet_config.roll_frames, **kw)


def _conv_bn_elu(c_in: int, c_out: int) -> list:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ELU()]


class Encoder(nn.Module):
    """One VGG-style path: (n, c_in, h, w) -> (n, embed_dim), unit length."""

    def __init__(self, c_in: int, input_shape: tuple, embed_dim: int, base_filters: int, name: str,
                 cca: bool = False):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.name = name
        self.cca = cca
        self.use_projection = True  # evaluation switches it off to measure the CCA layer
        if cca:  # identity until training.fit.cca fits it
            self.register_buffer("proj_mean", torch.zeros(embed_dim))
            self.register_buffer("proj_matrix", torch.eye(embed_dim))
        widths = [base_filters, 2 * base_filters, 4 * base_filters, 4 * base_filters]
        layers: list = []
        for width in widths:
            layers += _conv_bn_elu(c_in, width) + _conv_bn_elu(width, width) + [nn.MaxPool2d(2)]
            c_in = width
        layers += [nn.Conv2d(c_in, embed_dim, 1, bias=False), nn.BatchNorm2d(embed_dim)]
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He uniform with the ELU gain taken as ReLU's, as lasagne.init.HeUniform does
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ConfigError(f"{self.name} encoder got input shape {tuple(x.shape)}; "
                              f"expected (n, {', '.join(map(str, self.input_shape))})")
        z = F.normalize(self.features(x).mean(dim=(2, 3)), dim=1, eps=1e-8)
        if self.cca and self.use_projection:
            z = F.normalize((z - self.proj_mean) @ self.proj_matrix, dim=1, eps=1e-8)
        return z


class DualEncoder(nn.Module):
    """Audio and score encoders with unshared weights; ``forward`` returns both embeddings."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.audio = Encoder(1, c.audio_shape, c.embed_dim, c.audio_filters, "audio", c.cca)
        self.score = Encoder(c.roll_channels, c.roll_shape, c.embed_dim, c.base_filters, "score", c.cca)

    def forward(self, audio: torch.Tensor, roll: torch.Tensor):
        return self.audio(audio), self.score(roll)


def build_model(config: ModelConfig | None = None, *, seed: int | None = None) -> DualEncoder:
    """A freshly initialised model; ``seed`` makes the initial weights reproducible."""
    if seed is not None:
        torch.manual_seed(seed)
    return DualEncoder(config)
