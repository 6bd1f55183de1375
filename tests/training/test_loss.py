import pytest
import torch

from follower.errors import ConfigError
from training.model.losses import RankingHingeLoss, ranking_hinge_loss


def test_zero_when_pairs_match_and_negatives_are_far():
    e = torch.eye(4)  # positives: cosine 1; negatives: cosine 0 < 1 - 0.7
    assert float(ranking_hinge_loss(e, e)) == 0.0


def test_known_value_two_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    # sim = [[0.6, 0.0], [0.8, 1.0]], positives 0.6 and 1.0
    # audio->score: q0 vs s1: 0.7-0.6+0.0=0.1; q1 vs s0: 0.7-1.0+0.8=0.5
    # score->audio: s0 vs a1: 0.7-0.6+0.8=0.9; s1 vs a0: 0.7-1.0+0.0=0 (clamped)
    assert float(ranking_hinge_loss(a, s)) == pytest.approx((0.1 + 0.5 + 0.9) / 2)


def test_margin_and_gradient():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(8, 32), dim=1).requires_grad_()
    s = torch.nn.functional.normalize(torch.randn(8, 32), dim=1)
    loss = RankingHingeLoss(margin=0.7)(a, s)
    loss.backward()
    assert loss.item() > 0 and a.grad.abs().sum() > 0
    assert RankingHingeLoss(0.2)(a, s).item() < loss.item()


def test_bad_inputs_one_line():
    with pytest.raises(ConfigError, match="same shape"):
        ranking_hinge_loss(torch.zeros(4, 32), torch.zeros(4, 16))
    with pytest.raises(ConfigError, match="at least 2"):
        ranking_hinge_loss(torch.zeros(1, 32), torch.zeros(1, 32))
    with pytest.raises(ConfigError, match="margin"):
        RankingHingeLoss(margin=0)
