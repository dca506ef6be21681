"""FIR-filtered resampling by a factor of 2 (Karras et al. 2020, StyleGAN2, sec. 2 and appendix B; the filter is
StyleGAN's, Karras et al. 2019, sec. 2, after Zhang 2019 "Making convolutional networks shift-invariant again").

Nearest-neighbour upsampling and strided subsampling alias: high frequencies fold back into the image as
checkerboards and make the network's output depend on where a feature sits relative to the pixel grid. Both
are replaced by filtering with the separable binomial filter [1, 3, 3, 1] (its outer product, normalised to
sum 1), a cheap low-pass:

- `upsample2d`: zero insertion (each pixel at an even position of a grid twice the size), then the filter with
  gain 4 (= 2^2, the fraction of the new grid that holds samples), so a constant image stays that constant.
- `downsample2d`: the filter, then every second pixel.
- `blur`: the filter alone with explicit padding, for D's stride-2 3x3 convolution (filter, then conv).

All are depthwise `conv2d`s (groups = channels) in plain PyTorch, built on the input's device and dtype at
each call: a 4x4 kernel costs nothing to make, and no buffer has to follow the module between devices.
The filter is symmetric, so correlation (what conv2d computes) and convolution are the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def fir_kernel(x: Tensor, gain: float = 1.0) -> Tensor:
    """The 4x4 filter (outer product of [1, 3, 3, 1], sum `gain`) as a depthwise weight (C, 1, 4, 4) for x.

    The taps are computed on x's device (3 - 2(|i - 1.5| - 0.5) for i = 0..3, exact in every float type), not
    copied from the host: on CUDA `torch.tensor(..., device=...)` is a copy from pageable memory that waits for
    the device, which a CUDA graph capture refuses."""
    i = torch.arange(4, device=x.device, dtype=x.dtype)
    f = 3.0 - 2.0 * ((i - 1.5).abs() - 0.5)
    k = torch.outer(f, f)
    k = k * (gain / k.sum())
    return k.expand(x.shape[1], 1, 4, 4)


def _filter(x: Tensor, pad: tuple[int, int], gain: float = 1.0, stride: int = 1) -> Tensor:
    """Depthwise filtering of x with `pad` = (before, after) zeros on both spatial axes."""
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, fir_kernel(x, gain), stride=stride, groups=x.shape[1])


def upsample2d(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): zero insertion, then the filter with gain 4.

    The zero-inserted image has its samples at even positions; padding 2 before and 1 after makes the 4-tap
    filter's output exactly 2H long and keeps the pixel centres where they were (no half-pixel shift): each output
    pixel reads two samples with taps 1 and 3, or 3 and 1, on each axis."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, h, 2, w, 2)
    up[:, :, :, 0, :, 0] = x
    return _filter(up.reshape(b, c, 2 * h, 2 * w), (2, 1), gain=4.0)


def downsample2d(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2): the filter (padding 1 each side), then every second pixel. Output pixel
    i reads inputs 2i-1 .. 2i+2, centred between the two pixels 2i and 2i+1 it replaces."""
    return _filter(x, (1, 1), stride=2)


def blur(x: Tensor, pad: int | tuple[int, int]) -> Tensor:
    """The filter (gain 1) with `pad` zeros on each side (or (before, after)): H + pad0 + pad1 - 3 pixels.

    D's downsampling conv is blur(x, 2) followed by a 3x3 stride-2 conv without padding: H + 1 pixels after the
    blur, then floor((H + 1 - 3) / 2) + 1 = H/2, and output pixel i is centred at input 2i + 0.5, where
    `downsample2d` puts it too, so the residual block's two branches stay aligned."""
    pads = (pad, pad) if isinstance(pad, int) else pad
    return _filter(x, pads)
