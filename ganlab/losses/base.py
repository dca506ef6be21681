"""The loss protocol: a loss computes D's and G's objectives (and its own penalties) from D and batches.

The loop owns backward() and step(); a loss returns `(loss, stats)` where stats are detached scalars
logged as they are (TensorBoard tags such as `D/real`, `loss/gp`).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.errors import check_positive
from ganlab.models.layers import check_norm

Stats = dict[str, Tensor]


class GANLoss:
    """Base class. Subclasses implement `d_objective` and `g_objective` on D's outputs (logits)."""

    #: Whether D may use BatchNorm. Per-sample penalties (WGAN-GP) need samples that do not mix.
    allows_batchnorm_in_d: bool = True
    #: Whether D's output is an estimate of the Wasserstein distance (logged as `D/wasserstein`).
    wasserstein: bool = False

    def __init__(self, n_critic: int = 1, d_norm: str = "batch") -> None:
        check_positive("loss", n_critic=n_critic)
        check_norm(d_norm, "loss.d_norm")
        self.n_critic = n_critic  # the default number of D steps per G step
        self.d_norm = d_norm

    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_objective(self, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        real_out = D(real)
        fake_out = D(fake)
        loss = self.d_objective(real_out, fake_out)
        stats = {
            "loss/D": loss.detach(),
            "D/real": real_out.detach().mean(),
            "D/fake": fake_out.detach().mean(),
        }
        if self.wasserstein:
            stats["D/wasserstein"] = stats["D/real"] - stats["D/fake"]
        return loss, stats

    def g_loss(self, D: nn.Module, fake: Tensor) -> tuple[Tensor, Stats]:
        loss = self.g_objective(D(fake))
        return loss, {"loss/G": loss.detach()}

    def after_d_step(self, D: nn.Module) -> None:
        """Hook after each optimizer step of D (weight clipping lives here)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_critic={self.n_critic})"
