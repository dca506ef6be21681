"""`stabilizers=[supervised]`: TimeGAN's stepwise supervised loss (Yoon et al. 2019, sec. 4), in data space.

The adversarial loss judges whole sequences; it says little about how one step follows from the steps before, and
a G trained on it alone writes sines of the wrong amplitude for their curvature (README, recurrent GANs). TimeGAN
adds a supervised term: fed the real sequence's earlier steps, G should write its next step. TimeGAN does this in a
learned embedding space; here G itself is fed: a feedback G (`model.generator.feedback=true`, whose every step reads
the value written at the step before) is run teacher-forced, reading the real value of the step before in place
of its own, and pays `weight * sqrt(mean squared error)` of the steps it then writes against the real ones (step 0,
which reads nothing, is left out). TimeGAN weighs the square root of its supervised loss by 100 in G's loss.

The real batch is the one of the step's last D update (TimeGAN uses one batch for both too): `d_term` keeps it,
`g_regularizer` uses it, so the stabiliser needs no data of its own and a resume draws what a straight run does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError, check_number
from ganlab.stabilizers.base import Stabilizer, Stats


class StepwiseSupervision(Stabilizer):
    def __init__(self, weight: float = 100.0) -> None:
        self.weight = check_number("stabilizers.supervised.weight", weight, 0)
        self.real: Tensor | None = None

    def bind_networks(self, G: nn.Module, D: nn.Module) -> None:
        if not callable(getattr(G, "teacher_forced", None)) or not getattr(G, "feedback", False):
            raise ConfigError(
                "stabilizers=[supervised] feeds G the real steps before each one: it needs a G that reads the step "
                "before, model=rnn with model.generator.feedback=true."
            )

    def d_term(self, D: Any, real: Tensor, fake: Tensor) -> tuple[Tensor | None, Stats]:
        # Copied into a buffer of its own (made in the eager warm-up before any capture), not referenced, so that
        # a captured CUDA graph of the G update reads the latest batch.
        if self.real is None or self.real.shape != real.shape:
            self.real = torch.empty_like(real)
        self.real.copy_(real.detach())
        return None, {}

    def g_regularizer(self, G: nn.Module, z: Tensor, condition: Tensor | None) -> tuple[Tensor | None, Stats]:
        if self.real is None:  # no D update yet (cannot happen in the step, which runs D first)
            return None, {}
        real = self.real[: z.shape[0]]
        written = G.teacher_forced(real, z, condition)
        error = (written[:, 1:].float() - real[:, 1:].float()).square().mean()
        rmse = error.add(1e-12).sqrt()  # finite gradient at a perfect fit
        return self.weight * rmse, {"loss/supervised": rmse.detach()}
