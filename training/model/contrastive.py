"""Symmetric contrastive loss (InfoNCE / NT-Xent, as CLIP uses it) over in-batch negatives.

An alternative to the paper's pairwise ranking hinge loss (:mod:`training.model.losses`),
tried in docs/improvements.md. For unit-length embeddings ``a_i``, ``s_i`` and a
temperature ``tau``, with logits ``z[i, k] = a_i . s_k / tau``:

    L = 1/2 [ CE(z, diag) + CE(z^T, diag) ]

the mean cross-entropy of picking the matching item among the batch, in both
retrieval directions. Why it should help here: the hinge loss stops pushing a
negative once it is ``margin`` below the positive, and gives every violating
negative the same weight; the softmax weighs each negative by how confusable it
is (hard negatives dominate the gradient) and never saturates, which matters for
the retrieval metrics where the *rank* among 2,000 candidates counts. The
temperature is fixed (not learned) so that ``train()``'s optimiser needs no extra
parameter: 0.1 puts cosine similarities in [-10, 10] logits, SimCLR's choice for
small embeddings.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from follower.errors import ConfigError

from .losses import check_pair_batch

TEMPERATURE = 0.1


def info_nce_loss(audio: torch.Tensor, score: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Mean of the audio->score and score->audio cross-entropies over the batch."""
    n = check_pair_batch(audio, score, "contrastive")
    if not temperature > 0:
        raise ConfigError(f"temperature={temperature!r} must be positive")
    logits = audio @ score.t() / temperature      # logits[i, k] = a_i . s_k / tau
    target = torch.arange(n, device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def make_loss(name: str, *, margin: float | None = None, temperature: float = TEMPERATURE):
    """``loss(audio, score)`` for a loss name: ``hinge`` (the paper's) or ``infonce``."""
    from .losses import MARGIN, ranking_hinge_loss

    if name == "hinge":
        m = MARGIN if margin is None else margin
        return lambda a, s: ranking_hinge_loss(a, s, m)
    if name == "infonce":
        if not temperature > 0:
            raise ConfigError(f"temperature={temperature!r} must be positive")
        return lambda a, s: info_nce_loss(a, s, temperature)
    raise ConfigError(f"loss={name!r}; expected 'hinge' or 'infonce'")
