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


def gradient_sq_norm(outputs: Tensor, inputs: Tensor, grad_scale: Tensor | None = None) -> Tensor:
    """Mean over the batch of ||d outputs_i / d inputs_i||^2 (D scores each sample by itself, so the gradient
    of the sum holds each sample's own gradient); differentiable, so that the penalty trains D.
    `grad_scale`: the GradScaler's current scale under trainer.precision=16 (see input_gradient)."""
    grad = input_gradient(outputs, inputs, grad_scale)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def input_gradient(outputs: Tensor, inputs: Tensor, grad_scale: Tensor | None = None) -> Tensor:
    """d sum(outputs) / d inputs, kept differentiable. In float16 (trainer.precision=16) small gradients flush to
    zero on the way back, so the sum is multiplied by the loss scale first and the gradient divided by it after,
    as PyTorch's AMP recipe for gradient penalties does; an overflow there gives inf, which the GradScaler then
    sees in D's gradients and skips that step."""
    if grad_scale is None:
        (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
        return grad
    (scaled,) = torch.autograd.grad(outputs.sum() * grad_scale, inputs, create_graph=True)
    return scaled / grad_scale
