"""`loss=minimax`: the saturating generator loss of Goodfellow et al. (2014), equation 1.

G minimises log(1 - sigmoid(D(G(z)))) = -softplus(D(G(z))): the true minimax game, which saturates when D
confidently rejects G's samples. Kept for comparison with the non-saturating `gan` loss.
"""

import torch.nn.functional as F
from torch import Tensor

from ganlab.losses.gan import NonSaturatingLoss


class MinimaxLoss(NonSaturatingLoss):
    def g_objective(self, fake_out: Tensor) -> Tensor:
        return -F.softplus(fake_out).mean()
