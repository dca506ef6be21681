"""ganlab/data/square_images.py makes images square with torchvision's v2 arithmetic, bit for bit, without
importing torchvision (about two seconds of every image-folder run's start-up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ganlab.data import square_images
from ganlab.data.base import to_model_range
from ganlab.data.square_images import make_square


def torchvision_square(img: Image.Image, crop: str, size: int) -> torch.Tensor:
    """The v2 pipelines image_folder used before square_images.py existed."""
    image = v2.PILToTensor()(img)
    if crop == "resize":
        return v2.Resize((size, size), antialias=True)(image)
    if crop == "center":
        return v2.CenterCrop(size)(v2.Resize(size, antialias=True)(image))
    height, width = image.shape[-2:]
    new_h, new_w = (max(1, int(side * size / max(height, width) + 0.5)) for side in (height, width))
    if (new_h, new_w) != (height, width):
        image = v2.functional.resize(image, [new_h, new_w], antialias=True)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    return v2.functional.pad(image, [left, top, size - new_w - left, size - new_h - top], fill=0)


def random_image(height: int, width: int, mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (height, width) if mode == "L" else (height, width, 3)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


SHAPES = [(64, 64), (100, 64), (64, 100), (37, 53), (8, 8), (5, 200), (200, 5), (33, 16)]


@pytest.mark.parametrize("crop", ["center", "pad", "resize"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("native", [True, False], ids=["uint8-kernel", "through-float"])
def test_squares_match_torchvision_bit_for_bit(crop: str, mode: str, native: bool, monkeypatch) -> None:
    # torchvision resizes uint8 directly on AVX2/AVX-512/ARM CPUs and through float32 elsewhere: both paths here
    # against torchvision making the same choice
    monkeypatch.setattr(square_images, "native_uint8_resize", lambda: native)
    monkeypatch.setattr(v2.functional._geometry, "_do_native_uint8_resize_on_cpu", lambda interpolation: native)
    for i, (height, width) in enumerate(SHAPES):
        img = random_image(height, width, mode, seed=i)
        for size in (16, 32, 64):
            ours, theirs = make_square(img, crop, size), torchvision_square(img, crop, size)
            assert ours.shape == (3 if mode == "RGB" else 1, size, size) and ours.dtype == torch.uint8
            assert torch.equal(ours, theirs), (crop, mode, height, width, size)


def test_model_range_matches_todtype_and_normalize() -> None:
    image = torch.arange(256, dtype=torch.uint8).view(1, 16, 16).repeat(3, 1, 1)
    reference = v2.Normalize([0.5] * 3, [0.5] * 3)(v2.ToDtype(torch.float32, scale=True)(image))
    ours = to_model_range(image)
    assert torch.equal(ours, reference)
    assert ours[0, 0, 0] == -1.0 and ours[0, -1, -1] == 1.0


def test_an_image_folder_run_does_not_import_torchvision(tmp_path: Path) -> None:
    for i in range(4):
        random_image(40, 30, "RGB", seed=i).save(tmp_path / f"{i}.png")
    code = (
        "import sys\n"
        "from ganlab.data.image_folder import ImageFolderData\n"
        f"cached = ImageFolderData({str(tmp_path)!r}, image_size=16, num_workers=0, cache=True)\n"
        f"streamed = ImageFolderData({str(tmp_path)!r}, image_size=16, num_workers=0, cache=False)\n"
        "assert cached.sample(4).shape == streamed.sample(4).shape == (4, 3, 16, 16)\n"
        "streamed.close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
