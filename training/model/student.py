"""A small score encoder, distilled from the shipped one, to build large indexes fast.

The shipped score encoder (:class:`training.model.encoders.Encoder`, four blocks of two
3x3 convolutions at 24/48/96/96 channels) costs about 85 M multiply-adds per snippet,
most of it in the full-resolution layers. Index building embeds every snippet of every
piece, so that cost bounds how large a library can be indexed.

The student keeps the input (C x 88 pitches x 42 frames) and the output (32-d, unit
length) and changes the trunk where the time goes:

* the first 3x3 convolution has stride 2: its nine taps still see every pitch and
  frame, but nothing after it runs at full resolution;
* one convolution per block instead of two, ``widths`` channels (16/32/64/64 by
  default): about 10 M multiply-adds;
* ReLU instead of ELU: onnxruntime fuses Conv + ReLU into one kernel, and ELU as a
  separate pass over each activation map cost as much as the convolutions themselves
  (0.69 against 0.37 ms per snippet for this trunk, one core; docs/benchmarks.md).

BatchNorm after each convolution while training; the ONNX export folds it away.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from follower.config import JsonConfig
from follower.errors import ConfigError


@dataclass(frozen=True)
class StudentConfig(JsonConfig):
    """Architecture of the distilled score encoder; stored in its checkpoint and in the bundle."""

    roll_channels: int = 2
    n_pitches: int = 88
    roll_frames: int = 42
    embed_dim: int = 32
    widths: tuple = (16, 32, 64, 64)

    def __post_init__(self):
        if len(self.widths) != 4 or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ConfigError(f"widths={self.widths!r} must be four positive integers")
        for name in ("roll_channels", "n_pitches", "roll_frames", "embed_dim"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer")
        if min(self.n_pitches, self.roll_frames) < 8:
            raise ConfigError("the student halves its input three times: n_pitches and roll_frames must be >= 8")

    @property
    def roll_shape(self) -> tuple:
        return (self.roll_channels, self.n_pitches, self.roll_frames)


def _conv(c_in: int, c_out: int, stride: int = 1) -> list:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class StudentScoreEncoder(nn.Module):
    """(n, C, 88, 42) roll windows -> (n, embed_dim), unit length, like the shipped score encoder."""

    def __init__(self, config: StudentConfig | None = None):
        super().__init__()
        self.config = config or StudentConfig()
        w1, w2, w3, w4 = self.config.widths
        layers = (_conv(self.config.roll_channels, w1, stride=2) + _conv(w1, w2) + [nn.MaxPool2d(2)]
                  + _conv(w2, w3) + [nn.MaxPool2d(2)] + _conv(w3, w4)
                  + [nn.Conv2d(w4, self.config.embed_dim, 1, bias=False), nn.BatchNorm2d(self.config.embed_dim)])
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.config.roll_shape:
            raise ConfigError(f"student score encoder got input shape {tuple(x.shape)}; "
                              f"expected (n, {', '.join(map(str, self.config.roll_shape))})")
        return F.normalize(self.features(x).mean(dim=(2, 3)), dim=1, eps=1e-8)
