"""`loss=wgan`: Wasserstein GAN with weight clipping (Arjovsky et al. 2017, Algorithm 1).

The critic maximises E[D(x)] - E[D(G(z))] (so minimises its negative) and its weights are clamped to
[-clip_value, clip_value] after every step to keep it (crudely) Lipschitz; G minimises -E[D(G(z))].
"""

import torch
from torch import Tensor, nn

from ganlab.errors import check_number
from ganlab.losses.base import AdversarialLoss


class CriticLoss(AdversarialLoss):
    """The Wasserstein critic objectives, shared by `wgan` and `wgan_gp`; they differ in how D is kept
    Lipschitz."""

    wasserstein = True

    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.mean() - real_out.mean()

    def g_objective(self, fake_out: Tensor) -> Tensor:
        return -fake_out.mean()


class WGANLoss(CriticLoss):
    def __init__(self, clip_value: float = 0.01, n_critic: int = 5, d_norm: str = "batch", **penalties: float) -> None:
        super().__init__(n_critic=n_critic, d_norm=d_norm, **penalties)
        meaning = " (D's weights are clamped to [-c, c])"
        self.clip_value = check_number("loss.clip_value", clip_value, 0, low_open=True, meaning=meaning)

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        params = list(D.parameters())  # two foreach operations instead of one clamp per parameter
        torch._foreach_clamp_min_(params, -self.clip_value)
        torch._foreach_clamp_max_(params, self.clip_value)
