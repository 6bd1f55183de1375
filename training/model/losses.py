"""Pairwise ranking (hinge) loss over in-batch negatives (Dorfer et al. 2018, eq. 1).

For a batch of matching pairs (a_i, s_i) with unit-length embeddings, every other
item of the batch is a contrastive example:

    L = 1/n sum_i [ sum_{k != i} max(0, margin - a_i.s_i + a_i.s_k)
                  + sum_{k != i} max(0, margin - a_i.s_i + a_k.s_i) ]

i.e. both retrieval directions (audio->score and score->audio), as the authors'
``get_contrastive_cos_loss`` ranks both. Margin 0.7 as in their models.
"""

from __future__ import annotations

import torch
from torch import nn

from follower.errors import ConfigError

MARGIN = 0.7


def check_pair_batch(audio: torch.Tensor, score: torch.Tensor, loss_name: str) -> int:
    """Validate two (n, embed_dim) embedding batches for an in-batch loss; return n."""
    if audio.shape != score.shape or audio.dim() != 2:
        raise ConfigError(f"embeddings of shapes {tuple(audio.shape)} and {tuple(score.shape)}; "
                          "expected two (n, embed_dim) tensors of the same shape")
    n = audio.shape[0]
    if n < 2:
        raise ConfigError(f"batch of {n} pair(s); the in-batch {loss_name} loss needs at least 2")
    return n


def ranking_hinge_loss(audio: torch.Tensor, score: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """Mean over the batch of the summed hinge violations in both directions."""
    n = check_pair_batch(audio, score, "ranking")
    sim = audio @ score.t()                     # sim[i, k] = a_i . s_k
    pos = sim.diagonal()
    off = ~torch.eye(n, dtype=torch.bool, device=sim.device)
    a2s = torch.clamp(margin - pos[:, None] + sim, min=0)   # audio query i against score k
    s2a = torch.clamp(margin - pos[None, :] + sim, min=0)   # score query k against audio i
    return (a2s[off].sum() + s2a[off].sum()) / n


class RankingHingeLoss(nn.Module):
    def __init__(self, margin: float = MARGIN):
        super().__init__()
        if not 0 < margin <= 2:
            raise ConfigError(f"margin={margin!r} must be in (0, 2] for cosine similarities")
        self.margin = margin

    def forward(self, audio: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        return ranking_hinge_loss(audio, score, self.margin)
