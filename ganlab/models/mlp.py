"""`model=mlp`: fully connected G and D for samples of any shape (2-D points, flattened images).

G ends in tanh for images (data in [-1, 1]) and is linear for vectors such as 2-D mixtures, whose modes lie
outside [-1, 1]. D uses LeakyReLU(0.2) and returns one logit.
"""

import math

from torch import Tensor, nn

from ganlab.errors import ConfigError, check_positive
from ganlab.models.minibatch_std import MinibatchStd


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int = 256, depth: int = 3) -> None:
        super().__init__()
        check_positive("model.generator", z_dim=z_dim, width=width, depth=depth)
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        d_in = z_dim
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), nn.ReLU(True)]
            d_in = width
        layers.append(nn.Linear(d_in, math.prod(self.out_shape)))
        if len(self.out_shape) == 3:  # images are scaled to [-1, 1]
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    def __init__(
        self, in_shape: tuple[int, ...], width: int = 256, depth: int = 3, norm: str = "none", minibatch_std: int = 0
    ) -> None:
        super().__init__()
        check_positive("model.discriminator", width=width, depth=depth)
        if norm not in ("none", "layer"):
            raise ConfigError(f"model.discriminator.norm for mlp must be 'none' or 'layer', got {norm!r}.")
        self.norm = norm
        layers: list[nn.Module] = [nn.Flatten()]
        d_in = math.prod(in_shape)
        for _ in range(depth):
            layers += [nn.Linear(d_in, width)]
            if norm == "layer":
                layers.append(nn.LayerNorm(width))
            layers.append(nn.LeakyReLU(0.2, True))
            d_in = width
        if minibatch_std:  # the batch's spread as one more feature before the output layer
            layers.append(MinibatchStd(minibatch_std))
            d_in += 1
        layers.append(nn.Linear(d_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(-1)
