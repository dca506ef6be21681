"""Equalized learning rate and pixel norm (ganlab/models/equalized.py), against values computed by hand."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ganlab.models.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm, channel_widths


def test_a_linear_layer_scales_its_stored_weights_by_one_over_sqrt_fan_in_at_run_time() -> None:
    torch.manual_seed(0)
    layer = EqualizedLinear(50, 7)
    assert abs(layer.weight.std().item() - 1) < 0.1  # stored at N(0, 1)
    x = torch.randn(4, 50)
    with torch.no_grad():
        layer.bias.copy_(torch.arange(7.0))
    expected = x @ (layer.weight.detach() / math.sqrt(50)).T + torch.arange(7.0)
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_the_lr_multiplier_keeps_the_initial_function_and_scales_the_effective_step() -> None:
    """lr_mul=0.01: weights stored as N(0, 1/lr_mul^2), scaled by lr_mul/sqrt(fan_in); the same function at init
    as lr_mul=1, and an Adam-like step (the same size for every stored weight) moves the effective weights
    lr_mul times as far."""
    torch.manual_seed(0)
    slow = EqualizedLinear(16, 3, lr_mul=0.01, bias_init=1.0).double()  # float64: weights near 100 take a 1e-3
    torch.manual_seed(0)  # step without float32's rounding
    plain = EqualizedLinear(16, 3, bias_init=1.0).double()
    assert slow.weight_gain == 0.01 / 4 and plain.weight_gain == 1 / 4 and slow.bias_gain == 0.01
    assert torch.allclose(slow.bias * slow.bias_gain, torch.ones(3, dtype=torch.float64))
    x = torch.randn(5, 16, dtype=torch.float64)
    assert torch.allclose(slow(x), plain(x), atol=1e-9)  # the same effective weights at init
    moved = []
    for layer in (slow, plain):
        before = layer.weight.detach() * layer.weight_gain
        layer(x).pow(2).sum().backward()
        with torch.no_grad():
            layer.weight -= 1e-3 * layer.weight.grad.sign()  # Adam's first step: lr times the gradient's sign
        moved.append(layer.weight.detach() * layer.weight_gain - before)
    assert torch.allclose(moved[0], 0.01 * moved[1], rtol=1e-9, atol=0)


def test_a_conv_layer_scales_by_one_over_sqrt_of_channels_times_kernel_area_and_gain() -> None:
    torch.manual_seed(0)
    conv = EqualizedConv2d(6, 4, 3, gain=math.sqrt(2))
    assert conv.weight_gain == math.sqrt(2) / math.sqrt(6 * 9)
    x = torch.randn(2, 6, 5, 5)
    expected = F.conv2d(x, conv.weight.detach() * math.sqrt(2) / math.sqrt(54), padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    assert conv(x).shape == (2, 4, 5, 5)


def test_pixel_norm_gives_each_pixels_feature_vector_unit_root_mean_square() -> None:
    x = torch.tensor([[[[3.0]], [[4.0]]]])  # one pixel, features (3, 4): rms = sqrt(12.5)
    out = PixelNorm()(x)
    assert torch.allclose(out.flatten(), torch.tensor([3.0, 4.0]) / math.sqrt(12.5), atol=1e-6)
    y = PixelNorm()(torch.randn(3, 8, 4, 4) * 7)
    assert torch.allclose(y.pow(2).mean(dim=1), torch.ones(3, 4, 4), atol=1e-5)


def test_the_channel_schedule_is_the_papers() -> None:
    resolutions = [4, 8, 16, 32, 64, 128, 256, 512, 1024]
    stylegan2 = channel_widths(resolutions, 32768, 512)
    assert [stylegan2[r] for r in resolutions] == [512, 512, 512, 512, 512, 256, 128, 64, 32]
    progan = channel_widths(resolutions, 16384, 512)  # fmap_base 8192 / 2^stage
    assert [progan[r] for r in resolutions] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
