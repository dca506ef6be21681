"""`loss=lsgan`: least-squares GAN (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1 (for G).

D: 1/2 E[(D(x) - b)^2] + 1/2 E[D(G(z))^2];  G: 1/2 E[(D(G(z)) - 1)^2].
`loss.label_smoothing=s` sets b = 1 - s (one-sided, as for `gan`).
"""

from torch import Tensor

from ganlab.losses.base import AdversarialLoss
from ganlab.losses.gan import check_label_smoothing


class LSGANLoss(AdversarialLoss):
    def __init__(self, label_smoothing: float = 0.0, **kwargs: float) -> None:
        super().__init__(**kwargs)
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real_target = 1.0 - self.label_smoothing
        return 0.5 * ((real_out - real_target) ** 2).mean() + 0.5 * (fake_out**2).mean()

    def g_objective(self, fake_out: Tensor) -> Tensor:
        return 0.5 * ((fake_out - 1.0) ** 2).mean()
