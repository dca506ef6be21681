"""PSNR and SSIM against scikit-image's implementations and values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganlab.metrics.restoration import luma, psnr, shave, ssim

# Both sides are float64 and do the same arithmetic in a different order: observed |diff| ~1e-15 for SSIM and
# ~1e-14 dB for PSNR.
TOLERANCE = 1e-6


def pairs(channels: int, height: int = 40, width: int = 48, batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets with structure and outputs that are noisy, blurred versions of them: SSIM well inside (0, 1)."""
    generator = torch.Generator().manual_seed(channels)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    phases = torch.rand(batch, channels, 1, 1, generator=generator) * 6
    target = (
        torch.sin(8 * xx + 5 * yy + phases) * 0.6
        + torch.rand(batch, channels, height, width, generator=generator) * 0.4
        - 0.2
    )
    blurred = torch.nn.functional.avg_pool2d(target, 3, stride=1, padding=1, count_include_pad=False)
    output = (blurred + torch.randn(batch, channels, height, width, generator=generator) * 0.1).clamp(-1, 1)
    return output, target


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def test_luma_is_matlab_rgb2ycbcr_y():
    black, white = -torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    assert torch.allclose(luma(black), torch.full((1, 1, 2, 2), 16.0, dtype=torch.float64))
    assert torch.allclose(luma(white), torch.full((1, 1, 2, 2), 235.0, dtype=torch.float64))
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    assert luma(red).item() == pytest.approx(16 + 65.481)
    grey = torch.tensor([[[[-1.0, 0.0, 1.0]]]])
    assert luma(grey).dtype == torch.float64
    assert luma(grey).flatten().tolist() == pytest.approx([0.0, 127.5, 255.0])
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\) channels, got 4"):
        luma(torch.zeros(1, 4, 2, 2))


def test_shave_crops_each_side():
    images = torch.arange(2 * 36.0).view(2, 1, 6, 6)
    assert torch.equal(shave(images, 0), images)
    assert torch.equal(shave(images, 2), images[..., 2:4, 2:4])
    with pytest.raises(ValueError, match="cannot shave 3 pixels"):
        shave(images, 3)
    with pytest.raises(ValueError, match="border must be an integer >= 0"):
        shave(images, -1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("border", [0, 4])
def test_psnr_matches_skimage_and_the_mse_formula(channels: int, border: int):
    output, target = pairs(channels)
    values = psnr(output, target, border=border)
    assert values.shape == (3,) and values.dtype == torch.float64
    out_y, tgt_y = shave(luma(output), border).numpy(), shave(luma(target), border).numpy()
    for i in range(3):
        reference = peak_signal_noise_ratio(tgt_y[i, 0], out_y[i, 0], data_range=255)
        by_hand = 10 * math.log10(255**2 / np.mean((out_y[i, 0] - tgt_y[i, 0]) ** 2))
        assert values[i].item() == pytest.approx(reference, abs=TOLERANCE)
        assert values[i].item() == pytest.approx(by_hand, abs=TOLERANCE)


def test_psnr_of_a_known_mse_and_of_identical_images():
    target = -torch.ones(2, 1, 16, 16, dtype=torch.float64)  # float64: float32 inputs would limit to ~1e-5 dB
    output = target + 2 * 5.1 / 255  # every grey level 5.1 higher: MSE = 5.1^2, PSNR = 20 log10(255 / 5.1)
    assert psnr(output, target).tolist() == pytest.approx([20 * math.log10(50)] * 2, abs=1e-9)
    assert torch.isinf(psnr(target, target)).all()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("border", [0, 4])
def test_ssim_matches_skimage_on_luma(channels: int, border: int):
    output, target = pairs(channels)
    values = ssim(output, target, border=border)
    assert values.shape == (3,) and values.dtype == torch.float64
    out_y, tgt_y = shave(luma(output), border).numpy(), shave(luma(target), border).numpy()
    for i in range(3):
        reference = skimage_ssim(out_y[i, 0], tgt_y[i, 0])
        assert 0.1 < reference < 0.95  # a non-trivial pair, so the comparison means something
        assert values[i].item() == pytest.approx(reference, abs=TOLERANCE)


def test_ssim_of_identical_images_is_one_and_is_symmetric():
    output, target = pairs(3, batch=2)
    assert ssim(target, target).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    assert torch.allclose(ssim(output, target), ssim(target, output))


def test_ssim_refuses_images_smaller_than_its_window():
    output, target = pairs(1, height=11, width=11, batch=1)
    assert ssim(output, target).shape == (1,)
    with pytest.raises(ValueError, match="at least 11x11 pixels.*got 9x9 after shaving 1 pixels"):
        ssim(output, target, border=1)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 8))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
