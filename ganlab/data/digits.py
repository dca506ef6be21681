"""`data=digits`: scikit-learn's bundled 8x8 handwritten digits (1797 images), resized. Needs no download."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganlab.data.base import InMemoryImages
from ganlab.errors import ConfigError


def read_bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits (1797, 8, 8) with pixel values 0..16, and their labels, as `sklearn.datasets.load_digits`
    gives them. Read straight from the CSV scikit-learn ships: importing scikit-learn costs 2-3 s of every
    run's start, more than the rest of a short run."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    locations = spec.submodule_search_locations if spec is not None else None
    csv = Path(next(iter(locations or [""]))) / "datasets" / "data" / "digits.csv.gz"
    if not csv.is_file():  # a scikit-learn that keeps its data elsewhere: ask it
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images, digits.target
    table = np.loadtxt(csv, delimiter=",")  # one row per image: 64 pixels, then the label
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def load_digits_tensor(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as float images in [-1, 1] of shape (1797, 1, S, S), and their labels."""
    if image_size < 8:
        raise ConfigError(f"data.image_size must be at least 8 for digits, got {image_size}.")
    pixels, labels = read_bundled_digits()
    images = torch.from_numpy(pixels).float().div_(16.0).unsqueeze(1)  # pixel values are 0..16
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return images.clamp_(0.0, 1.0).mul_(2.0).sub_(1.0), torch.from_numpy(labels).long()


class DigitsData(InMemoryImages):
    def __init__(self, image_size: int = 32, device: torch.device | str = "cpu") -> None:
        images, labels = load_digits_tensor(image_size)
        super().__init__(images, labels, num_classes=10, device=device)
