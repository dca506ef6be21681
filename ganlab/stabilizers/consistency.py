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

from ganlab.errors import ConfigError
from ganlab.stabilizers.augment import translation as shift
from ganlab.stabilizers.base import Stabilizer, Stats


def flip_and_shift(x: Tensor, ratio: float) -> Tensor:
    """T: a horizontal flip of each image with probability 1/2, then a shift of up to `ratio` of its side."""
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return shift(torch.where(flip, x.flip(3), x), ratio)


class ConsistencyRegularization(Stabilizer):
    def __init__(self, weight: float = 10.0, weight_fake: float = 0.0, translation: float = 0.125) -> None:
        for name, value in (("weight", weight), ("weight_fake", weight_fake)):
            if not value >= 0:
                raise ConfigError(f"stabilizers.consistency.{name} must be >= 0, got {value}.")
        if not 0 <= translation < 0.5:
            raise ConfigError(f"stabilizers.consistency.translation must be in [0, 0.5), got {translation}.")
        self.weight, self.weight_fake, self.translation = float(weight), float(weight_fake), float(translation)

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
