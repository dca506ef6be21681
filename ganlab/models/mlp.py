"""`model=mlp`: fully connected G and D for samples of any shape (2-D points, flattened images).

G ends in tanh for images (data in [-1, 1]) and is linear for vectors such as 2-D mixtures, whose modes lie
outside [-1, 1]. D uses LeakyReLU(0.2) and returns one logit. `widths` lists the hidden layers one by one (the
classic MNIST GAN: G 128-256-512-1024 with BatchNorm and LeakyReLU, D 512-256); otherwise `depth` layers of
`width`.
Conditional (`num_classes`): G reads z concatenated with a learned class embedding of z's size; D adds the
projection term <embed(y), h> on its last hidden features h (ganlab/models/conditional.py).
"""

import math

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError, check_positive
from ganlab.models.conditional import Projection, check_labels, check_num_classes
from ganlab.models.minibatch_std import MinibatchStd

ACTIVATIONS = ("relu", "leaky_relu")


def hidden_widths(width: int, depth: int, widths: list[int] | None, where: str) -> list[int]:
    """The hidden layers' sizes: `widths` as given, or `depth` layers of `width`."""
    if widths is None:
        check_positive(where, width=width, depth=depth)
        return [width] * depth
    if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ConfigError(f"{where}.widths must be a non-empty list of positive sizes, got {widths!r}.")
    return list(widths)


class MLPGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        width: int = 256,
        depth: int = 3,
        num_classes: int | None = None,
        widths: list[int] | None = None,
        norm: str = "none",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_positive("model.generator", z_dim=z_dim)
        sizes = hidden_widths(width, depth, widths, "model.generator")
        if norm not in ("none", "batch"):
            raise ConfigError(f"model.generator.norm for mlp must be 'none' or 'batch', got {norm!r}.")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"model.generator.activation must be relu or leaky_relu, got {activation!r}.")
        self.out_shape = tuple(out_shape)
        self.num_classes = check_num_classes(num_classes, "model.generator")
        if num_classes is not None:
            self.embed = nn.Embedding(num_classes, z_dim)
        layers: list[nn.Module] = []
        d_in = z_dim if num_classes is None else 2 * z_dim
        for i, size in enumerate(sizes):
            layers.append(nn.Linear(d_in, size))
            if norm == "batch" and i > 0:  # not after the first layer, as in the classic MLP GAN and DCGAN
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU(True) if activation == "relu" else nn.LeakyReLU(0.2, True))
            d_in = size
        layers.append(nn.Linear(d_in, math.prod(self.out_shape)))
        if len(self.out_shape) == 3:  # images are scaled to [-1, 1]
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the generator")
        h = z if y is None else torch.cat([z, self.embed(y)], dim=1)
        return self.net(h).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 256,
        depth: int = 3,
        norm: str = "none",
        minibatch_std: int = 0,
        num_classes: int | None = None,
        widths: list[int] | None = None,
    ) -> None:
        super().__init__()
        sizes = hidden_widths(width, depth, widths, "model.discriminator")
        if norm not in ("none", "layer"):
            raise ConfigError(f"model.discriminator.norm for mlp must be 'none' or 'layer', got {norm!r}.")
        self.norm = norm
        layers: list[nn.Module] = [nn.Flatten()]
        d_in = math.prod(in_shape)
        for size in sizes:
            layers += [nn.Linear(d_in, size)]
            if norm == "layer":
                layers.append(nn.LayerNorm(size))
            layers.append(nn.LeakyReLU(0.2, True))
            d_in = size
        if minibatch_std:  # the batch's spread as one more feature before the output layer
            layers.append(MinibatchStd(minibatch_std))
            d_in += 1
        layers.append(nn.Linear(d_in, 1))
        self.net = nn.Sequential(*layers)
        self.num_classes = check_num_classes(num_classes, "model.discriminator")
        if num_classes is not None:
            self.projection = Projection(d_in, num_classes)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the discriminator")
        if y is None:
            return self.net(x).view(-1)
        h = self.net[:-1](x)
        return self.net[-1](h).view(-1) + self.projection(h, y)
