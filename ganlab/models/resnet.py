"""`model=resnet`: the residual GAN architectures of WGAN-GP (Gulrajani et al. 2017, CIFAR-10 ResNet) and
SNGAN (Miyato et al. 2018, Table 4; the 64x64 networks of Miyato & Koyama 2018), with optional SAGAN
self-attention (Zhang et al. 2019) and optional class conditioning.

G: Linear z -> 4x4 feature map, then up-blocks (BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, shortcut
upsample + conv1x1) doubling the resolution each, then BN-ReLU-conv3x3-tanh.
D: an "optimized" first block (conv3x3-ReLU-conv3x3-avgpool, shortcut avgpool-conv1x1), then pre-activation
blocks (ReLU-conv3x3-ReLU-conv3x3, avgpool if downsampling; shortcut conv1x1 + avgpool, or the identity),
then ReLU, global SUM pooling over space and a Linear to one logit.

Channels (w = `width`; it is the channel count at 32x32 in G and at 16x16 in D for both image sizes):
  32x32  G: 4x4..32x32 all w (the WGAN-GP CIFAR generator; SNGAN's CIFAR G is the same with w = 256).
         D: 16x16 w, then 8x8 w, w, w (three blocks end at 8x8, as in both papers).
  64x64  G: 8w at 4x4, halving per up-block: 4w at 8, 2w at 16, w at 32, w/2 at 64.
         D: w/2 at 32, doubling as the resolution halves: w at 16, 2w at 8, 4w at 4, 8w at 2.
         At w = 128 these are exactly SNGAN's 64x64 networks (sngan_projection resnet_64 with ch = 64).
`attention=R` puts a self-attention block after the first block whose output is R x R (in G and in D).
`norm` (batch | layer | none) goes in front of each ReLU of D's residual branches: none in both papers'
CIFAR models, layer for WGAN-GP's penalty if one wants a normalised critic.
Conditional (`num_classes`): every BatchNorm of G's up-blocks becomes class-conditional (the output BN stays
plain, as in SNGAN); D adds the projection term <embed(y), h> on its pooled features h.
Init as SNGAN's chainer code: xavier-uniform with gain sqrt(2) in residual branches (they feed a ReLU) and 1
for shortcuts, the input Linear and the output layers; zero biases.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganlab.errors import ConfigError, check_positive
from ganlab.models.attention import SelfAttention
from ganlab.models.conditional import (
    ConditionalBatchNorm2d,
    Projection,
    check_labels,
    check_num_classes,
    class_embedding,
    run_layers,
)
from ganlab.models.layers import check_image_shape, conv_norm
from ganlab.models.minibatch_std import MinibatchStd
from ganlab.normalization import check_norm

SIZES = (32, 64)


def _check_image_shape(shape: tuple[int, ...], who: str) -> tuple[int, int]:
    return check_image_shape(shape, "resnet", "square 32x32 and 64x64 images", SIZES, who)


def _attention_index(attention: int | None, resolutions: list[int], where: str) -> int | None:
    """The index of the first block whose output is `attention` x `attention`, or None for no attention."""
    if attention is None:
        return None
    valid = sorted(set(resolutions))
    if isinstance(attention, bool) or not isinstance(attention, int) or attention not in valid:
        raise ConfigError(
            f"{where}={attention!r} is not a resolution this network has; choose one of "
            f"{', '.join(map(str, valid))} (the side of a block's output) or null for no self-attention."
        )
    return resolutions.index(attention)


def _conv(c_in: int, c_out: int, kernel: int, gain: float) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return conv


def _linear(c_in: int, c_out: int) -> nn.Linear:
    linear = nn.Linear(c_in, c_out)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


RELU_GAIN = math.sqrt(2)  # residual convs feed a ReLU: He-like scale keeps the variance through it


class UpBlock(nn.Module):
    """G's residual block: doubles the resolution. BatchNorms are conditional when `num_classes` is set."""

    def __init__(self, c_in: int, c_out: int, conditional: bool = False) -> None:
        super().__init__()

        def bn(channels: int) -> nn.Module:
            return ConditionalBatchNorm2d(channels) if conditional else nn.BatchNorm2d(channels)

        self.residual = nn.Sequential(
            bn(c_in),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(c_in, c_out, 3, RELU_GAIN),
            bn(c_out),
            nn.ReLU(),
            _conv(c_out, c_out, 3, RELU_GAIN),
        )
        # conv1x1 then nearest upsampling equals SNGAN's upsample then conv1x1, at a quarter of the cost.
        self.shortcut = nn.Sequential(_conv(c_in, c_out, 1, 1.0), nn.Upsample(scale_factor=2, mode="nearest"))

    def forward(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        return run_layers(self.residual, x, embedding) + self.shortcut(x)


class DownBlock(nn.Module):
    """D's residual block. `optimized` is SNGAN's first block: it starts from the image with a conv, because a
    ReLU of the pixels would throw half of them away. Hidden channels are `c_in`, as in both papers' code."""

    def __init__(self, c_in: int, c_out: int, norm: str, downsample: bool, optimized: bool = False) -> None:
        super().__init__()
        pool: list[nn.Module] = [nn.AvgPool2d(2)] if downsample else []
        if optimized:
            self.residual = nn.Sequential(
                _conv(c_in, c_out, 3, RELU_GAIN),
                conv_norm(norm, c_out),
                nn.ReLU(),
                _conv(c_out, c_out, 3, RELU_GAIN),
                *pool,
            )
            # avgpool then conv1x1 equals conv1x1 then avgpool (both linear), at a quarter of the cost.
            self.shortcut = nn.Sequential(*pool, _conv(c_in, c_out, 1, 1.0))
            return
        self.residual = nn.Sequential(
            conv_norm(norm, c_in),
            nn.ReLU(),  # not in place: with norm=none it would overwrite x, which the shortcut still reads
            _conv(c_in, c_in, 3, RELU_GAIN),
            conv_norm(norm, c_in),
            nn.ReLU(),
            _conv(c_in, c_out, 3, RELU_GAIN),
            *pool,
        )
        learnable = c_in != c_out or downsample  # otherwise the identity, as in SNGAN and WGAN-GP
        self.shortcut = nn.Sequential(_conv(c_in, c_out, 1, 1.0), *pool) if learnable else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


def _generator_widths(size: int, width: int) -> list[int]:
    """G's channels at 4x4, 8x8, ..., size x size."""
    if size == 32:
        return [width] * 4
    return [8 * width, 4 * width, 2 * width, width, max(width // 2, 1)]


def _discriminator_blocks(size: int, width: int) -> list[tuple[int, bool]]:
    """(output channels, downsample) of D's blocks after the input."""
    if size == 32:
        return [(width, True), (width, True), (width, False), (width, False)]
    return [(max(width // 2, 1), True), (width, True), (2 * width, True), (4 * width, True), (8 * width, True)]


class ResNetGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        width: int = 128,
        attention: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_positive("model.generator", z_dim=z_dim, width=width)
        channels, size = _check_image_shape(tuple(out_shape), "generator")
        self.num_classes = check_num_classes(num_classes, "model.generator")
        self.z_dim = z_dim
        widths = _generator_widths(size, width)
        self.bottom = widths[0]
        self.linear = _linear(z_dim, widths[0] * 4 * 4)
        resolutions = [8 * 2**i for i in range(len(widths) - 1)]  # of each up-block's output
        at = _attention_index(attention, resolutions, "model.generator.attention")
        blocks: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:], strict=False)):
            blocks.append(UpBlock(c_in, c_out, conditional=num_classes is not None))
            if i == at:
                blocks.append(SelfAttention(c_out))
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), _conv(widths[-1], channels, 3, 1.0), nn.Tanh())
        if num_classes is not None:
            self.class_embed = class_embedding(num_classes)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the generator")
        h = self.linear(z.flatten(1)).view(z.shape[0], self.bottom, 4, 4)
        embedding = None if y is None else self.class_embed(y)
        for block in self.blocks:
            h = block(h, embedding) if isinstance(block, UpBlock) else block(h)
        return self.out(h)


class ResNetDiscriminator(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 128,
        attention: int | None = None,
        norm: str = "none",
        minibatch_std: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        check_norm(norm, "model.discriminator.norm")
        check_positive("model.discriminator", width=width)
        channels, size = _check_image_shape(tuple(in_shape), "discriminator")
        self.num_classes = check_num_classes(num_classes, "model.discriminator")
        self.norm = norm
        plan = _discriminator_blocks(size, width)
        resolutions, side = [], size
        for _, downsample in plan:
            side //= 2 if downsample else 1
            resolutions.append(side)
        at = _attention_index(attention, resolutions, "model.discriminator.attention")
        blocks: list[nn.Module] = []
        c_in = channels
        for i, (c_out, downsample) in enumerate(plan):
            blocks.append(DownBlock(c_in, c_out, norm, downsample, optimized=i == 0))
            if i == at:
                blocks.append(SelfAttention(c_out))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        # The batch's spread as one more channel before pooling (ProGAN); the layers after it read c_in + 1.
        self.minibatch_std = MinibatchStd(minibatch_std) if minibatch_std else None
        features = c_in + (1 if minibatch_std else 0)
        self.linear = _linear(features, 1)
        if num_classes is not None:
            self.projection = Projection(features, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The pooled features h that the output layer (and the projection) read: (B, features)."""
        h = self.blocks(x).relu()
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        return h.sum(dim=(2, 3))  # sum, not mean, as SNGAN: the logit's scale grows with the area

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the discriminator")
        h = self.features(x)
        out = self.linear(h).view(-1)
        if y is not None:
            out = out + self.projection(h, y)
        return out
