"""The SR resizer against PIL's bicubic resize, the reference the literature's low-resolution inputs come from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.resize import downsample_bicubic, upsample_bicubic

# torch's antialiased bicubic and PIL's float ("F") mode use the same kernel (a = -0.5, widened by the scale)
# and the same border handling (the kernel renormalised over the pixels inside the image), so they agree to
# float32 rounding everywhere, borders included: observed max |diff| 3e-7 on [-1, 1] for scales 2-8 (up to
# 6e-7 on other sizes), i.e. 1.5e-7 of the range; upsampling 1.8e-7.
TOLERANCE = 2e-6


def pil_resize(images: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Each (b, c) plane through PIL's float mode; size is (H, W)."""
    planes = images.numpy().astype(np.float32)
    return np.stack(
        [
            [
                np.asarray(Image.fromarray(plane, mode="F").resize(size[::-1], Image.Resampling.BICUBIC))
                for plane in image
            ]
            for image in planes
        ]
    )


def smooth_images(height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    image = torch.stack([torch.sin(3 * xx + 2 * yy), torch.cos(4 * yy) * xx, 2 * xx * yy - 1])
    return image.unsqueeze(0)


def images_of(kind: str, height: int = 48, width: int = 72) -> torch.Tensor:
    if kind == "smooth":
        return smooth_images(height, width)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, height, width, generator=generator) * 2 - 1


@pytest.mark.parametrize("kind", ["random", "smooth"])
@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_downsample_matches_pil_bicubic(kind: str, scale: int):
    images = images_of(kind)
    low = downsample_bicubic(images, scale)
    assert low.shape == (*images.shape[:2], images.shape[2] // scale, images.shape[3] // scale)
    assert low.dtype == images.dtype
    reference = pil_resize(images, tuple(low.shape[-2:]))
    assert np.abs(low.numpy() - reference).max() <= TOLERANCE


def test_downsample_is_antialiased():
    # A pixel-wide checkerboard: a plain 4-tap bicubic samples it and keeps a pattern, the antialiased filter
    # averages it to the mean grey.
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2.0 - 1.0
    images = checker.expand(1, 1, 32, 32).contiguous()
    low = downsample_bicubic(images, 4)
    assert low[..., 1:-1, 1:-1].abs().max() < 0.05


@pytest.mark.parametrize("scale", [2, 4])
def test_upsample_is_pil_bicubic_clamped(scale: int):
    images = images_of("random", 12, 16)
    high = upsample_bicubic(images, scale)
    assert high.shape == (2, 3, 12 * scale, 16 * scale)
    reference = np.clip(pil_resize(images, tuple(high.shape[-2:])), -1, 1)
    assert np.abs(high.numpy() - reference).max() <= TOLERANCE
    assert high.min() >= -1 and high.max() <= 1


def test_round_trip_of_a_smooth_image_is_close():
    images = smooth_images(64, 64)
    restored = upsample_bicubic(downsample_bicubic(images, 2), 2)
    assert (restored - images)[..., 4:-4, 4:-4].abs().max() < 0.02


def test_scale_one_is_the_identity_and_half_precision_keeps_its_dtype():
    images = images_of("random", 8, 8)
    assert torch.equal(downsample_bicubic(images, 1), images)
    assert torch.equal(upsample_bicubic(images, 1), images)
    low = downsample_bicubic(images.half(), 2)
    assert low.dtype == torch.float16
    assert (low.float() - downsample_bicubic(images, 2)).abs().max() < 2e-3


@pytest.mark.parametrize("scale", [0, -2, 2.0, True])
def test_bad_scale_is_refused(scale):
    with pytest.raises(ValueError, match="scale must be an integer >= 1"):
        downsample_bicubic(torch.zeros(1, 3, 8, 8), scale)
    with pytest.raises(ValueError, match="scale must be an integer >= 1"):
        upsample_bicubic(torch.zeros(1, 3, 8, 8), scale)


def test_indivisible_size_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"10x8 is not divisible by the scale 4"):
        downsample_bicubic(torch.zeros(1, 3, 10, 8), 4)
    with pytest.raises(ValueError, match=r"shape \(B, C, H, W\)"):
        downsample_bicubic(torch.zeros(3, 8, 8), 2)
    with pytest.raises(ValueError, match="floating-point"):
        downsample_bicubic(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 2)
