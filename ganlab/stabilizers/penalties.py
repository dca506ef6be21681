"""R1 and R2: zero-centred gradient penalties on D (Roth et al. 2017; Mescheder et al. 2018).

R1 = gamma/2 E_x~real ||grad_x D(x)||^2 penalises D's slope on the real data, R2 the same on generated
samples. Mescheder et al. prove that R1 makes the non-saturating GAN converge locally where unregularised
training circles; StyleGAN uses it with every loss. Lazy regularisation (Karras et al. 2020, sec. 3.1):
computing it only every `reg_every` D steps, scaled by `reg_every`, keeps the same strength at a fraction
of the cost.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gradient_sq_norm(outputs: Tensor, inputs: Tensor) -> Tensor:
    """Mean over the batch of ||d outputs_i / d inputs_i||^2 (D scores each sample by itself, so the gradient
    of the sum holds each sample's own gradient); differentiable, so that the penalty trains D."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()
