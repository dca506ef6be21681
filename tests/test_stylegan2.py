"""model=stylegan2's FIR resampling checked against values computed here by hand (ganlab/models/resample.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganlab.models.resample import blur, downsample2d, upsample2d

F1D = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)


# ---- resampling -------------------------------------------------------------------------------------------------


def naive_upsample2d(x: torch.Tensor) -> torch.Tensor:
    """Zero insertion, 2 zeros padded before and 1 after, then correlation with 4 * outer([1,3,3,1]) / 64: loops."""
    b, c, h, w = x.shape
    k = torch.outer(F1D, F1D) / 64 * 4
    z = torch.zeros(b, c, 2 * h + 3, 2 * w + 3, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            z[:, :, 2 + 2 * i, 2 + 2 * j] = x[:, :, i, j]
    out = torch.zeros(b, c, 2 * h, 2 * w, dtype=x.dtype)
    for i in range(2 * h):
        for j in range(2 * w):
            for p in range(4):
                for q in range(4):
                    out[:, :, i, j] += k[p, q] * z[:, :, i + p, j + q]
    return out


def test_upsample2d_is_zero_insertion_then_the_filter_with_gain_4() -> None:
    x = torch.randn(2, 3, 3, 5, dtype=torch.float64)  # not square: the two axes must not be swapped
    up = upsample2d(x)
    assert up.shape == (2, 3, 6, 10)
    assert torch.allclose(up, naive_upsample2d(x), atol=1e-12)


def test_resampling_keeps_a_constant_image_away_from_the_borders() -> None:
    x = torch.full((2, 3, 8, 8), 2.5, dtype=torch.float64)
    up, down = upsample2d(x), downsample2d(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    assert torch.allclose(up[:, :, 1:-1, 1:-1], x.new_tensor(2.5), atol=1e-12)  # the outer ring reads padding
    assert torch.allclose(down[:, :, 1:-1, 1:-1], x.new_tensor(2.5), atol=1e-12)
    assert up[0, 0, 0, 0] < 2.5 and down[0, 0, 0, 0] < 2.5


def test_upsampling_then_downsampling_is_the_3_10_3_smoothing() -> None:
    """By hand: down(up(x))[i] = 2/64 * sum over the odd sums s = a + b of taps f_a f_b of x[i + (s - 3) / 2], and
    (f * f) = 1 6 15 20 15 6 1 at s = 1, 3, 5 gives (6, 20, 6) * 2/64 = (3, 10, 3) / 16 per axis."""
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    smooth = downsample2d(upsample2d(x))
    assert smooth.shape == x.shape
    k = torch.outer(*(2 * [torch.tensor([3.0, 10.0, 3.0], dtype=torch.float64) / 16]))
    expected = F.conv2d(x.reshape(6, 1, 8, 8), k[None, None]).reshape(2, 3, 6, 6)
    assert torch.allclose(smooth[:, :, 1:-1, 1:-1], expected, atol=1e-12)
    assert smooth.std() < x.std()  # a low-pass


def test_blur_then_a_centre_tap_stride_2_conv_is_downsample2d() -> None:
    """D's downsampling conv (blur pad 2, 3x3 stride 2, no padding) halves the size and stays aligned with the skip
    branch's downsample2d: with a kernel that is 1 at its centre, the two are the same everywhere."""
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    delta = torch.zeros(3, 1, 3, 3, dtype=torch.float64)
    delta[:, :, 1, 1] = 1
    strided = F.conv2d(blur(x, 2), delta, stride=2, groups=3)
    assert strided.shape == (2, 3, 8, 8)
    assert torch.allclose(strided, downsample2d(x), atol=1e-12)
