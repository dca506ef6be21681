"""`model=srresnet`: SRGAN's networks (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", fig. 4). Data: `data=super_resolution`, whose condition is the low-resolution
image and whose real sample is the high-resolution one.

G (SRResNet): the low-resolution image (B, C, H/scale, W/scale) -> 9x9 conv + PReLU -> `blocks` residual blocks
(3x3 conv-BN-PReLU-3x3 conv-BN, + identity skip) -> 3x3 conv-BN + a long skip from the first conv's output ->
log2(scale) sub-pixel stages (3x3 conv to 4*width channels, PixelShuffle(2), PReLU; Shi et al. 2016) -> 9x9 conv
to C channels -> tanh. With width 64 and 16 blocks this is the paper's SRResNet (about 1.55M parameters at x4).
G is image-to-image: it takes z (the loop hands every G one) and ignores it, as SRGAN's G has no noise input.

D: the paper's VGG-style classifier: 3x3 conv (width, stride 1) + LeakyReLU(0.2), then conv-norm-LeakyReLU
blocks with channels width, 2w, 2w, 4w, 4w, 8w, 8w and strides 2, 1, 2, 1, 2, 1, 2, then Dense(1024) +
LeakyReLU(0.2) + Dense(1) on the flattened features: one logit per image (no sigmoid: the loss decides what it
means). It judges the high-resolution image alone and ignores the condition, as in the paper.
Depth on small images: the paper's 96x96 crops go through all four stride-2 convs down to 6x6. Here D keeps the
paper's sequence but cuts it after the n-th stride-2 conv, with n the number of halvings (each a ceil) before
the smaller side would drop below 2, at most 4: 8x8 -> n=2 (to 2x2, channels w, 2w, 2w), 16x16 -> 3 (2x2),
32x32 and larger -> 4 (2x2 at 32, 4x4 at 64, 6x6 at 96). The Dense layer reads whatever map that leaves.
Init: PyTorch's defaults; the paper does not specify one.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganlab.errors import ConfigError, check_positive
from ganlab.models.layers import check_condition, conv_norm, image_dims, refuse_classes
from ganlab.normalization import check_norm

SCALES = (2, 4, 8)
MAX_D_STAGES = 4  # the paper's D has four stride-2 convs (96x96 -> 6x6)


def d_stages(side: int) -> int:
    """How many stride-2 convs SRGAN's D uses on images whose smaller side is `side`: halve (3x3 conv, stride 2,
    padding 1: ceil(s / 2)) while the result stays >= 2, at most 4 as in the paper."""
    n, s = 0, side
    while n < MAX_D_STAGES and (s + 1) // 2 >= 2:
        n, s = n + 1, (s + 1) // 2
    return n


class ResidualBlock(nn.Module):
    """SRResNet's block (fig. 4): 3x3 conv-BN-PReLU-3x3 conv-BN plus the identity, with no activation after the
    sum (as the paper's figure, following Gross & Wilber's variant of He et al.)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNetGenerator(nn.Module):
    """SRGAN's G: a low-resolution image -> the image `scale` times larger, `out_shape`, in [-1, 1]."""

    takes_image = True  # conditioned on an image (ganlab/condition.py's Paired data), not on noise alone

    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        scale: int = 4,
        width: int = 64,
        blocks: int = 16,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        refuse_classes(num_classes, "srresnet", "the low-resolution input", "model.generator")
        check_positive("model.generator", z_dim=z_dim, width=width, blocks=blocks)
        channels, height, side = image_dims(tuple(out_shape), "srresnet", "the generator")
        if isinstance(scale, bool) or scale not in SCALES:
            raise ConfigError(
                f"model.generator.scale={scale!r} is not a factor SRResNet upsamples by; choose one of "
                f"{', '.join(map(str, SCALES))} (it follows data.scale)."
            )
        if height % scale or side % scale:
            raise ConfigError(
                f"model.generator.scale={scale} must divide the high-resolution image's height and width, got "
                f"{height}x{side}; choose a data.image_size that is a multiple of {scale}."
            )
        self.z_dim, self.scale = z_dim, scale
        self.out_shape = (channels, height, side)
        self.in_shape = (channels, height // scale, side // scale)
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU(width))
        self.body = nn.Sequential(
            *(ResidualBlock(width) for _ in range(blocks)),
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
        )
        upsample: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):  # sub-pixel convolution, x2 per stage (fig. 4: k3n256s1)
            upsample += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.tail = nn.Sequential(*upsample, nn.Conv2d(width, channels, 9, 1, 4), nn.Tanh())

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """`z` is ignored (image-to-image); `condition` is the low-resolution image (B, C, H/scale, W/scale)."""
        check_condition(
            condition,
            self.in_shape,
            lambda: (
                f"SRResNetGenerator needs the low-resolution image {self.in_shape} as its condition (1/"
                f"{self.scale} of {self.out_shape}; data=super_resolution with data.scale={self.scale})"
            ),
        )
        h = self.head(condition)
        return self.tail(h + self.body(h))  # the long skip around all residual blocks


class SRGANDiscriminator(nn.Module):
    """SRGAN's D: one logit per high-resolution image; the condition is ignored."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 64,
        hidden: int = 1024,
        norm: str = "batch",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        refuse_classes(num_classes, "srresnet", "the low-resolution input", "model.discriminator")
        check_norm(norm, "model.discriminator.norm")
        check_positive("model.discriminator", width=width, hidden=hidden)
        channels, height, side = image_dims(tuple(in_shape), "srresnet", "the discriminator")
        n = d_stages(min(height, side))
        if n == 0:
            raise ConfigError(
                f"SRGANDiscriminator needs images of at least 3x3 to halve once, got {height}x{side}; "
                "use a larger data.image_size."
            )
        # The paper's blocks after the input conv, cut after the n-th stride-2 conv: 2n - 1 blocks.
        plan = [(width, 2), (2 * width, 1), (2 * width, 2), (4 * width, 1), (4 * width, 2), (8 * width, 1)]
        plan = [*plan, (8 * width, 2)][: 2 * n - 1]
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2, True)]
        c_in = width
        for c_out, stride in plan:
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride, 1, bias=norm == "none"),
                conv_norm(norm, c_out),
                nn.LeakyReLU(0.2, True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.norm, self.stages = norm, n
        out_h, out_w = height, side
        for _ in range(n):
            out_h, out_w = (out_h + 1) // 2, (out_w + 1) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * out_h * out_w, hidden),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """(B,) logits; `condition` (the low-resolution image) is ignored: SRGAN's D judges x alone."""
        return self.classifier(self.features(x)).view(-1)
