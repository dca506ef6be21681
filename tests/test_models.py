"""The architectures build themselves from the data's shape and follow the DCGAN recipe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganlab.errors import ConfigError
from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.models.mlp import MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_dcgan_shapes(size: int, channels: int) -> None:
    G = DCGANGenerator(z_dim=10, out_shape=(channels, size, size), width=4)
    D = DCGANDiscriminator(in_shape=(channels, size, size), width=4)
    x = G(torch.randn(3, 10))
    assert x.shape == (3, channels, size, size)
    assert x.abs().max() <= 1.0  # tanh output
    assert D(x).shape == (3,)  # one logit per sample, no sigmoid
    # log2(size) - 1 transposed convs in G (4x4 first, then one per doubling); the same number of convs in D
    n_layers = size.bit_length() - 2
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) == n_layers
    assert sum(isinstance(m, nn.Conv2d) for m in D.modules()) == n_layers


def test_dcgan_follows_radford_et_al() -> None:
    G = DCGANGenerator(z_dim=16, out_shape=(1, 32, 32), width=8)
    D = DCGANDiscriminator(in_shape=(1, 32, 32), width=8)
    g_layers, d_layers = list(G.net), list(D.net)
    # BatchNorm after every G conv but the last; the output layer is conv -> tanh.
    assert isinstance(g_layers[-2], nn.ConvTranspose2d) and isinstance(g_layers[-1], nn.Tanh)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g_layers) == 3
    assert all(isinstance(m, nn.ReLU) for m in g_layers if isinstance(m, nn.ReLU | nn.LeakyReLU))
    # D's input layer has no normalisation; the others do; LeakyReLU(0.2) throughout; last layer is a conv.
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d_layers) == 2
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert isinstance(d_layers[-1], nn.Conv2d)
    # Channels double towards 4x4: G 32 -> 16 -> 8, D 8 -> 16 -> 32.
    assert [m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)] == [32, 16, 8, 1]
    assert [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)] == [8, 16, 32, 1]
    # N(0, 0.02) initialisation.
    weights = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert weights.mean().abs() < 0.002 and weights.std().item() == pytest.approx(0.02, rel=0.1)


def test_dcgan_discriminator_norms() -> None:
    def norms(norm: str) -> list[type]:
        D = DCGANDiscriminator(in_shape=(3, 32, 32), width=4, norm=norm)
        return [type(m) for m in D.modules() if isinstance(m, nn.BatchNorm2d | nn.GroupNorm)]

    assert norms("batch") == [nn.BatchNorm2d, nn.BatchNorm2d]
    assert norms("layer") == [nn.GroupNorm, nn.GroupNorm]
    assert norms("none") == []
    with pytest.raises(ConfigError, match="normalisation"):
        DCGANDiscriminator(in_shape=(3, 32, 32), norm="spectral")


def test_dcgan_extra_layers_add_depth_at_the_finest_resolution() -> None:
    G = DCGANGenerator(z_dim=4, out_shape=(1, 32, 32), width=8, extra_layers=2)
    D = DCGANDiscriminator(in_shape=(1, 32, 32), width=8, extra_layers=2, norm="layer")
    extra_g = [m for m in G.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.kernel_size, m.stride) for m in extra_g] == [(8, (3, 3), (1, 1))] * 2
    d_convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(d_convs) == 4 + 2 and d_convs[1].kernel_size == (3, 3) and d_convs[1].in_channels == 8
    assert G(torch.randn(2, 4)).shape == (2, 1, 32, 32) and D(torch.randn(2, 1, 32, 32)).shape == (2,)
    with pytest.raises(ConfigError, match="extra_layers must be an integer >= 0"):
        DCGANGenerator(z_dim=4, out_shape=(1, 32, 32), extra_layers=-1)


def test_dcgan_width_is_capped() -> None:
    G = DCGANGenerator(z_dim=4, out_shape=(3, 128, 128), width=64, max_width=128)
    assert max(m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)) == 128


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2,), "image data"),
        ((1, 28, 28), "power"),
        ((1, 256, 256), "square images"),
        ((2, 32, 32), "channels"),
        ((1, 32, 16), "square"),
    ],
)
def test_dcgan_refuses_shapes_it_cannot_build(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DCGANGenerator(z_dim=4, out_shape=shape)
    with pytest.raises(ConfigError, match=message):
        DCGANDiscriminator(in_shape=shape)


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (3, 5, 7)])
def test_mlp_any_shape(shape: tuple[int, ...]) -> None:
    G = MLPGenerator(z_dim=6, out_shape=shape, width=16, depth=2)
    D = MLPDiscriminator(in_shape=shape, width=16, depth=2, norm="layer")
    x = G(torch.randn(5, 6))
    assert x.shape == (5, *shape)
    assert D(x).shape == (5,)
    bounded = x.abs().max() <= 1.0
    assert bounded or len(shape) == 1  # tanh for images only; 2-D mixtures live outside [-1, 1]
    assert isinstance(G.net[-1], nn.Tanh) == (len(shape) == 3)


@pytest.mark.parametrize(
    "kwargs", [{"widths": []}, {"widths": [8, 0]}, {"widths": [8, True]}, {"norm": "layer"}, {"activation": "tanh"}]
)
def test_mlp_generator_refuses_bad_layers(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="model.generator"):
        MLPGenerator(z_dim=4, out_shape=(2,), **kwargs)
