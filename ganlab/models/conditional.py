"""The pieces that make a model class-conditional (`model.conditional=true`).

G: conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018): the BatchNorm's scale and shift are
looked up per class, so one set of convolutions draws every class. The MLP concatenates a class embedding to z.
D: the projection discriminator (Miyato & Koyama 2018, eq. 3): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>,
the inner product of a class embedding with D's last features, instead of concatenating labels to the input.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError


def check_num_classes(num_classes: int | None, who: str) -> int | None:
    if num_classes is not None and num_classes < 2:
        raise ConfigError(f"{who}: a conditional model needs data with at least 2 classes, got {num_classes}.")
    return num_classes


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, followed by a per-class scale (initialised to 1) and shift (to 0)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.scale = nn.Embedding(num_classes, num_features)
        self.shift = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.bn(x) * self.scale(y)[:, :, None, None] + self.shift(y)[:, :, None, None]


def run_layers(layers: Iterable[nn.Module], x: Tensor, y: Tensor | None) -> Tensor:
    """Apply `layers` in order, handing the labels to the conditional ones."""
    for layer in layers:
        x = layer(x, y) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
    return x


class Projection(nn.Module):
    """The class term of the projection discriminator: <embed(y), features>, one number per sample."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, num_features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, features: Tensor, y: Tensor) -> Tensor:
        return (self.embed(y) * features.flatten(1)).sum(dim=1)


def check_labels(y: Tensor | None, num_classes: int | None, who: str) -> None:
    """A conditional model needs labels and an unconditional one must not silently ignore them."""
    if num_classes is None and y is not None:
        raise ValueError(f"{who} is unconditional but was given labels")
    if num_classes is not None and y is None:
        raise ValueError(f"{who} is conditional (model.conditional=true) and needs class labels")


def balanced_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """0, 1, ..., K-1, 0, 1, ...: every class equally often (up to one), in a fixed order."""
    return torch.arange(n, device=device) % num_classes


def grid_labels(n: int, columns: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """Labels for a picture of `columns` images a row: row r shows class r mod K."""
    return (torch.arange(n, device=device) // columns) % num_classes
