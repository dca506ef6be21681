"""`model=unet`: pix2pix's networks (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks", sec. 3 and appendix 6.1). Data: `data=paired_folder`, whose condition is the input image A and
whose real sample is its paired target B, both the same height and width.

G (appendix 6.1.1, U-Net): encoder C64-C128-C256-C512-C512-... (4x4 convs, stride 2; Ck = conv-BatchNorm-
LeakyReLU(0.2)), halving down to a 1x1 bottleneck, so log2(size) levels (8 for 256x256, as in the paper); channels
`width` doubling per level, capped at `max_width`. BatchNorm is not applied to the first layer (the paper's note)
nor to the 1x1 bottleneck (the authors' code: with their batch size of 1, BatchNorm of a 1x1 map would output its
shift whatever the input). Decoder: 4x4 transposed convs, stride 2, conv-BatchNorm-(Dropout)-ReLU, each followed
by concatenation with the encoder features of the same size (the skips of sec. 3.2.1), then a last transposed conv
to the output channels and tanh. Dropout (`dropout`, 0.5 in the paper) in the first three decoder levels.
G's noise is that dropout, not z (sec. 3.1: a noise input z was simply ignored by G): it stays ON at test time, as
the paper applies it, so G draws a different sample on every call even in eval mode. Set dropout=0 for a
deterministic G. z is taken (the loop hands every G one) and ignored.

D (appendix 6.1.2, PatchGAN): C64-C128-C256-C512 with 4x4 convs, strides 2, 2, 2, 1 (no norm on C64), then a
4x4 stride-1 conv to one channel: a logit map (B, h', w'), each logit judging one patch of the (condition, x)
pair concatenated along channels (pix2pix's conditional D, sec. 3.1, eq. 1). That is the 70x70 PatchGAN: `layers` = 3
stride-2 convs give a receptive field of `patch_size(3)` = 70. Other depths (sec. 4.4, table 3): 1 -> 16x16,
2 -> 34x34, 4 -> 142x142. `layers=None` scales with the image: the most stride-2 layers, at most 3 (the paper's
choice: its 70x70 D beat the larger 286x286 one), whose patch fits in the smaller image side, and 1 for images
under 16 pixels (each logit then sees the whole image). `norm` is configurable because penalty losses
(WGAN-GP) need a D without BatchNorm. `in_channels=0` makes D unconditional: it judges x alone and ignores any
condition.
Init (appendix 6.2): N(0, 0.02) weights, BatchNorm scales N(1, 0.02) (ganlab.models.layers.dcgan_init).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.errors import ConfigError, check_non_negative, check_positive
from ganlab.models.layers import check_condition, conv_norm, dcgan_init, image_dims, refuse_classes
from ganlab.normalization import check_norm

SIZES = (8, 16, 32, 64, 128, 256)
DROPOUT_LEVELS = 3  # decoder levels with dropout: CD512-CD1024-CD1024 in appendix 6.1.1
MAX_AUTO_LAYERS = 3  # layers=None never goes past the paper's 70x70 PatchGAN
MIN_D_SIDE = 6  # one stride-2 conv and two 4x4 stride-1 convs leave a 1x1 map at 6x6


def _patch_convs(layers: int) -> list[tuple[int, int]]:
    """(kernel, stride) of the PatchGAN's convs: `layers` stride-2 convs, the stride-1 C512, the output conv."""
    return [(4, 2)] * layers + [(4, 1), (4, 1)]


def patch_size(layers: int) -> int:
    """The receptive field (side in pixels) of one PatchGAN logit with `layers` stride-2 convs: 16, 34, 70, 142 for
    1, 2, 3, 4 (9 * 2**layers - 2). Walks the convs backwards: r <- (r - 1) * stride + kernel."""
    r = 1
    for kernel, stride in reversed(_patch_convs(layers)):
        r = (r - 1) * stride + kernel
    return r


def patch_map_side(side: int, layers: int) -> int:
    """The logit map's side for an input side: each 4x4 stride-2 conv (padding 1) floors a halving, each 4x4
    stride-1 conv (padding 1) takes one pixel off."""
    for kernel, stride in _patch_convs(layers):
        side = (side + 2 - kernel) // stride + 1
    return side


def auto_layers(side: int) -> int:
    """`layers=None`: the most stride-2 convs, at most 3, whose patch fits in `side`; 1 when none does."""
    fitting = [n for n in range(1, MAX_AUTO_LAYERS + 1) if patch_size(n) <= side]
    return max(fitting, default=1)


