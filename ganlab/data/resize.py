"""Bicubic resizing for super-resolution, on the images' device.

The low-resolution input of super-resolution is made from the high-resolution batch on the device, the way
the SR literature makes it: bicubic downsampling *with antialiasing*, as PIL's ``Image.resize(..., BICUBIC)``
and MATLAB's ``imresize`` do. The antialiased filter widens the cubic kernel by the scale, so every
high-resolution pixel contributes; a plain bicubic kernel would sample 4x4 pixels and alias. torch's
antialiased bicubic uses the same kernel as PIL and MATLAB (Keys, a = -0.5) and matches PIL's float ("F")
mode to float32 rounding, borders included.

The output size is passed as ``size``, never as ``scale_factor``: for a scale whose reciprocal is not exact
(3), torch would build the sampling grid from the rounded 1/scale and shift it against PIL's (by up to 0.26).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["downsample_bicubic", "upsample_bicubic"]


def _check(images: Tensor, scale: int) -> None:
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"expected floating-point images in [-1, 1], got dtype {images.dtype}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")


def _interpolate(images: Tensor, size: tuple[int, int]) -> Tensor:
    # The antialiased kernels have no half/bfloat16 implementation on the CPU: resize those in float32.
    work = images if images.dtype in (torch.float32, torch.float64) else images.float()
    out = F.interpolate(work, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.to(images.dtype)


def downsample_bicubic(images: Tensor, scale: int) -> Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, C, H // scale, W // scale): antialiased bicubic, as PIL's BICUBIC resize.

    H and W must be divisible by ``scale``, so that the low-resolution grid lines up with the high-resolution
    one and an SR model's output has the input's size. Not clamped: like PIL's float mode, the cubic kernel's
    negative lobes can overshoot [-1, 1] slightly (about 3% at a hard black/white edge).
    """
    _check(images, scale)
    height, width = images.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"image size {height}x{width} is not divisible by the scale {scale}")
    if scale == 1:
        return images.clone()
    return _interpolate(images, (height // scale, width // scale))


def upsample_bicubic(images: Tensor, scale: int) -> Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, C, H * scale, W * scale): the "bicubic" baseline of SR papers, clamped.

    Uses the antialiased path although antialiasing does nothing when upsampling: that path has the
    PIL/MATLAB kernel (a = -0.5), whereas torch's plain bicubic uses OpenCV's (a = -0.75), which differs by up
    to ~0.14 on [-1, 1] and would not be the baseline the papers report. Clamped because the cubic overshoots
    at edges and images outside [-1, 1] cannot be saved or measured as the papers do.
    """
    _check(images, scale)
    height, width = images.shape[-2:]
    if scale == 1:
        return images.clamp(-1.0, 1.0)
    return _interpolate(images, (height * scale, width * scale)).clamp_(-1.0, 1.0)
