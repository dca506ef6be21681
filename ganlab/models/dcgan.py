"""`model=dcgan`: the deep convolutional GAN of Radford et al. (2015).

G: z -> 4x4 (transposed conv) -> doubling with stride-2 transposed convs -> tanh at the data's size.
D: the mirror image with stride-2 convs, LeakyReLU(0.2), and a 4x4 conv down to one logit.
The depth follows from the image size; `extra_layers` adds 3x3 stride-1 layers at the finest hidden
resolution of each (the `n_extra_layers` of the WGAN authors' DCGAN).
BatchNorm everywhere except G's output layer and D's input layer; D's normalisation is configurable because
some losses (WGAN-GP) need samples that do not interact.
Conditional (`num_classes`): G's BatchNorms become class-conditional; D adds the projection term
<embed(y), h> on its last 4x4 features h (Miyato & Koyama 2018; ganlab/models/conditional.py).
"""

import math

from torch import Tensor, nn

from ganlab.errors import check_non_negative, check_positive
from ganlab.models.conditional import (
    ConditionalBatchNorm2d,
    Projection,
    check_labels,
    check_num_classes,
    class_embedding,
    run_layers,
)
from ganlab.models.layers import check_image_shape, conv_norm, dcgan_init
from ganlab.models.minibatch_std import MinibatchStd
from ganlab.normalization import check_norm

SIZES = (16, 32, 64, 128)


def _check_image_shape(shape: tuple[int, ...], who: str) -> tuple[int, int]:
    sizes = f"square images whose side is a power of two from 16 to 128 ({', '.join(map(str, SIZES))})"
    return check_image_shape(shape, "dcgan", sizes, SIZES, who)


def _widths(size: int, width: int, max_width: int) -> list[int]:
    """Channels at resolutions 4, 8, ..., size/2: `width` at size/2, doubling per halving, capped."""
    n = int(math.log2(size)) - 2  # number of resolutions from 4 up to size/2
    return [min(width * 2 ** (n - 1 - i), max_width) for i in range(n)]


class DCGANGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        width: int = 64,
        max_width: int = 512,
        extra_layers: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_positive("model.generator", z_dim=z_dim, width=width, max_width=max_width)
        check_non_negative("model.generator", extra_layers=extra_layers)
        channels, size = _check_image_shape(tuple(out_shape), "generator")
        self.z_dim = z_dim
        self.num_classes = check_num_classes(num_classes, "model.generator")

        def norm(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if num_classes is None else ConditionalBatchNorm2d(c)

        widths = _widths(size, width, max_width)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
            norm(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), norm(c_out), nn.ReLU(True)]
        for _ in range(extra_layers):  # deeper without upsampling, as in the WGAN reference code
            layers += [nn.Conv2d(widths[-1], widths[-1], 3, 1, 1, bias=False), norm(widths[-1]), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)
        if num_classes is not None:  # after dcgan_init: the embedding keeps its N(0, 1) entries
            self.class_embed = class_embedding(num_classes)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the generator")
        embedding = None if y is None else self.class_embed(y)
        return run_layers(self.net, z.view(z.shape[0], self.z_dim, 1, 1), embedding)


class DCGANDiscriminator(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 64,
        max_width: int = 512,
        norm: str = "batch",
        extra_layers: int = 0,
        minibatch_std: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_norm(norm, "model.discriminator.norm")
        check_positive("model.discriminator", width=width, max_width=max_width)
        check_non_negative("model.discriminator", extra_layers=extra_layers)
        channels, size = _check_image_shape(tuple(in_shape), "discriminator")
        self.norm = norm
        widths = _widths(size, width, max_width)[::-1]  # size/2 down to 4
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(extra_layers):
            layers += [
                nn.Conv2d(widths[0], widths[0], 3, 1, 1, bias=norm == "none"),
                conv_norm(norm, widths[0]),
                nn.LeakyReLU(0.2, True),
            ]
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"),
                conv_norm(norm, c_out),
                nn.LeakyReLU(0.2, True),
            ]
        if minibatch_std:  # the batch's spread as one more channel at 4x4, as in ProGAN
            layers.append(MinibatchStd(minibatch_std))
        last = widths[-1] + (1 if minibatch_std else 0)
        layers.append(nn.Conv2d(last, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.num_classes = check_num_classes(num_classes, "model.discriminator")
        if num_classes is not None:
            self.projection = Projection(last * 4 * 4, num_classes)
        self.apply(dcgan_init)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the discriminator")
        if y is None:
            return self.net(x).view(-1)
        h = self.net[:-1](x)  # (B, C, 4, 4): the features the output layer reads
        return self.net[-1](h).view(-1) + self.projection(h, y)