class AlwaysDropout(nn.Module):
    """Dropout that stays on in eval mode: pix2pix's noise source (sec. 3.1: "at both training and test time")."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=True) if self.p > 0 else x

    def extra_repr(self) -> str:
        return f"p={self.p}, also in eval mode"


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: the input image A (B, in_channels, H, W) -> an image of `out_shape` in [-1, 1]."""

    takes_image = True  # conditioned on an image (ganlab/condition.py's Paired data), not on noise alone

    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        width: int = 64,
        max_width: int = 512,
        dropout: float = 0.5,
        in_channels: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        refuse_classes(num_classes, "unet", "pix2pix's input image A", "model.generator")
        check_positive("model.generator", z_dim=z_dim, width=width, max_width=max_width)
        channels, height, side = image_dims(tuple(out_shape), "unet", "the generator")
        if height != side or side not in SIZES:
            raise ConfigError(
                f"model=unet's generator supports square images whose side is a power of two from 8 to 256 "
                f"({', '.join(map(str, SIZES))}), got {tuple(out_shape)}; set data.image_size to one of them."
            )
        in_channels = channels if in_channels is None else in_channels
        check_positive("model.generator", in_channels=in_channels)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise ConfigError(f"model.generator.dropout must be in [0, 1), got {dropout!r}.")
        self.z_dim, self.in_channels, self.out_shape = z_dim, in_channels, (channels, height, side)
        levels = int(math.log2(side))  # encoder convs down to 1x1
        widths = [min(width * 2**i, max_width) for i in range(levels)]  # encoder level i outputs side / 2**(i+1)

        self.down = nn.ModuleList()
        c_in = in_channels
        for i, c_out in enumerate(widths):
            normed = 0 < i < levels - 1  # neither the first layer nor the 1x1 bottleneck
            self.down.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not normed),
                    nn.BatchNorm2d(c_out) if normed else nn.Identity(),
                    nn.LeakyReLU(0.2, True),
                )
            )
            c_in = c_out

        # Decoder level j goes back up to encoder level `levels - 2 - j`'s size and channels, then concatenates it.
        self.up = nn.ModuleList()
        for j, c_out in enumerate(reversed(widths[:-1])):
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(c_out),
                    AlwaysDropout(dropout if j < DROPOUT_LEVELS else 0.0),
                    nn.ReLU(True),
                )
            )
            c_in = 2 * c_out  # after the skip concatenation
        self.out = nn.Sequential(nn.ConvTranspose2d(c_in, channels, 4, 2, 1), nn.Tanh())
        self.apply(dcgan_init)

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """`z` is ignored (the noise is the dropout); `condition` is the input image A (B, in_channels, H, W)."""
        expected = (self.in_channels, *self.out_shape[1:])
        check_condition(
            condition,
            expected,
            lambda: (
                f"UNetGenerator needs the input image {expected} as its condition (data=paired_folder; "
                f"model.generator.in_channels={self.in_channels})"
            ),
        )
        skips: list[Tensor] = []
        h = condition
        for down in self.down:
            h = down(h)
            skips.append(h)
        skips.pop()  # the bottleneck itself is the decoder's input, not a skip
        for up in self.up:
            h = torch.cat([up(h), skips.pop()], dim=1)
        return self.out(h)


class PatchGANDiscriminator(nn.Module):
    """pix2pix's conditional PatchGAN: a logit map (B, h', w') over (condition, x) pairs, one logit per patch of
    `patch_size(layers)` pixels."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 64,
        max_width: int = 512,
        layers: int | None = None,
        norm: str = "batch",
        in_channels: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        refuse_classes(num_classes, "unet", "pix2pix's input image A", "model.discriminator")
        check_norm(norm, "model.discriminator.norm")
        check_positive("model.discriminator", width=width, max_width=max_width)
        channels, height, side = image_dims(tuple(in_shape), "unet", "the discriminator")
        if min(height, side) < MIN_D_SIDE:
            raise ConfigError(
                f"PatchGANDiscriminator needs images of at least {MIN_D_SIDE}x{MIN_D_SIDE}, got {height}x{side}; "
                "use a larger data.image_size."
            )
        in_channels = channels if in_channels is None else in_channels
        check_non_negative("model.discriminator", in_channels=in_channels)
        if layers is None:
            layers = auto_layers(min(height, side))
        check_positive("model.discriminator", layers=layers)
        if patch_map_side(min(height, side), layers) < 1:
            raise ConfigError(
                f"model.discriminator.layers={layers} is too deep for {height}x{side} images (no logit map left); "
                f"use at most {max(n for n in range(1, layers) if patch_map_side(min(height, side), n) >= 1)} "
                "or layers=null to pick it from the image size."
            )
        self.in_channels, self.layers, self.norm = in_channels, layers, norm
        self.in_shape = (channels, height, side)
        self.patch_size = patch_size(layers)
        bias = norm == "none"
        c_in = channels + in_channels
        net: list[nn.Module] = []
        for i, (kernel, stride) in enumerate(_patch_convs(layers)[:-1]):
            c_out = min(width * 2**i, max_width)
            net += [
                nn.Conv2d(c_in, c_out, kernel, stride, 1, bias=bias or i == 0),
                conv_norm(norm, c_out) if i > 0 else nn.Identity(),  # C64 has no norm (appendix 6.1.2)
                nn.LeakyReLU(0.2, True),
            ]
            c_in = c_out
        net.append(nn.Conv2d(c_in, 1, 4, 1, 1))
        self.net = nn.Sequential(*net)
        self.apply(dcgan_init)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """(B, h', w') logits for x given the condition (pix2pix's input image A); the condition is ignored when
        in_channels=0."""
        if self.in_channels:
            expected = (self.in_channels, *x.shape[2:])
            check_condition(
                condition,
                expected,
                lambda: (
                    f"PatchGANDiscriminator judges (condition, x) pairs and needs a condition {expected} "
                    f"(model.discriminator.in_channels={self.in_channels}; 0 judges x alone)"
                ),
            )
            x = torch.cat([condition, x], dim=1)  # A first, as the authors' code
        return self.net(x).squeeze(1)
