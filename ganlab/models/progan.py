"""`model=progan`: progressive growing of GANs (Karras et al. 2018, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation").

G and D are built whole, for the data's resolution, but train from 4x4 up: phase k uses the first k+1
resolutions (4, 8, ..., 4 * 2^k). When a phase begins, its new block fades in: G's image is
lerp(upsample(toRGB_old(h)), toRGB_new(block(h)), alpha) and D's features lerp(fromRGB_old(downsample(x)),
block(fromRGB_new(x)), alpha), with alpha rising from 0 to 1 (sec. 3, Fig. 2). The schedule of phases in images
shown is trainer.grow.* (ganlab/growth.py), which sets `phase`, `fading` and `alpha` on both networks (and G's
EMA) before each step. The three are buffers, so they are part of every checkpoint and a generator loaded from
one draws at the resolution it was saved at.

What the rest of ganlab sees does not change with the phase: G's output is nearest-upsampled to the data's size
(the sample grids show the final size), and D takes images at the data's size and average-pools them to the
phase's resolution on the device. During a fade the real batch is blended as the paper blends it (appendix A):
lerp(upsample(downsample(x)), x, alpha) at the phase's resolution (`fade_reals`, which ganlab/step.py applies
to the reals of each D update through ganlab/growth.py).

Layers (Table 2): pixel norm after every conv of G, equalized learning rate everywhere (He's gain sqrt(2) in the
weight scale, 1 for toRGB and D's last layer, sqrt(2)/4 for G's first dense layer, as the authors' code),
LeakyReLU(0.2), minibatch standard deviation before D's last block. Widths follow the paper's schedule:
min(channel_base / resolution, channel_max) with channel_base 16384 and channel_max 512.
Class-conditional (model.conditional=true): G gets the one-hot label concatenated to z before the pixel norm,
as the authors' code; D adds the projection term on its last features (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.errors import check_positive
from ganlab.models.conditional import Projection, check_labels, check_num_classes
from ganlab.models.equalized import SQRT2, EqualizedConv2d, EqualizedLinear, PixelNorm, channel_widths
from ganlab.models.layers import check_image_shape
from ganlab.models.minibatch_std import MinibatchStd

SIZES = tuple(2**k for k in range(3, 11))  # 8 .. 1024


def _check_image_shape(shape: tuple[int, ...], who: str) -> tuple[int, int]:
    sizes = "square images whose side is a power of two from 8 to 1024"
    return check_image_shape(shape, "progan", sizes, SIZES, who)


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def fade(old: Tensor, new: Tensor, alpha: Tensor) -> Tensor:
    """lerp(old, new, alpha): exactly `old` at alpha = 0 and exactly `new` at alpha = 1. The two may differ in
    dtype: under CUDA's autocast the nearest upsampling of `old` runs in float32 while the convolution that made
    `new` gives bfloat16 (the CPU's autocast keeps both in bfloat16); lerp wants one dtype, the wider."""
    dtype = torch.promote_types(old.dtype, new.dtype)
    return torch.lerp(old.to(dtype), new.to(dtype), alpha.to(dtype))


def upsample(x: Tensor, factor: int = 2) -> Tensor:
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downsample(x: Tensor, factor: int = 2) -> Tensor:
    return x if factor == 1 else F.avg_pool2d(x, factor)


class Growing(nn.Module):
    """The growth state of a progressive network: the phase (index of the highest active resolution), whether
    its block is fading in, and alpha. Buffers, so that checkpoints hold them; the phase and fading are mirrored
    on the host, because they choose which layers run (a branch on a tensor would wait for the device)."""

    resolutions: list[int]

    def _init_growth(self) -> None:
        last = len(self.resolutions) - 1
        self.register_buffer("phase", torch.tensor(last))  # a network built alone is the whole network
        self.register_buffer("fading", torch.tensor(False))
        self.register_buffer("alpha", torch.tensor(1.0))
        self._phase, self._fading = last, False
        self.register_load_state_dict_post_hook(_read_growth)

    @property
    def num_phases(self) -> int:
        return len(self.resolutions)

    @property
    def resolution(self) -> int:
        """The resolution the network works at now."""
        return self.resolutions[self._phase]

    def set_growth(self, phase: int, fading: bool, alpha: float) -> None:
        """Host side, before a step: the phase, whether its new block is fading in, and alpha in [0, 1]."""
        if not 0 <= phase < self.num_phases:
            raise ValueError(f"phase {phase} outside 0..{self.num_phases - 1}")
        if fading and phase == 0:
            raise ValueError("the 4x4 phase has no block to fade in")
        if (phase, fading) != (self._phase, self._fading):
            self.phase.fill_(phase)
            self.fading.fill_(fading)
            self._phase, self._fading = phase, fading
        self.alpha.fill_(alpha)  # a fill, no read back: captured CUDA graphs read it at every replay


def _read_growth(module: nn.Module, incompatible: Any) -> None:
    """After load_state_dict: the host mirrors of the loaded phase (read once, at load)."""
    module._phase, module._fading = int(module.phase), bool(module.fading)


def _widths(size: int, channel_base: int, channel_max: int) -> tuple[list[int], dict[int, int]]:
    resolutions = [2**k for k in range(2, int(math.log2(size)) + 1)]
    return resolutions, channel_widths(resolutions, channel_base, channel_max)


class GeneratorBlock(nn.Module):
    """Nearest upsampling, then two 3x3 convs, each followed by LeakyReLU and pixel norm."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_out, 3, gain=SQRT2)
        self.conv1 = EqualizedConv2d(c_out, c_out, 3, gain=SQRT2)
        self.norm = PixelNorm()

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(lrelu(self.conv0(upsample(x))))
        return self.norm(lrelu(self.conv1(x)))


class ProGANGenerator(Growing):
    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        num_classes: int | None = None,
        channel_base: int = 16384,
        channel_max: int = 512,
    ) -> None:
        super().__init__()
        check_positive("model.generator", z_dim=z_dim, channel_base=channel_base, channel_max=channel_max)
        channels, size = _check_image_shape(tuple(out_shape), "generator")
        self.z_dim, self.size = z_dim, size
        self.num_classes = check_num_classes(num_classes, "model.generator")
        self.resolutions, widths = _widths(size, channel_base, channel_max)
        c4 = widths[4]
        self.norm = PixelNorm()
        self.dense = EqualizedLinear(z_dim + (num_classes or 0), c4 * 16, gain=SQRT2 / 4)
        self.conv = EqualizedConv2d(c4, c4, 3, gain=SQRT2)
        self.blocks = nn.ModuleList(GeneratorBlock(widths[r // 2], widths[r]) for r in self.resolutions[1:])
        self.to_rgb = nn.ModuleList(EqualizedConv2d(widths[r], channels, 1) for r in self.resolutions)
        self._init_growth()

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the generator")
        if y is not None:
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        h = self.norm(lrelu(self.dense(self.norm(z)).view(z.shape[0], -1, 4, 4)))
        h = self.norm(lrelu(self.conv(h)))
        phase, previous = self._phase, h
        for block in self.blocks[:phase]:
            previous, h = h, block(h)
        image = self.to_rgb[phase](h)
        if self._fading:
            image = fade(upsample(self.to_rgb[phase - 1](previous)), image, self.alpha)
        return upsample(image, self.size // self.resolutions[phase])


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convs with LeakyReLU, then 2x2 average pooling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_in, 3, gain=SQRT2)
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, gain=SQRT2)

    def forward(self, x: Tensor) -> Tensor:
        return downsample(lrelu(self.conv1(lrelu(self.conv0(x)))))


class ProGANDiscriminator(Growing):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int | None = None,
        channel_base: int = 16384,
        channel_max: int = 512,
        minibatch_std: int = 4,
    ) -> None:
        super().__init__()
        check_positive("model.discriminator", channel_base=channel_base, channel_max=channel_max)
        channels, size = _check_image_shape(tuple(in_shape), "discriminator")
        self.size = size
        self.resolutions, widths = _widths(size, channel_base, channel_max)
        c4 = widths[4]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, widths[r], 1, gain=SQRT2) for r in self.resolutions)
        # blocks[k - 1] takes resolution resolutions[k] down to resolutions[k - 1]
        self.blocks = nn.ModuleList(DiscriminatorBlock(widths[r], widths[r // 2]) for r in self.resolutions[1:])
        self.minibatch_std = MinibatchStd(minibatch_std) if minibatch_std else nn.Identity()
        self.conv = EqualizedConv2d(c4 + (1 if minibatch_std else 0), c4, 3, gain=SQRT2)
        self.dense = EqualizedLinear(c4 * 16, c4, gain=SQRT2)
        self.out = EqualizedLinear(c4, 1)
        self.num_classes = check_num_classes(num_classes, "model.discriminator")
        if num_classes is not None:
            self.projection = Projection(c4, num_classes)
        self._init_growth()

    def fade_reals(self, x: Tensor) -> Tensor:
        """Real images as the paper shows them to D during a fade (appendix A): at the phase's resolution, blended
        from the previous resolution's view (alpha 0) to their own (alpha 1), and back at the data's size. Only
        the reals: G's output fades by itself."""
        if not self._fading:
            return x
        factor = self.size // self.resolutions[self._phase]
        x = downsample(x, factor)
        return upsample(fade(upsample(downsample(x)), x, self.alpha), factor)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the discriminator")
        phase = self._phase
        x = downsample(x, self.size // self.resolutions[phase])  # the data's size -> this phase's resolution
        h = lrelu(self.from_rgb[phase](x))
        if phase > 0:
            h = self.blocks[phase - 1](h)
            if self._fading:
                h = fade(lrelu(self.from_rgb[phase - 1](downsample(x))), h, self.alpha)
            for block in reversed(self.blocks[: phase - 1]):
                h = block(h)
        h = lrelu(self.conv(self.minibatch_std(h)))
        features = lrelu(self.dense(h.flatten(1)))
        score = self.out(features).view(-1)
        return score if y is None else score + self.projection(features, y)
