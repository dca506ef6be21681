"""`loss=hinge`: hinge loss (Lim & Ye 2017; Miyato et al. 2018).

D: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))];  G: -E[D(G(z))].
"""

import torch.nn.functional as F
from torch import Tensor

from ganlab.losses.base import AdversarialLoss


class HingeLoss(AdversarialLoss):
    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1.0 - real_out).mean() + F.relu(1.0 + fake_out).mean()

    def g_objective(self, fake_out: Tensor) -> Tensor:
        return -fake_out.mean()
