"""Bilinear grid sampling whose gradient with respect to the image is differentiable again.

R1 and R2 penalise D's gradient with respect to its input, so their update differentiates twice through whatever
D applies to that input first: under ADA (ganlab/stabilizers/ada.py), the geometric augmentation's grid_sample.
torch 2.11 (the CUDA machines we test on carry it) and older have no derivative for `grid_sampler_2d_backward` and
stop such a step with "derivative for aten::grid_sampler_2d_backward is not implemented" (pytorch/pytorch#34704);
torch 2.14 has one. StyleGAN2-ADA's reference code works around the same gap with its own grid_sample_gradfix; this
is ganlab's, written from the algebra:

For a fixed grid, sampling is linear in the image: out = S x. Its input gradient is S^T g (what
grid_sampler_2d_backward computes), which is linear in g, and the derivative of S^T g with respect to g is the
adjoint of S^T, S itself: sampling again with the same grid. So the backward of the backward is one more forward.
Gradients with respect to the grid (which ADA draws at random, with no gradient) go through torch's own op.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

BILINEAR = 0  # aten's GridSamplerInterpolation
PADDING_MODES = {"zeros": 0, "border": 1, "reflection": 2}  # aten's GridSamplerPadding


def grid_sample(x: Tensor, grid: Tensor, padding_mode: str = "reflection", align_corners: bool = False) -> Tensor:
    """F.grid_sample(x, grid, mode="bilinear", ...), bitwise, with an input gradient that has its own gradient.
    Under autocast it computes in float32, as torch's grid_sample does."""
    if grid.requires_grad or x.dim() != 4:  # a learned grid, or a volume: torch's op
        return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
    dtype = torch.float32 if torch.is_autocast_enabled(x.device.type) else torch.promote_types(x.dtype, grid.dtype)
    with torch.autocast(x.device.type, enabled=False):
        return _Sample.apply(x.to(dtype), grid.to(dtype), PADDING_MODES[padding_mode], align_corners)


class _Sample(torch.autograd.Function):
    """out = S x for the grid's fixed sampling matrix S."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, grid: Tensor, padding: int, align_corners: bool) -> Tensor:
        ctx.save_for_backward(x, grid)
        ctx.options = (padding, align_corners)
        return torch.grid_sampler(x, grid, BILINEAR, padding, align_corners)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, None, None, None]:
        x, grid = ctx.saved_tensors
        return _SampleTransposed.apply(grad_out, x, grid, *ctx.options), None, None, None


class _SampleTransposed(torch.autograd.Function):
    """S^T g: the input gradient of _Sample; its own gradient with respect to g is S again."""

    @staticmethod
    def forward(ctx: Any, grad_out: Tensor, x: Tensor, grid: Tensor, padding: int, align_corners: bool) -> Tensor:
        ctx.save_for_backward(grid)
        ctx.options = (padding, align_corners)
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(
            grad_out, x, grid, BILINEAR, padding, align_corners, [True, False]
        )
        return grad_x

    @staticmethod
    def backward(ctx: Any, grad_grad_x: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        (grid,) = ctx.saved_tensors
        return _Sample.apply(grad_grad_x, grid, *ctx.options), None, None, None, None
