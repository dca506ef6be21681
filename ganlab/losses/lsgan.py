"""`loss=lsgan`: least-squares GAN (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1 (for G).

D: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2];  G: 1/2 E[(D(G(z)) - 1)^2].
"""

from torch import Tensor

from ganlab.losses.base import GANLoss


class LSGANLoss(GANLoss):
    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return 0.5 * ((real_out - 1.0) ** 2).mean() + 0.5 * (fake_out**2).mean()

    def g_objective(self, fake_out: Tensor) -> Tensor:
        return 0.5 * ((fake_out - 1.0) ** 2).mean()
