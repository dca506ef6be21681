"""`stabilizers=[consistency]`: consistency regularisation (Zhang et al. 2020, "Consistency Regularization for
Generative Adversarial Networks", CR-GAN), with its balanced form (Zhao et al. 2021, bCR).

D is penalised for scoring an image differently from a semantics-preserving augmentation of it:
    L_D += weight * E ||D(x) - D(T(x))||^2 over real x, and + weight_fake * the same over G's samples (bCR).
T flips horizontally with probability 1/2 and shifts by whole pixels, up to `translation` of the side, filling
with zeros: the paper's flip-and-shift. Its weight 10 is the paper's. Unlike DiffAugment (augment.diffaugment),
D still trains on the images themselves; the augmentation only enters this term.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganlab.errors import ConfigError, check_number
from ganlab.stabilizers.augment import translation as shift
from ganlab.stabilizers.base import Stabilizer, Stats


def flip_and_shift(x: Tensor, ratio: float) -> Tensor:
    """T: a horizontal flip of each image with probability 1/2, then a shift of up to `ratio` of its side."""
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return shift(torch.where(flip, x.flip(3), x), ratio)


class ConsistencyRegularization(Stabilizer):
    def __init__(self, weight: float = 10.0, weight_fake: float = 0.0, translation: float = 0.125) -> None:
        self.weight = check_number("stabilizers.consistency.weight", weight, 0)
        self.weight_fake = check_number("stabilizers.consistency.weight_fake", weight_fake, 0)
        self.translation = check_number("stabilizers.consistency.translation", translation, 0, 0.5, high_open=True)

    def bind(self, data_shape: tuple[int, ...], device: Any) -> None:
        if len(data_shape) != 3:
            raise ConfigError(
                f"stabilizers=[consistency] augments images (C, H, W); this data has samples of shape {data_shape}."
            )

    def d_term(self, D: Any, real: Tensor, fake: Tensor) -> tuple[Tensor | None, Stats]:
        stats: Stats = {}
        term = None
        for name, weight, x in (("real", self.weight, real), ("fake", self.weight_fake, fake)):
            if weight > 0:
                gap = (D(x) - D(flip_and_shift(x, self.translation))).float().pow(2).mean()
                stats[f"loss/cr_{name}"] = gap.detach()
                term = weight * gap if term is None else term + weight * gap
        return term, stats
