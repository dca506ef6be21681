"""`model=stylegan2`: the networks of StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", config F as far as it applies), written from the paper in plain PyTorch.

Generator (`StyleGAN2Generator`):
- Mapping network f (StyleGAN, Karras et al. 2019, sec. 2; `MappingNetwork`): z normalised to unit second moment,
  then `mapping_layers` fully connected layers with a 100x lower learning rate (`mapping_lr_mul` 0.01) -> w. A
  class-conditional G concatenates a normalised embedding of the one-hot label to z. G tracks the running mean
  w_avg of w for the truncation trick (StyleGAN sec. 4; `StyleGAN2Generator.mapping`, `.styles`).
- Style mixing regularisation (StyleGAN sec. 3.1; `StyleGAN2Generator.styles`): in training, a second latent
  takes over the layers from a random crossover point on.
- Synthesis network (`SynthesisNetwork`): a learned 4x4 constant input, then per resolution 3x3 convolutions with
  weight modulation and demodulation (StyleGAN2 sec. 2.2, eq. 1-3; `modulated_conv2d`), which replace AdaIN, and
  per-pixel noise with a learned per-channel strength added after each convolution, outside the style block
  (sec. 2.1). The "skip" output architecture (sec. 4.1, Figure 7b): every resolution adds its own tRGB output to
  the upsampled image of the resolutions below it.
- Upsampling (`SynthesisLayer` with up=True): the bilinear-like [1, 3, 3, 1] FIR upsampling of
  ganlab/models/resample.py, then the 3x3 modulated convolution at the higher resolution. NVIDIA's
  implementation fuses a transposed convolution with the filter instead; the two are the same linear map up to
  the image borders (zero insertion, filter and convolution all commute) and a flip of the kernel.
Discriminator (`StyleGAN2Discriminator`): the residual D of sec. 4.1 (Figure 7c): fromRGB at the input
resolution only, then per resolution two 3x3 convs (the second one blurs and strides by 2) plus a 1x1 skip
on a filtered downsampled input, summed and scaled by 1/sqrt(2); at 4x4 the minibatch standard deviation
(ganlab/models/minibatch_std.py), a conv and two fully connected layers. A class-conditional D scores by
projection (Miyato & Koyama 2018) onto an embedding of the label.
Everywhere: equalized learning rate (ganlab/models/equalized.py), weights N(0, 1), biases 0 except the style
affines' (1, so that styles start near 1), LeakyReLU(0.2) times sqrt(2). The output is linear (no tanh).

Not included (training-loop pieces, not networks): path length regularisation, lazy regularisation, the EMA of
G, mixed precision with clamping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.errors import ConfigError, check_non_negative, check_positive
from ganlab.models.conditional import check_labels, check_num_classes
from ganlab.models.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm, channel_widths, lrelu_gain
from ganlab.models.layers import check_image_shape
from ganlab.models.minibatch_std import MinibatchStd
from ganlab.models.resample import blur, downsample2d, upsample2d

SIZES = tuple(2**i for i in range(3, 11))  # 8 .. 1024
DEMOD_EPS = 1e-8  # the paper's epsilon in eq. 3: keeps an all-zero style from dividing by zero
SQRT_HALF = math.sqrt(0.5)


def _check_image_shape(shape: tuple[int, ...], who: str) -> tuple[int, int]:
    sizes = f"square images whose side is a power of two from {SIZES[0]} to {SIZES[-1]}"
    return check_image_shape(shape, "stylegan2", sizes, SIZES, who)


def _check_range(where: str, value: float, low: float, high: float, low_open: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not ((low < value if low_open else low <= value) and value <= high)
    ):
        bracket = "(" if low_open else "["
        raise ConfigError(f"{where} must be a number in {bracket}{low:g}, {high:g}], got {value!r}.")
    return float(value)


def _one_hot(y: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    # A comparison rather than F.one_hot: F.one_hot checks the labels' range, which on a GPU makes the host wait
    # for the device, and a captured (CUDA graph) step must not.
    return (y.unsqueeze(1) == torch.arange(num_classes, device=y.device)).to(dtype)


def _resolutions(size: int) -> list[int]:
    return [2**i for i in range(2, int(math.log2(size)) + 1)]  # 4, 8, ..., size


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    fused: bool = True,
    padding: int | None = None,
) -> Tensor:
    """A convolution whose weight each sample scales by its style (StyleGAN2 sec. 2.2).

    x (B, I, H, W), weight (O, I, k, k), styles (B, I). Modulation (eq. 1): w'_bijk = s_bi w_ijk. Demodulation
    (eq. 3): w''_bijk = w'_bijk / sqrt(sum_ik w'_bijk^2 + eps), so that unit-variance inputs give unit-variance
    outputs whatever the style: the statistics AdaIN normalised explicitly are now a property of the weights.
    `padding` defaults to k // 2 (same size).

    fused=True builds every sample's weight and runs one grouped convolution (groups = B) over the batch folded
    into channels, as the paper describes. fused=False scales the input's channels by the style, convolves with
    the shared weight and scales the output channels by the demodulation coefficients: the same numbers, since
    the style multiplies input channel i and the coefficient output channel j, both constant over the kernel.
    """
    b, in_ch, h, w = x.shape
    out_ch, _, kh, kw = weight.shape
    pad = kh // 2 if padding is None else padding
    if fused:
        wb = weight.unsqueeze(0) * styles[:, None, :, None, None]  # (B, O, I, k, k)
        if demodulate:
            wb = wb * torch.rsqrt(wb.square().sum(dim=(2, 3, 4), keepdim=True) + DEMOD_EPS)
        out = F.conv2d(x.reshape(1, b * in_ch, h, w), wb.reshape(b * out_ch, in_ch, kh, kw), padding=pad, groups=b)
        return out.reshape(b, out_ch, *out.shape[2:])
    out = F.conv2d(x * styles[:, :, None, None], weight, padding=pad)
    if demodulate:
        # sum_ik (s_bi w_jik)^2 = sum_i s_bi^2 sum_k w_jik^2: a (B, I) x (I, O) product, no (B, O, I, k, k) tensor
        coef = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + DEMOD_EPS)
        out = out * coef[:, :, None, None]
    return out


class ModulatedConv2d(nn.Module):
    """A modulated convolution with its affine A (w -> one style per input channel, bias 1) and an equalized
    learning rate: the weight is stored N(0, 1) and scaled by 1/sqrt(fan_in) at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.fused = False  # which form of modulated_conv2d: see forward

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        # Unfused by default, in training and in eval. Measured on 2 CPU cores (16x16 G, channel_base 2048,
        # channel_max 128, batch 64; best of 12): training forward + backward 215-245 ms unfused against
        # 1100-1250 ms fused, eval forward 66-82 ms against 157-314 ms. The grouped convolution with one group per
        # sample has no fast CPU kernel, and its backward is slower still. Not measured on a GPU, where NVIDIA's
        # choice of the fused form for inference may pay: set `fused = True` on these modules.
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), self.demodulate, self.fused)

    def extra_repr(self) -> str:
        out, inp, k, _ = self.weight.shape
        return f"{inp}, {out}, kernel_size={k}, demodulate={self.demodulate}"


