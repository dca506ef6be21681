"""Each loss against values computed by hand (math module, not torch) on fixed D outputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganlab.losses.gan import NonSaturatingLoss
from ganlab.losses.hinge import HingeLoss
from ganlab.losses.lsgan import LSGANLoss
from ganlab.losses.minimax import MinimaxLoss
from ganlab.losses.wgan import WGANLoss
from ganlab.losses.wgan_gp import WGANGPLoss, gradient_penalty

REAL = [2.0, -0.5, 0.3]  # D's logits on real samples
FAKE = [-1.0, 0.8, 1.5]  # D's logits on generated samples


class Identity(nn.Module):
    """A "discriminator" whose output is its input, so the loss sees exactly REAL and FAKE."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


BCE_D = mean([-math.log(sigmoid(r)) for r in REAL]) + mean([-math.log(1 - sigmoid(f)) for f in FAKE])
EXPECTED = {
    # loss: (D loss, G loss)
    NonSaturatingLoss: (BCE_D, mean([-math.log(sigmoid(f)) for f in FAKE])),
    MinimaxLoss: (BCE_D, mean([math.log(1 - sigmoid(f)) for f in FAKE])),
    LSGANLoss: (
        0.5 * mean([(r - 1) ** 2 for r in REAL]) + 0.5 * mean([f**2 for f in FAKE]),
        0.5 * mean([(f - 1) ** 2 for f in FAKE]),
    ),
    HingeLoss: (
        mean([max(0.0, 1 - r) for r in REAL]) + mean([max(0.0, 1 + f) for f in FAKE]),
        -mean(FAKE),
    ),
    WGANLoss: (mean(FAKE) - mean(REAL), -mean(FAKE)),
}


@pytest.mark.parametrize("loss_cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_loss_matches_hand_computed_values(loss_cls: type) -> None:
    loss = loss_cls()
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    d_value, d_stats = loss.d_loss(Identity(), real, fake)
    g_value, g_stats = loss.g_loss(Identity(), fake)
    want_d, want_g = EXPECTED[loss_cls]
    assert d_value.item() == pytest.approx(want_d, rel=1e-12)
    assert g_value.item() == pytest.approx(want_g, rel=1e-12)
    assert d_stats["D/real"].item() == pytest.approx(mean(REAL))
    assert d_stats["D/fake"].item() == pytest.approx(mean(FAKE))
    assert g_stats["loss/G"].item() == pytest.approx(want_g, rel=1e-12)


def test_large_logits_stay_finite() -> None:
    """softplus formulation: no log(0) when D is extremely confident."""
    real, fake = torch.tensor([200.0]), torch.tensor([-200.0])
    for loss in (NonSaturatingLoss(), MinimaxLoss()):
        d, _ = loss.d_loss(Identity(), real, fake)
        g, _ = loss.g_loss(Identity(), fake)
        assert torch.isfinite(d) and torch.isfinite(g)
    assert NonSaturatingLoss().g_loss(Identity(), fake)[0].item() == pytest.approx(200.0)


def test_wasserstein_estimate_is_logged() -> None:
    _, stats = WGANLoss().d_loss(Identity(), torch.tensor(REAL), torch.tensor(FAKE))
    assert stats["D/wasserstein"].item() == pytest.approx(mean(REAL) - mean(FAKE), rel=1e-6)


def test_default_n_critic_and_batchnorm_needs() -> None:
    assert [cls().n_critic for cls in (NonSaturatingLoss, MinimaxLoss, LSGANLoss, HingeLoss)] == [1, 1, 1, 1]
    assert WGANLoss().n_critic == 5 and WGANGPLoss().n_critic == 5
    assert WGANGPLoss.allows_batchnorm_in_d is False and NonSaturatingLoss.allows_batchnorm_in_d is True


def test_wgan_clips_critic_weights() -> None:
    D = nn.Linear(4, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[0.5, -0.5, 0.005, -0.02]]))
        D.bias.fill_(3.0)
    WGANLoss(clip_value=0.01).after_d_step(D)
    assert torch.equal(D.weight, torch.tensor([[0.01, -0.01, 0.005, -0.01]]))
    assert torch.equal(D.bias, torch.tensor([0.01]))


class LinearCritic(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere, so the penalty is (||w|| - 1)^2 exactly."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


def test_gradient_penalty_on_linear_critic() -> None:
    w = torch.tensor([3.0, 4.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # ||w|| = 5
    D = LinearCritic(w)
    real = torch.randn(7, 1, 2, 3, dtype=torch.float64)
    fake = torch.randn(7, 1, 2, 3, dtype=torch.float64)
    assert gradient_penalty(D, real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)

    loss = WGANGPLoss(gp_weight=10.0)
    total, stats = loss.d_loss(D, real, fake)
    critic = (fake.flatten(1) @ w).mean() - (real.flatten(1) @ w).mean()
    assert stats["loss/gp"].item() == pytest.approx(16.0)
    assert total.item() == pytest.approx(critic.item() + 10.0 * 16.0)
    # The penalty is differentiable in D's parameters: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||.
    (grad,) = torch.autograd.grad(loss.gp_weight * gradient_penalty(D, real, fake), D.w)
    assert torch.allclose(grad, 20.0 * 4.0 * w / 5.0)


class QuadraticCritic(nn.Module):
    """D(x) = ||x||^2 / 2: the input gradient at x_hat is x_hat itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(1)


def test_gradient_penalty_uses_one_coefficient_per_sample() -> None:
    real = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    fake = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    torch.manual_seed(123)
    got = gradient_penalty(QuadraticCritic(), real, fake)
    torch.manual_seed(123)
    eps = torch.rand(5, 1, 1, 1, dtype=torch.float64)  # one draw per sample, broadcast over C, H, W
    x_hat = eps * real + (1 - eps) * fake
    norms = [x_hat[i].flatten().norm().item() for i in range(5)]
    assert got.item() == pytest.approx(mean([(n - 1.0) ** 2 for n in norms]), rel=1e-10)
