"""The pieces that make a model class-conditional (`model.conditional=true`).

G: conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018), in BigGAN's form (Brock et al. 2019): G
holds one class embedding e(y) shared by all its layers, and each BatchNorm's scale 1 + W_s e(y) and shift
W_b e(y) are linear projections of it, so one set of convolutions draws every class. The projection matters for
speed: Adam moves every weight by about the learning rate per step, so per-class scales stored directly (1 at
the start) need thousands of steps to drift apart, while a projection of a 128-dimensional embedding moves about
a hundred times faster (cgan_digits, seed 0, 3000 steps: 99.9 % of samples show the requested class,
against 29.7 % with per-class scales stored directly).
The MLP concatenates a class embedding to z.
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


CLASS_EMBED_DIM = 128  # G's shared class embedding (BigGAN's shared_dim)


def class_embedding(num_classes: int) -> nn.Embedding:
    """G's class embedding, shared by all its conditional BatchNorms; N(0, 1) entries."""
    return nn.Embedding(num_classes, CLASS_EMBED_DIM)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, followed by a scale 1 + W_s e and a shift W_b e of the class embedding e."""

    def __init__(self, num_features: int, embed_dim: int = CLASS_EMBED_DIM) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.scale = nn.Linear(embed_dim, num_features, bias=False)
        self.shift = nn.Linear(embed_dim, num_features, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Classes start about 10 % apart in scale and shift: distinct from the first step, yet near plain BN.
        for linear in (self.scale, self.shift):
            nn.init.normal_(linear.weight, 0.0, 0.1 / linear.in_features**0.5)

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        scale, shift = 1 + self.scale(embedding), self.shift(embedding)
        return self.bn(x) * scale[:, :, None, None] + shift[:, :, None, None]


def run_layers(layers: Iterable[nn.Module], x: Tensor, embedding: Tensor | None) -> Tensor:
    """Apply `layers` in order, handing the class embedding to the conditional ones."""
    for layer in layers:
        x = layer(x, embedding) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
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