class SynthesisLayer(nn.Module):
    """[upsample2d ->] modulated 3x3 conv -> + noise * per-channel strength -> + bias -> LeakyReLU * sqrt(2).
    Per-channel strengths, as the issue asks (StyleGAN's; StyleGAN2's code has one per layer). Fresh noise in
    training, a fixed map in eval mode (`const_noise`).

    With up=True the input is first upsampled by the [1, 3, 3, 1] filter (resample.py), then convolved at the
    doubled resolution (see the module docstring for how that relates to NVIDIA's transposed convolution)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, up: bool = False) -> None:
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))  # zero: noise is learnt in, not imposed
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self._const_noise: Tensor | None = None

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.up:
            x = upsample2d(x)
        x = self.conv(x, w)
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.const_noise(x)
        x = x + noise * self.noise_strength[None, :, None, None] + self.bias[None, :, None, None]
        return lrelu_gain(x)

    def const_noise(self, like: Tensor) -> Tensor:
        """Eval mode's noise (NVIDIA's noise_mode='const'): one fixed map per layer for every sample and call, so
        that drawing samples (pictures, evaluations, ganlab sample) leaves the global RNG, which training's batches
        use, alone, and a latent always gives the same image. Drawn from a generator seeded by the layer's place
        (its resolution, and whether it upsamples): the same in every process, without a checkpoint entry."""
        shape = (1, 1, like.shape[2], like.shape[3])
        if self._const_noise is None or self._const_noise.shape != shape or self._const_noise.device != like.device:
            seed = like.shape[2] * 2 + int(self.up)
            self._const_noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(like.device)
        return self._const_noise.to(like.dtype)


class ToRGB(nn.Module):
    """tRGB: a modulated 1x1 conv without demodulation (the image's scale is free) plus a bias; linear."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution: (4x4) the constant and a conv, or (higher) an upsampling conv and a conv; then tRGB, added
    to the upsampled image of the resolutions below (the skip architecture). Reads num_conv + 1 of the ws: the
    tRGB shares its w with the next block's first conv, as in the paper's count of 2 log2(R) - 2 ws."""

    def __init__(self, in_channels: int | None, out_channels: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.first = in_channels is None
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
            self.convs = nn.ModuleList([SynthesisLayer(out_channels, out_channels, w_dim)])
        else:
            up = SynthesisLayer(in_channels, out_channels, w_dim, up=True)
            self.convs = nn.ModuleList([up, SynthesisLayer(out_channels, out_channels, w_dim)])
        self.num_conv = len(self.convs)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor) -> tuple[Tensor, Tensor]:
        if self.first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i])
        rgb = self.torgb(x, ws[:, self.num_conv])
        return x, rgb if img is None else upsample2d(img) + rgb


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, C, R, R)."""

    def __init__(self, w_dim: int, size: int, img_channels: int, channel_base: int, channel_max: int) -> None:
        super().__init__()
        resolutions = _resolutions(size)
        self.widths = channel_widths(resolutions, channel_base, channel_max)
        self.blocks = nn.ModuleList(
            SynthesisBlock(None if r == 4 else self.widths[r // 2], self.widths[r], img_channels, w_dim)
            for r in resolutions
        )
        self.num_ws = sum(block.num_conv for block in self.blocks) + 1  # + the last tRGB: 2 log2(R) - 2

    @property
    def const(self) -> Tensor:
        return self.blocks[0].const

    def forward(self, ws: Tensor) -> Tensor:
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"synthesis expects ws of shape (B, {self.num_ws}, w_dim), got {tuple(ws.shape)}")
        x = img = None
        index = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, index : index + block.num_conv + 1])
            index += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """z (and a one-hot label) -> w: normalisation to unit second moment, then fully connected layers with the
    learning rate multiplier (StyleGAN's 0.01: w moves slowly, which keeps the style space stable)."""

    def __init__(self, z_dim: int, w_dim: int, num_classes: int | None, num_layers: int, lr_mul: float) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.norm = PixelNorm()  # over dim 1: the features of a (B, F) tensor
        self.embed = None if num_classes is None else EqualizedLinear(num_classes, w_dim)
        features = [z_dim + (0 if num_classes is None else w_dim)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(features, features[1:], strict=False)
        )

    def forward(self, z: Tensor, y: Tensor | None) -> Tensor:
        x = self.norm(z)
        if self.embed is not None:
            # Normalised like z, so that the label and the noise weigh alike in the first layer.
            x = torch.cat([x, self.norm(self.embed(_one_hot(y, self.num_classes, x.dtype)))], dim=1)
        for layer in self.layers:
            x = lrelu_gain(layer(x))
        return x


