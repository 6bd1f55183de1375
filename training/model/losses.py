"""The losses that pull matching (audio, score) embeddings together, over in-batch negatives.

For a batch of matching pairs ``(a_i, s_i)`` with unit-length embeddings, every other
item of the batch is a contrastive example. Two losses, chosen by name through
:func:`make_loss` (``training train --loss``):

``hinge``: the paper's pairwise ranking loss (Dorfer et al. 2018, eq. 1)::

    L = 1/n sum_i [ sum_{k != i} max(0, margin - a_i.s_i + a_i.s_k)
                  + sum_{k != i} max(0, margin - a_i.s_i + a_k.s_i) ]

i.e. both retrieval directions (audio->score and score->audio), as the authors'
``get_contrastive_cos_loss`` ranks both. Margin 0.7 as in their models.

``infonce``: the symmetric contrastive loss (InfoNCE / NT-Xent, as CLIP uses it),
with logits ``z[i, k] = a_i . s_k / tau``::

    L = 1/2 [ CE(z, diag) + CE(z^T, diag) ]

the mean cross-entropy of picking the matching item among the batch, in both
directions. Why it helps here (docs/improvements.md (a)): the hinge loss stops
pushing a negative once it is ``margin`` below the positive and gives every
violating negative the same weight; the softmax weighs each negative by how
confusable it is (hard negatives dominate the gradient) and never saturates, which
matters for retrieval metrics where the *rank* among 2,000 candidates counts. The
temperature is fixed, not learned, so the optimiser needs no extra parameter: 0.1
puts cosine similarities in [-10, 10] logits, SimCLR's choice for small embeddings.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from follower.errors import ConfigError

MARGIN = 0.7
TEMPERATURE = 0.1
# name -> what the training curves call it
LOSSES = {"hinge": "ranking hinge loss", "infonce": "InfoNCE loss"}


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


def info_nce_loss(audio: torch.Tensor, score: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Mean of the audio->score and score->audio cross-entropies over the batch."""
    n = check_pair_batch(audio, score, "contrastive")
    if not temperature > 0:
        raise ConfigError(f"temperature={temperature!r} must be positive")
    logits = audio @ score.t() / temperature      # logits[i, k] = a_i . s_k / tau
    target = torch.arange(n, device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


class RankingHingeLoss(nn.Module):
    def __init__(self, margin: float = MARGIN):
        super().__init__()
        if not 0 < margin <= 2:
            raise ConfigError(f"margin={margin!r} must be in (0, 2] for cosine similarities")
        self.margin = margin

    def forward(self, audio: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        return ranking_hinge_loss(audio, score, self.margin)


def make_loss(name: str, *, margin: float | None = None, temperature: float = TEMPERATURE):
    """``loss(audio, score)`` for a loss name: ``hinge`` (the paper's) or ``infonce``."""
    if name == "hinge":
        m = MARGIN if margin is None else margin
        return lambda a, s: ranking_hinge_loss(a, s, m)
    if name == "infonce":
        if not temperature > 0:
            raise ConfigError(f"temperature={temperature!r} must be positive")
        return lambda a, s: info_nce_loss(a, s, temperature)
    raise ConfigError(f"loss={name!r}; expected 'hinge' or 'infonce'")
