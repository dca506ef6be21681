"""The image-conditioned models: SRGAN (`model=srresnet`), SimGAN (`model=refiner`) and pix2pix (`model=unet`),
built directly, without Hydra."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.models.refiner import RefinerDiscriminator, RefinerGenerator
from ganlab.models.srresnet import SRGANDiscriminator, SRResNetGenerator, d_stages
from ganlab.models.unet import PatchGANDiscriminator, UNetGenerator, auto_layers, patch_size


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> object:
    """These networks are tiny: one thread is faster than the suite's two, whose synchronisation costs about
    0.4 s a test when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def support(grad: Tensor) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero entries of a (B, C, H, W) gradient."""
    rows = grad.abs().sum(dim=(0, 1, 3)).nonzero()
    cols = grad.abs().sum(dim=(0, 1, 2)).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def input_window(D: nn.Module, shape: tuple[int, ...], condition: Tensor | None = None) -> tuple[int, int]:
    """The input window the centre logit of D's map depends on: the support of its gradient w.r.t. x."""
    x = torch.randn(1, *shape, requires_grad=True)
    out = D(x, condition)
    out[0, out.shape[1] // 2, out.shape[2] // 2].backward()
    return support(x.grad)


# --- SRGAN -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "scale"), [(8, 2), (16, 2), (16, 4), (32, 4), (32, 8), (64, 8)])
def test_srresnet_upsamples_the_condition(size: int, scale: int) -> None:
    torch.manual_seed(0)
    G = SRResNetGenerator(z_dim=1, out_shape=(3, size, size), scale=scale, width=8, blocks=2).eval()
    low = torch.rand(2, 3, size // scale, size // scale) * 2 - 1
    out = G(torch.randn(2, 1), low)
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1.0 and isinstance(G.tail[-1], nn.Tanh)
    assert torch.equal(out, G(torch.randn(2, 1), low))  # z is ignored: image to image


def test_srresnet_non_square_and_grey() -> None:
    G = SRResNetGenerator(z_dim=1, out_shape=(1, 16, 24), scale=4, width=4, blocks=1)
    assert G(torch.zeros(2, 1), torch.zeros(2, 1, 4, 6)).shape == (2, 1, 16, 24)


def test_srresnet_has_the_papers_size() -> None:
    """16 blocks of width 64 at x4: SRResNet's ~1.55M parameters (Ledig et al. 2017, fig. 4)."""
    G = SRResNetGenerator(z_dim=1, out_shape=(3, 96, 96), scale=4)
    assert 1.50e6 < n_params(G) < 1.60e6
    assert sum(isinstance(m, nn.PixelShuffle) for m in G.modules()) == 2


@pytest.mark.parametrize(
    ("size", "stages", "convs"),
    [(4, 1, 2), (8, 2, 4), (16, 3, 6), (32, 4, 8), (64, 4, 8), (96, 4, 8)],  # convs: the input conv + 2n-1 blocks
)
def test_srgan_discriminator_depth_follows_the_image(size: int, stages: int, convs: int) -> None:
    D = SRGANDiscriminator(in_shape=(3, size, size), width=4, hidden=16)
    assert d_stages(size) == stages == D.stages
    assert sum(isinstance(m, nn.Conv2d) for m in D.modules()) == convs
    out = D(torch.randn(3, 3, size, size), torch.randn(3, 3, 2, 2))  # the condition is ignored
    assert out.shape == (3,)
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


def test_srgan_discriminator_at_the_papers_size() -> None:
    """96x96 crops end at 6x6 with 8 * width channels: Dense(512 * 36 -> 1024) at the paper's width 64 (built at an
    eighth of it, to be fast)."""
    D = SRGANDiscriminator(in_shape=(3, 96, 96), width=8, hidden=128)
    assert D.classifier[1].in_features == 64 * 6 * 6 and D.classifier[1].out_features == 128


@pytest.mark.parametrize(("norm", "layer"), [("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm), ("none", None)])
def test_discriminators_follow_the_norm_option(norm: str, layer: type | None) -> None:
    nets = [
        SRGANDiscriminator(in_shape=(3, 16, 16), width=4, norm=norm),
        RefinerDiscriminator(in_shape=(3, 16, 16), width=4, norm=norm),
        PatchGANDiscriminator(in_shape=(3, 16, 16), width=4, norm=norm),
    ]
    for D in nets:
        norms = [m for m in D.modules() if isinstance(m, nn.BatchNorm2d | nn.GroupNorm)]
        assert all(isinstance(m, layer) for m in norms) and bool(norms) == (layer is not None)


# --- SimGAN ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "map_shape"), [((3, 8, 8), (2, 2)), ((1, 35, 55), (9, 14)), ((3, 64, 64), (16, 16))])
def test_refiner_keeps_the_size_and_d_returns_a_patch_map(shape: tuple[int, ...], map_shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    G = RefinerGenerator(z_dim=1, out_shape=shape, width=8, blocks=2).eval()
    synthetic = torch.rand(2, *shape) * 2 - 1
    out = G(torch.randn(2, 1), synthetic)
    assert out.shape == (2, *shape) and out.abs().max() <= 1.0
    assert torch.equal(out, G(torch.randn(2, 1), synthetic))  # z is ignored
    D = RefinerDiscriminator(in_shape=shape, width=4)
    assert D(out).shape == (2, *map_shape)
    assert D(out, synthetic).shape == (2, *map_shape)  # the condition is ignored


def test_refiner_discriminator_is_local() -> None:
    """One logit sees at most a 23x23 patch: the local adversarial loss of sec. 2.2."""
    torch.manual_seed(0)
    D = RefinerDiscriminator(in_shape=(1, 64, 64), width=4)
    h, w = input_window(D, (1, 64, 64))
    assert h <= D.RECEPTIVE_FIELD and w <= D.RECEPTIVE_FIELD == 23
    defaults = RefinerDiscriminator(in_shape=(1, 35, 55))
    assert [m.out_channels for m in defaults.modules() if isinstance(m, nn.Conv2d)] == [96, 64, 32, 32, 1]


# --- pix2pix -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_unet_shapes_and_dropout_noise(size: int) -> None:
    torch.manual_seed(0)
    G = UNetGenerator(z_dim=1, out_shape=(3, size, size), width=4, max_width=16, in_channels=1).eval()
    a = torch.rand(2, 1, size, size) * 2 - 1
    out = G(torch.randn(2, 1), a)
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1.0
    assert len(G.down) == size.bit_length() - 1  # down to 1x1
    assert not torch.equal(out, G(torch.randn(2, 1), a))  # dropout stays on in eval mode: pix2pix's noise
    G = UNetGenerator(z_dim=1, out_shape=(3, size, size), width=4, max_width=16, dropout=0.0, in_channels=1).eval()
    assert torch.equal(G(torch.randn(2, 1), a), G(torch.randn(2, 1), a))  # without dropout, z changes nothing


def test_unet_at_the_papers_size() -> None:
    """256x256: encoder C64-C128-C256-C512 x5, decoder CD512 x3, C512, C256, C128, C64 (appendix 6.1.1); built at an
    eighth of the paper's widths (the same plan: width and max_width scale every layer), to be fast."""
    G = UNetGenerator(z_dim=1, out_shape=(3, 256, 256), width=8, max_width=64)
    assert [d[0].out_channels * 8 for d in G.down] == [64, 128, 256] + [512] * 5
    assert [u[0].in_channels * 8 for u in G.up] == [512] + [1024] * 4 + [512, 256]
    assert G.out[0].in_channels * 8 == 128
    assert [u[2].p for u in G.up] == [0.5] * 3 + [0.0] * 4
    assert isinstance(G.down[0][1], nn.Identity) and isinstance(G.down[-1][1], nn.Identity)  # first, bottleneck


def test_patch_size_of_the_70x70_patchgan() -> None:
    assert [patch_size(n) for n in (1, 2, 3, 4)] == [16, 34, 70, 142]
    assert [auto_layers(s) for s in (8, 16, 32, 34, 64, 70, 256)] == [1, 1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_logit_sees_exactly_its_patch(layers: int) -> None:
    """The gradient of one interior logit w.r.t. x has a support of patch_size(layers) pixels a side (LeakyReLU
    passes every gradient, so the box is the whole receptive field)."""
    torch.manual_seed(0)
    D = PatchGANDiscriminator(in_shape=(1, 96, 96), width=2, layers=layers, norm="none", in_channels=1)
    condition = torch.randn(1, 1, 96, 96)
    assert input_window(D, (1, 96, 96), condition) == (patch_size(layers), patch_size(layers)) == (D.patch_size,) * 2


@pytest.mark.parametrize(("size", "layers", "side"), [(8, 1, 2), (16, 1, 6), (32, 1, 14), (64, 2, 14), (128, 3, 14)])
def test_patchgan_map_shapes(size: int, layers: int, side: int) -> None:
    D = PatchGANDiscriminator(in_shape=(3, size, size), width=4)
    assert D.layers == layers
    x, a = torch.randn(2, 3, size, size), torch.randn(2, 3, size, size)
    assert D(x, a).shape == (2, side, side)
    grey = PatchGANDiscriminator(in_shape=(3, size, size), width=4, in_channels=1)
    assert grey(x, a[:, :1]).shape == (2, side, side)
    alone = PatchGANDiscriminator(in_shape=(3, size, size), width=4, in_channels=0)
    assert alone(x).shape == alone(x, a).shape == (2, side, side)  # unconditional: the condition is ignored


def test_patchgan_default_is_the_papers() -> None:
    D = PatchGANDiscriminator(in_shape=(3, 256, 256))
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (6, 64, 2),
        (64, 128, 2),
        (128, 256, 2),
        (256, 512, 1),
        (512, 1, 1),
    ]
    assert D.patch_size == 70
    assert D(torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256)).shape == (1, 30, 30)


# --- configuration errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SRResNetGenerator(1, (3, 32, 32), scale=3), "model.generator.scale=3"),
        (lambda: SRResNetGenerator(1, (3, 30, 30), scale=4), "must divide"),
        (lambda: SRResNetGenerator(1, (3, 32, 32), blocks=0), "model.generator.blocks"),
        (lambda: SRResNetGenerator(1, (3, 32, 32), num_classes=10), "images, not classes"),
        (lambda: SRResNetGenerator(1, (2,)), "image data"),
        (lambda: SRGANDiscriminator((3, 2, 2)), "at least 3x3"),
        (lambda: SRGANDiscriminator((3, 32, 32), norm="group"), "model.discriminator.norm"),
        (lambda: SRGANDiscriminator((3, 32, 32), num_classes=10), "images, not classes"),
        (lambda: RefinerGenerator(1, (3, 32, 32), blocks=0), "model.generator.blocks"),
        (lambda: RefinerGenerator(1, (3, 32, 32), num_classes=10), "images, not classes"),
        (lambda: RefinerDiscriminator((3, 32, 32), width=0), "model.discriminator.width"),
        (lambda: RefinerDiscriminator((3, 32, 32), num_classes=3), "images, not classes"),
        (lambda: UNetGenerator(1, (3, 48, 48)), "power of two from 8 to 256"),
        (lambda: UNetGenerator(1, (3, 4, 4)), "power of two from 8 to 256"),
        (lambda: UNetGenerator(1, (3, 32, 32), dropout=1.0), "model.generator.dropout"),
        (lambda: UNetGenerator(1, (3, 32, 32), num_classes=10), "images, not classes"),
        (lambda: PatchGANDiscriminator((3, 4, 4)), "at least 6x6"),
        (lambda: PatchGANDiscriminator((3, 32, 32), layers=4), "model.discriminator.layers=4"),
        (lambda: PatchGANDiscriminator((3, 32, 32), layers=0), "model.discriminator.layers"),
        (lambda: PatchGANDiscriminator((3, 32, 32), num_classes=10), "images, not classes"),
    ],
)
def test_config_errors(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_generators_need_their_condition() -> None:
    z = torch.zeros(2, 1)
    with pytest.raises(ConfigError, match="low-resolution image"):
        SRResNetGenerator(1, (3, 16, 16), scale=4, width=4, blocks=1)(z)
    with pytest.raises(ConfigError, match=r"\(3, 4, 4\)"):
        SRResNetGenerator(1, (3, 16, 16), scale=4, width=4, blocks=1)(z, torch.zeros(2, 3, 8, 8))
    with pytest.raises(ConfigError, match="synthetic image"):
        RefinerGenerator(1, (3, 16, 16), width=4, blocks=1)(z, torch.zeros(2, 3, 8, 8))
    with pytest.raises(ConfigError, match="input image"):
        UNetGenerator(1, (3, 16, 16), width=4)(z, torch.zeros(2, 1, 16, 16))
    with pytest.raises(ConfigError, match="needs a condition"):
        PatchGANDiscriminator((3, 16, 16), width=4)(torch.zeros(2, 3, 16, 16))
