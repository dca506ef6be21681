"""`loss=wgan_gp`: WGAN with gradient penalty (Gulrajani et al. 2017, Algorithm 1).

D: E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2], with x_hat = eps x + (1 - eps) G(z)
and one eps ~ U[0, 1] per sample (not per pixel). The penalty treats samples independently, so D must
not use BatchNorm (the paper uses LayerNorm); build.py refuses that combination.
`drift` adds ProGAN's drift term drift * E[D(x)^2] on the real batch (Karras et al. 2018, sec. A.1), which keeps
D's scores from drifting far from zero (the Wasserstein objective fixes only their differences).
"""

import torch
from torch import Tensor

from ganlab.errors import check_number
from ganlab.losses.base import Critic, Stats
from ganlab.losses.wgan import CriticLoss
from ganlab.stabilizers.penalties import input_gradient


def gradient_penalty(D: Critic, real: Tensor, fake: Tensor, grad_scale: Tensor | None = None) -> Tensor:
    """Mean of (||grad_x D(x_hat)||_2 - 1)^2 over random per-sample interpolates of real and fake.
    `grad_scale`: the loss scale under trainer.precision=16 (stabilizers/penalties.py: input_gradient)."""
    dtype = torch.promote_types(real.dtype, fake.dtype)  # under autocast G's samples may be half precision
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=dtype)
    x_hat = (eps * real.detach().to(dtype) + (1.0 - eps) * fake.detach().to(dtype)).requires_grad_(True)
    grad = input_gradient(D(x_hat), x_hat, grad_scale)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


class WGANGPLoss(CriticLoss):
    allows_batchnorm_in_d = False

    def __init__(
        self, gp_weight: float = 10.0, n_critic: int = 5, d_norm: str = "layer", drift: float = 0.0, **penalties: float
    ) -> None:
        super().__init__(n_critic=n_critic, d_norm=d_norm, **penalties)
        self.gp_weight = check_number("loss.gp_weight", gp_weight, 0)
        self.drift = check_number("loss.drift", drift, 0, meaning=" (0: off)")

    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        loss = super().d_objective(real_out, fake_out)
        return loss + self.drift * real_out.float().pow(2).mean() if self.drift else loss

    def needs_input_gradients(self, regularize: bool) -> bool:
        return True  # the gradient penalty, at every D step

    def d_loss(
        self, D: Critic, real: Tensor, fake: Tensor, regularize: bool = True, grad_scale: Tensor | None = None
    ) -> tuple[Tensor, Stats]:
        loss, stats = super().d_loss(D, real, fake, regularize, grad_scale)
        gp = gradient_penalty(D, real, fake, grad_scale)
        loss = loss + self.gp_weight * gp
        stats["loss/gp"] = gp.detach()
        stats["loss/D"] = loss.detach()
        return loss, stats
