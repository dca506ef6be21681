"""`loss=gan`: the non-saturating loss of Goodfellow et al. (2014), section 3.

D minimises -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))); G minimises -log sigmoid(D(G(z))), which
gives strong gradients early when D rejects G's samples. softplus(-x) = -log sigmoid(x), computed stably.

One-sided label smoothing (Salimans et al. 2016, sec. 3.4), `loss.label_smoothing=s`: D's target for real
samples is 1 - s instead of 1 (fakes keep 0), so D is not rewarded for ever more confident real scores.
"""

import torch.nn.functional as F
from torch import Tensor

from ganlab.errors import check_number
from ganlab.losses.base import AdversarialLoss


def check_label_smoothing(s: float) -> float:
    return check_number("loss.label_smoothing", s, 0, 1, high_open=True, meaning=" (0.1 makes the real target 0.9)")


class NonSaturatingLoss(AdversarialLoss):
    def __init__(self, label_smoothing: float = 0.0, **kwargs: float) -> None:
        super().__init__(**kwargs)
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def d_objective(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        # binary cross-entropy with target 1 - s on reals: -(1 - s) log sigmoid(r) - s log(1 - sigmoid(r))
        s = self.label_smoothing
        real_term = F.softplus(-real_out) if s == 0 else (1 - s) * F.softplus(-real_out) + s * F.softplus(real_out)
        return real_term.mean() + F.softplus(fake_out).mean()

    def g_objective(self, fake_out: Tensor) -> Tensor:
        return F.softplus(-fake_out).mean()
