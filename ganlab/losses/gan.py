"""`loss=gan`: the non-saturating loss of Goodfellow et al. (2014), section 3.

D minimises -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))); G minimises -log sigmoid(D(G(z))), which
gives strong gradients early when D rejects G's samples. softplus(-x) = -log sigmoid(x), computed stably.
"""

import torch.nn.functional as F
from torch import Tensor

from ganlab.losses.base import GANLoss as _Base


class GANLoss(_Base):
    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()

    def g_objective(self, fake_out: Tensor) -> Tensor:
        return F.softplus(-fake_out).mean()
