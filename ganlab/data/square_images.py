"""Making a decoded image `size` × `size`, as `data.crop` says, in uint8 (C, H, W) tensors.

The arithmetic is torchvision's v2 transforms' (PILToTensor, Resize with antialiasing, CenterCrop, Pad,
ToDtype + Normalize), bit for bit (tests/test_square_images.py compares them), written here because importing
torchvision costs about two seconds of every image-folder run's start-up (it pulls in torch._dynamo), more
than decoding a few thousand small images takes."""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

PAD_FILL = 0  # data.crop=pad pads with black: 0 in [0, 255], -1 in the model's [-1, 1]


def pil_to_uint8(img: Image.Image) -> Tensor:
    """A PIL image (mode L or RGB) as a uint8 (C, H, W) tensor: a view of an HWC copy, as PILToTensor returns."""
    pixels = torch.from_numpy(np.array(img, copy=True))
    return pixels.view(img.height, img.width, -1).permute(2, 0, 1)


def native_uint8_resize() -> bool:
    """Whether torch resizes uint8 directly (its AVX2/AVX-512 and ARM kernels), as torchvision decides; elsewhere
    the image goes through float32 and is rounded back."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in ("aarch64", "arm64")


def resize(image: Tensor, height: int, width: int) -> Tensor:
    """A uint8 (C, H, W) image resized to (height, width) by antialiased bilinear interpolation."""
    channels, old_height, old_width = image.shape
    if (height, width) == (old_height, old_width):
        return image
    batch = image.reshape(1, channels, old_height, old_width)
    strides = batch.stride()
    if batch.is_contiguous(memory_format=torch.channels_last) and batch.numel() != strides[0]:
        # torchvision's restride: without it interpolate allocates a contiguous output for a channels-last input
        # of batch 1 (pytorch/pytorch#68430), which for uint8 is a slower kernel and an extra copy
        batch = batch.as_strided(batch.shape, (batch.numel(), *strides[1:]))
    return resize_batch(batch, height, width).reshape(channels, height, width)


def resize_batch(batch: Tensor, height: int, width: int) -> Tensor:
    """uint8 (N, C, H, W) images resized to (height, width) by antialiased bilinear interpolation, in uint8 or
    through float32 and rounded back, as torchvision chooses (native_uint8_resize)."""
    native = batch.device.type == "cpu" and native_uint8_resize()
    resized = F.interpolate(
        batch if native else batch.float(), size=[height, width], mode="bilinear", align_corners=False, antialias=True
    )
    return resized if native else resized.round_().to(torch.uint8)


def resize_short_side(image: Tensor, size: int) -> Tensor:
    """The short side resized to `size`, the long side in proportion (rounded down, as torchvision's Resize)."""
    height, width = image.shape[-2:]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
    return resize(image, new_height, new_width)


def center_crop(image: Tensor, size: int) -> Tensor:
    """The middle `size` × `size` of an image at least that large on both sides."""
    height, width = image.shape[-2:]
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return image[..., top : top + size, left : left + size]


def pad_to_square(image: Tensor, size: int) -> Tensor:
    """(C, H, W) uint8 -> (C, size, size): the long side resized to `size` (antialiased, aspect ratio kept), the
    short side padded with PAD_FILL on both sides (an odd pixel of padding goes to the bottom or the right)."""
    height, width = image.shape[-2:]
    longest = max(height, width)
    new_h, new_w = (max(1, int(side * size / longest + 0.5)) for side in (height, width))
    image = resize(image, new_h, new_w)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    return F.pad(image, [left, size - new_w - left, top, size - new_h - top], value=PAD_FILL)


def make_square(img: Image.Image, crop: str, size: int) -> Tensor:
    """A PIL image -> a uint8 (C, size, size) tensor: `center` resizes the short side and crops the middle of the
    long one, `pad` resizes the long side and pads the short one, `resize` stretches to the square."""
    image = pil_to_uint8(img)
    if crop == "pad":
        return pad_to_square(image, size)
    if crop == "resize":
        return resize(image, size, size)
    return center_crop(resize_short_side(image, size), size)


def square_transform(crop: str, size: int) -> Callable[[Image.Image], Tensor]:
    """make_square for one crop and size; a partial, not a closure, so that a dataset holding it pickles for
    worker processes that are spawned rather than forked."""
    return functools.partial(make_square, crop=crop, size=size)