class StyleGAN2Generator(nn.Module):
    """G(z) or G(z, y): a (B, C, R, R) image with a linear output. `mapping`, `styles` and `synthesis` expose the
    stages (z -> w, w -> per-layer ws with mixing and truncation, ws -> image)."""

    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        num_classes: int | None = None,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        channel_base: int = 32768,
        channel_max: int = 512,
        style_mixing: float = 0.9,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        where = "model.generator"
        sizes = {"z_dim": z_dim, "w_dim": w_dim, "mapping_layers": mapping_layers}
        check_positive(where, **sizes, channel_base=channel_base, channel_max=channel_max)
        mapping_lr_mul = _check_range(f"{where}.mapping_lr_mul", mapping_lr_mul, 0.0, 1.0, low_open=True)
        self.style_mixing = _check_range(f"{where}.style_mixing", style_mixing, 0.0, 1.0)
        self.w_avg_beta = _check_range(f"{where}.w_avg_beta", w_avg_beta, 0.0, 1.0)
        channels, size = _check_image_shape(tuple(out_shape), "generator")
        self.z_dim, self.w_dim = z_dim, w_dim
        self.num_classes = check_num_classes(num_classes, where)
        self.mapping_net = MappingNetwork(z_dim, w_dim, self.num_classes, mapping_layers, mapping_lr_mul)
        self.synthesis_net = SynthesisNetwork(w_dim, size, channels, channel_base, channel_max)
        self.num_ws = self.synthesis_net.num_ws
        self.register_buffer("w_avg", torch.zeros(w_dim))  # persistent: truncation after loading needs it

    def mapping(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """w (B, w_dim); in training mode also moves w_avg towards the batch's mean w (in place, on the device)."""
        check_labels(y, self.num_classes, "the generator")
        w = self.mapping_net(z, y)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        return w

    def styles(self, z: Tensor, y: Tensor | None = None, truncation: float = 1.0) -> Tensor:
        """ws (B, num_ws, w_dim): w for every layer; in training, with probability `style_mixing` the layers from
        a random cutoff in [1, num_ws) take the w of a second latent instead; then the truncation trick
        w_avg + truncation * (w - w_avg)."""
        w = self.mapping(z, y)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if self.training and self.style_mixing > 0:
            # All on the device: no .item() and no Python branch on a drawn number, so a CUDA graph can capture
            # the step and draw a new cutoff (or none) at every replay. The second latent's w must not move w_avg.
            w2 = self.mapping_net(torch.randn_like(z), y)
            cutoff = torch.randint(1, self.num_ws, (), device=z.device)
            mixing = torch.rand((), device=z.device) < self.style_mixing
            cutoff = torch.where(mixing, cutoff, torch.full_like(cutoff, self.num_ws))  # num_ws: nothing mixed
            second = torch.arange(self.num_ws, device=z.device) >= cutoff
            ws = torch.where(second[None, :, None], w2.unsqueeze(1), ws)
        if truncation != 1:
            ws = self.w_avg + truncation * (ws - self.w_avg)
        return ws

    def synthesis(self, ws: Tensor) -> Tensor:
        return self.synthesis_net(ws)

    def forward(self, z: Tensor, y: Tensor | None = None, truncation: float = 1.0) -> Tensor:
        return self.synthesis(self.styles(z, y, truncation))


class DownConv2d(EqualizedConv2d):
    """blur (pad 2) then a 3x3 stride-2 convolution without padding: H -> H/2, aligned with downsample2d."""

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_gain
        return F.conv2d(blur(x, 2), self.weight * self.weight_gain, bias, stride=2)


class DiscriminatorBlock(nn.Module):
    """Residual: conv 3x3, downsampling conv 3x3 (both LeakyReLU * sqrt 2), plus a 1x1 skip (no bias, linear) of
    the filtered, downsampled input; the sum times 1/sqrt(2) keeps the variance of the two branches' sum."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = DownConv2d(in_channels, out_channels, 3)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # downsample, then 1x1: the same as 1x1, then blur and stride (both linear, one per pixel and one per
        # channel), on a quarter of the pixels.
        skip = self.skip(downsample2d(x))
        x = lrelu_gain(self.conv1(lrelu_gain(self.conv0(x))))
        return (skip + x) * SQRT_HALF


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch std, conv 3x3, fully connected (C*16 -> C), fully connected (C -> out_features)."""

    def __init__(self, channels: int, minibatch_std: int, out_features: int) -> None:
        super().__init__()
        self.mbstd = MinibatchStd(minibatch_std) if minibatch_std else None
        self.conv = EqualizedConv2d(channels + (1 if minibatch_std else 0), channels, 3)
        self.fc = EqualizedLinear(channels * 16, channels)
        self.out = EqualizedLinear(channels, out_features)

    def forward(self, x: Tensor) -> Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = lrelu_gain(self.conv(x))
        x = lrelu_gain(self.fc(x.flatten(1)))
        return self.out(x)


class StyleGAN2Discriminator(nn.Module):
    """D(x) or D(x, y): (B,) logits. Conditional: projection of the last features onto a normalised embedding of
    the label, divided by sqrt(cmap_dim) (cmap_dim: the 4x4 width unless given)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int | None = None,
        channel_base: int = 32768,
        channel_max: int = 512,
        minibatch_std: int = 4,
        cmap_dim: int | None = None,
    ) -> None:
        super().__init__()
        where = "model.discriminator"
        check_positive(where, channel_base=channel_base, channel_max=channel_max)
        check_non_negative(where, minibatch_std=minibatch_std)
        channels, size = _check_image_shape(tuple(in_shape), "discriminator")
        resolutions = _resolutions(size)
        widths = channel_widths(resolutions, channel_base, channel_max)
        self.num_classes = check_num_classes(num_classes, where)
        self.from_rgb = EqualizedConv2d(channels, widths[size], 1)
        self.blocks = nn.ModuleList(DiscriminatorBlock(widths[r], widths[r // 2]) for r in resolutions[:0:-1])
        self.cmap_dim = None
        if self.num_classes is not None:
            if cmap_dim is not None:
                check_positive(where, cmap_dim=cmap_dim)
            self.cmap_dim = cmap_dim or widths[4]
            self.embed = EqualizedLinear(self.num_classes, self.cmap_dim)
            self.norm = PixelNorm()
        self.epilogue = DiscriminatorEpilogue(widths[4], minibatch_std, self.cmap_dim or 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "the discriminator")
        h = lrelu_gain(self.from_rgb(x))
        for block in self.blocks:
            h = block(h)
        out = self.epilogue(h)
        if self.cmap_dim is None:
            return out.view(-1)
        cmap = self.norm(self.embed(_one_hot(y, self.num_classes, out.dtype)))
        return (out * cmap).sum(dim=1) / math.sqrt(self.cmap_dim)
