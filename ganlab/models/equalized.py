"""Equalized learning rate and pixel norm (Karras et al. 2018, sec. 4.1 and 4.2), shared by ProGAN and StyleGAN2.

Equalized learning rate: a layer stores its weights as N(0, 1 / lr_mul^2) and multiplies them at run time by
`gain * lr_mul / sqrt(fan_in)`, He's constant applied in every forward pass instead of once at init. Adam
normalises each update by the gradient's scale, so with plain He init a layer with a large fan-in would learn
more slowly than one with a small fan-in; with the scale at run time every weight moves at the same relative
speed. `lr_mul` slows a whole layer down (StyleGAN's mapping network: 0.01) without touching the optimizer: the
stored weight is 1/lr_mul larger and its gradient lr_mul smaller, so its effective step is lr_mul times Adam's.
The bias is stored divided by lr_mul for the same reason.

`gain`: ProGAN folds He's sqrt(2) for LeakyReLU into the weight scale (gain=sqrt(2)); StyleGAN2 keeps gain 1
and multiplies the activation by sqrt(2) instead (`lrelu_gain`), which is the same up to the bias's scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)


class EqualizedLinear(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = gain * lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_gain
        return F.linear(x, self.weight * self.weight_gain, bias)

    def extra_repr(self) -> str:
        out, inp = self.weight.shape
        return f"{inp}, {out}, weight_gain={self.weight_gain:.4g}, bias_gain={self.bias_gain:g}"


class EqualizedConv2d(nn.Module):
    """A stride-1 convolution with 'same' padding and the equalized learning rate."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        lr_mul: float = 1.0,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = gain * lr_mul / math.sqrt(in_channels * kernel_size * kernel_size)
        self.bias_gain = lr_mul
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_gain
        return F.conv2d(x, self.weight * self.weight_gain, bias, padding=self.padding)

    def extra_repr(self) -> str:
        out, inp, k, _ = self.weight.shape
        return f"{inp}, {out}, kernel_size={k}, weight_gain={self.weight_gain:.4g}"


def lrelu_gain(x: Tensor, slope: float = 0.2) -> Tensor:
    """LeakyReLU(0.2) times sqrt(2): keeps unit-variance activations at unit variance (StyleGAN2's bias_act)."""
    return F.leaky_relu(x, slope) * SQRT2


class PixelNorm(nn.Module):
    """Each sample's feature vector (per pixel) scaled to unit root mean square over channels (ProGAN sec. 4.2)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


def channel_widths(resolutions: list[int], channel_base: int, channel_max: int) -> dict[int, int]:
    """The papers' channel schedule: min(channel_base / resolution, channel_max) channels at each resolution
    (StyleGAN2 config F: channel_base 32768, channel_max 512; ProGAN's fmap_base 8192 / 2^stage, where stage s is
    resolution 2^(s+1), is this rule with channel_base 16384)."""
    return {r: max(1, min(channel_base // r, channel_max)) for r in resolutions}
