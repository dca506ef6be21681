"""`data=digits`: scikit-learn's bundled 8x8 handwritten digits (1797 images), resized. Needs no download."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganlab.data.base import InMemoryImages
from ganlab.errors import ConfigError


def load_digits_tensor(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as float images in [-1, 1] of shape (1797, 1, S, S), and their labels."""
    from sklearn.datasets import load_digits

    if image_size < 8:
        raise ConfigError(f"data.image_size must be at least 8 for digits, got {image_size}.")
    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div_(16.0).unsqueeze(1)  # pixel values are 0..16
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return images.clamp_(0.0, 1.0).mul_(2.0).sub_(1.0), torch.from_numpy(digits.target).long()


class DigitsData(InMemoryImages):
    def __init__(self, image_size: int = 32, device: torch.device | str = "cpu") -> None:
        images, labels = load_digits_tensor(image_size)
        super().__init__(images, labels, num_classes=10, device=device)
