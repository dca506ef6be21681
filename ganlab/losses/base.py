"""The loss protocol: a loss computes D's and G's objectives (and its own penalties) from D and batches.

The loop owns backward() and step(); a loss returns `(loss, stats)` where stats are detached scalars
logged as they are (TensorBoard tags such as `D/real`, `loss/gp`). Every loss can add the zero-centred R1/R2
penalties (`loss.r1`, `loss.r2`, computed every `loss.reg_every` D steps: ganlab/stabilizers/penalties.py).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from ganlab.condition import Batch
from ganlab.errors import check_number, check_positive
from ganlab.normalization import check_norm
from ganlab.stabilizers.penalties import gradient_sq_norm

Stats = dict[str, Tensor]
Critic = Callable[[Tensor], Tensor]  # D (its condition bound), or D behind the augmentations (stabilizers/augment.py)


class AdversarialLoss:
    """Base class. Subclasses implement `d_objective` and `g_objective` on D's outputs (logits)."""

    #: Whether D may use BatchNorm. Per-sample penalties (WGAN-GP) need samples that do not mix.
    allows_batchnorm_in_d: bool = True
    #: Whether D's output is an estimate of the Wasserstein distance (logged as `D/wasserstein`).
    wasserstein: bool = False

    def __init__(
        self, n_critic: int = 1, d_norm: str = "batch", r1: float = 0.0, r2: float = 0.0, reg_every: int = 1
    ) -> None:
        check_positive("loss", n_critic=n_critic, reg_every=reg_every)
        check_norm(d_norm, "loss.d_norm")
        meaning = " (a penalty weight gamma; 0: off)"
        self.n_critic = n_critic  # the default number of D steps per G step
        self.d_norm = d_norm
        self.r1 = check_number("loss.r1", r1, 0, meaning=meaning)
        self.r2 = check_number("loss.r2", r2, 0, meaning=meaning)
        self.reg_every = int(reg_every)

    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_objective(self, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def needs_input_gradients(self, regularize: bool) -> bool:
        """Whether this D step differentiates D's output with respect to its input (R1, R2, gradient penalty):
        such a step needs double backward, which a torch.compile'd D does not support."""
        return regularize and (self.r1 > 0 or self.r2 > 0)

    def d_loss(
        self, D: Critic, real: Tensor, fake: Tensor, regularize: bool = True, grad_scale: Tensor | None = None
    ) -> tuple[Tensor, Stats]:
        """D's loss on a real and a (detached) generated batch; `regularize` says whether this D step is one
        of the every-`reg_every`-th that carry R1/R2 (weighted by `reg_every`, so that the strength is kept).
        `grad_scale`: the loss scale under trainer.precision=16, for the penalties' input gradients."""
        r1_now, r2_now = regularize and self.r1 > 0, regularize and self.r2 > 0
        if r1_now:
            real = real.detach().requires_grad_(True)
        if r2_now:
            fake = fake.detach().requires_grad_(True)
        real_out = D(real)
        fake_out = D(fake)
        loss = self.d_objective(real_out, fake_out)
        stats = {
            "D/real": real_out.detach().mean(),
            "D/fake": fake_out.detach().mean(),
            # r_t, ADA's overfitting heuristic: the share of real images D scores as real, minus the rest
            "D/real_sign": real_out.detach().sign().mean(),
        }
        if self.wasserstein:
            stats["D/wasserstein"] = stats["D/real"] - stats["D/fake"]
        penalties = (("r1", r1_now, self.r1, real_out, real), ("r2", r2_now, self.r2, fake_out, fake))
        for name, now, gamma, out, x in penalties:
            if now:
                penalty = gradient_sq_norm(out, x, grad_scale)
                loss = loss + (gamma / 2.0 * self.reg_every) * penalty
                stats[f"loss/{name}"] = penalty.detach()
        stats["loss/D"] = loss.detach()
        return loss, stats

    def g_loss(self, D: Critic, fake: Tensor, batch: Batch | None = None) -> tuple[Tensor, Stats]:
        """G's loss on its samples `fake`; `batch` is what G's update was given (ganlab/condition.py): a loss
        with a content or reconstruction term compares `fake` with `batch.real`, the real samples paired to the
        conditions. The adversarial losses need D's scores only."""
        loss = self.g_objective(D(fake))
        return loss, {"loss/G": loss.detach()}

    def after_d_step(self, D: nn.Module) -> None:
        """Hook after each optimizer step of D (weight clipping lives here)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_critic={self.n_critic})"
