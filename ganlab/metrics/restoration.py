"""PSNR and SSIM as the super-resolution literature reports them.

SR papers (SRCNN, EDSR, SRGAN, ESRGAN, ...) measure on the luma channel only: RGB is converted to Y of
ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` does (Y in [16, 235] for a data range of 255), ``scale`` pixels are
shaved from each border (the upsampler cannot know what lies outside the image), and SSIM is Wang et al.
2004's: an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, population statistics, averaged over
the window positions that lie inside the image. Numbers computed any other way (on RGB, unshaved, with a
uniform window) are not comparable with the published tables.

Everything is computed per image, batched, in float64 on the images' device. Values are measured on the
images as given; a caller that wants the papers' exact protocol clamps and quantises to 8 bits first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["luma", "psnr", "shave", "ssim"]

DATA_RANGE = 255.0
# MATLAB rgb2ycbcr: Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1].
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def luma(images: Tensor) -> Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, 1, H, W) float64 in [0, 255]: what SR metrics are measured on.

    C == 3: BT.601 Y as MATLAB's rgb2ycbcr (16 .. 235). C == 1: the grey level times 255.
    """
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(images.shape)}")
    unit = (images.double() + 1.0) / 2.0
    channels = images.shape[1]
    if channels == 1:
        return unit * DATA_RANGE
    if channels == 3:
        weights = unit.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
        return _Y_OFFSET + (unit * weights).sum(dim=1, keepdim=True)
    raise ValueError(f"luma needs 1 (grey) or 3 (RGB) channels, got {channels}")


def shave(images: Tensor, border: int) -> Tensor:
    """Crop ``border`` pixels from each side of (..., H, W): SR papers shave ``scale`` pixels before measuring."""
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError(f"border must be an integer >= 0, got {border!r}")
    if border == 0:
        return images
    height, width = images.shape[-2:]
    if 2 * border >= min(height, width):
        raise ValueError(f"cannot shave {border} pixels from each side of a {height}x{width} image")
    return images[..., border:-border, border:-border]


def _pair(output: Tensor, target: Tensor, border: int) -> tuple[Tensor, Tensor]:
    if output.shape != target.shape:
        raise ValueError(f"output and target shapes differ: {tuple(output.shape)} vs {tuple(target.shape)}")
    return shave(luma(output), border), shave(luma(target), border)


def psnr(output: Tensor, target: Tensor, border: int = 0) -> Tensor:
    """Per-image PSNR in dB on luma, data range 255, after shaving ``border`` pixels: shape (B,), float64.

    Identical images have zero error and give +inf (as skimage's peak_signal_noise_ratio does); average a batch
    with care, or over finite values only.
    """
    x, y = _pair(output, target, border)
    mse = (x - y).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(DATA_RANGE**2 / mse)


def _gaussian_window(device: torch.device) -> Tensor:
    radius = SSIM_WINDOW // 2
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    window = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return window / window.sum()


def ssim(output: Tensor, target: Tensor, border: int = 0) -> Tensor:
    """Per-image SSIM on luma (Wang et al. 2004) after shaving ``border`` pixels: shape (B,), float64.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, population covariance, mean over the
    'valid' window positions: equal to skimage's ``structural_similarity(a, b, data_range=255,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` on the luma arrays.
    """
    x, y = _pair(output, target, border)
    height, width = x.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its window), "
            f"got {height}x{width} after shaving {border} pixels from each side"
        )
    batch = x.shape[0]
    window = _gaussian_window(x.device)
    # The five local statistics in one separable 'valid' convolution: means, second moments, cross moment.
    stats = torch.cat([x, y, x * x, y * y, x * y])
    stats = F.conv2d(stats, window.view(1, 1, -1, 1))
    stats = F.conv2d(stats, window.view(1, 1, 1, -1))
    mu_x, mu_y, xx, yy, xy = stats.split(batch)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov_xy = xy - mu_x * mu_y
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.mean(dim=(1, 2, 3))
