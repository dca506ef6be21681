"""`model=resnet`: the WGAN-GP / SNGAN residual networks, SAGAN self-attention and the conditional pieces."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from ganlab.checkpoint import load_checkpoint
from ganlab.errors import ConfigError
from ganlab.models.attention import SelfAttention
from ganlab.models.conditional import ConditionalBatchNorm2d
from ganlab.models.resnet import DownBlock, ResNetDiscriminator, ResNetGenerator, UpBlock
from ganlab.train import train
from tests.conftest import compose_cfg


def block_outputs(model: nn.Module, block_type: type, run: Callable[[], object]) -> list[tuple[int, int]]:
    """(channels, side) of each residual block's output, in order, recorded while `run()` goes forward."""
    seen: list[tuple[int, int]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: seen.append((out.shape[1], out.shape[-1])))
        for m in model.modules()
        if isinstance(m, block_type)
    ]
    run()
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    ("size", "g_blocks", "d_blocks"),
    [
        # width 8: G keeps 8 channels at 32x32; D has 8 at 16x16 and stays at 8x8 for its last three blocks.
        (32, [(8, 8), (8, 16), (8, 32)], [(8, 16), (8, 8), (8, 8), (8, 8)]),
        # 64x64: G starts at 8w = 64 at 4x4 and halves per block; D doubles as the resolution halves, to 2x2.
        (64, [(32, 8), (16, 16), (8, 32), (4, 64)], [(4, 32), (8, 16), (16, 8), (32, 4), (64, 2)]),
    ],
)
def test_shapes_and_channels_per_resolution(
    size: int, channels: int, g_blocks: list[tuple[int, int]], d_blocks: list[tuple[int, int]]
) -> None:
    torch.manual_seed(0)
    G = ResNetGenerator(z_dim=8, out_shape=(channels, size, size), width=8)
    D = ResNetDiscriminator(in_shape=(channels, size, size), width=8)
    out: dict[str, Tensor] = {}
    assert block_outputs(G, UpBlock, lambda: out.update(x=G(torch.randn(3, 8)))) == g_blocks
    x = out["x"]
    assert x.shape == (3, channels, size, size)
    assert x.abs().max() <= 1.0 and isinstance(G.out[-1], nn.Tanh)  # tanh output
    assert G.linear.out_features == (8 if size == 32 else 8 * 8) * 4 * 4  # w, or 8w for 64x64, at 4x4
    assert block_outputs(D, DownBlock, lambda: out.update(d=D(x))) == d_blocks
    assert out["d"].shape == (3,)  # one logit per sample
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())  # a logit, never a probability
    # A logit is unbounded: scaling the last layer scales it, which a sigmoid output would not allow.
    with torch.no_grad():
        D.linear.weight.mul_(1000)
    assert D(x).abs().max() > 1


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def bn(c: int) -> int:
    return 2 * c


def g32_params(w: int, z: int = 128, c: int = 3) -> int:
    """Counted layer by layer: Linear z -> 4x4xw, three up-blocks (BN, conv3, BN, conv3, conv1 shortcut),
    BN and a conv3 to the image."""
    block = bn(w) + conv(w, w, 3) + bn(w) + conv(w, w, 3) + conv(w, w, 1)
    return (z * 16 * w + 16 * w) + 3 * block + bn(w) + conv(w, c, 3)


def d32_params(w: int, c: int = 3) -> int:
    """The optimized block (conv3, conv3, conv1 shortcut), a down-block (conv3, conv3, conv1 shortcut), two
    blocks with identity shortcuts (conv3, conv3), Linear w -> 1."""
    optimized = conv(c, w, 3) + conv(w, w, 3) + conv(c, w, 1)
    down = 2 * conv(w, w, 3) + conv(w, w, 1)
    return optimized + down + 2 * 2 * conv(w, w, 3) + (w + 1)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_papers() -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        g128 = n_params(ResNetGenerator(z_dim=128, out_shape=(3, 32, 32), width=128))
        g256 = n_params(ResNetGenerator(z_dim=128, out_shape=(3, 32, 32), width=256))
        d128 = n_params(ResNetDiscriminator(in_shape=(3, 32, 32), width=128))
        g64 = n_params(ResNetGenerator(z_dim=128, out_shape=(3, 64, 64), width=128))
        d64 = n_params(ResNetDiscriminator(in_shape=(3, 64, 64), width=128))
    print(f"resnet 32x32x3: G(width=128) {g128:,}  G(width=256) {g256:,}  D(width=128) {d128:,}")
    assert (g128, g256, d128) == (g32_params(128), g32_params(256), d32_params(128))
    # WGAN-GP's CIFAR ResNet uses 128 channels in G (about 1.2M parameters); SNGAN's CIFAR G (Table 4) is the
    # same network with 256 channels (about 4.3M); both papers' D has 128 channels (about 1.05M).
    assert g128 == pytest.approx(1.2e6, rel=0.1)
    assert g256 == pytest.approx(4.3e6, rel=0.1)
    assert d128 == pytest.approx(1.0e6, rel=0.1)
    # 64x64 at width 128 is SNGAN's 64x64 pair (ch = 64), counted by hand from sngan_projection's resnet_64:
    # G 1024 -> 512 -> 256 -> 128 -> 64 channels from 4x4 to 64x64, D 64 -> 128 -> 256 -> 512 -> 1024.
    print(f"resnet 64x64x3: G(width=128) {g64:,}  D(width=128) {d64:,}")
    assert (g64, d64) == (12_220_675, 10_141_441)


def test_init_follows_sngan() -> None:
    torch.manual_seed(0)
    D = ResNetDiscriminator(in_shape=(3, 32, 32), width=64)

    def xavier_std(conv: nn.Conv2d, gain: float) -> float:
        fan_in, fan_out = conv.weight[0].numel(), conv.weight[:, 0].numel()
        return gain * math.sqrt(2.0 / (fan_in + fan_out))

    block = D.blocks[1]
    residual = [m for m in block.residual if isinstance(m, nn.Conv2d)]
    shortcut = [m for m in block.shortcut if isinstance(m, nn.Conv2d)]
    for layer, gain in [(residual[0], math.sqrt(2)), (residual[1], math.sqrt(2)), (shortcut[0], 1.0)]:
        assert layer.weight.std().item() == pytest.approx(xavier_std(layer, gain), rel=0.05)
    assert all((m.bias == 0).all() for m in D.modules() if isinstance(m, nn.Conv2d | nn.Linear))


def test_self_attention_is_the_identity_at_gamma_zero() -> None:
    torch.manual_seed(0)
    att = SelfAttention(16)
    assert isinstance(att.gamma, nn.Parameter) and att.gamma.item() == 0.0
    assert (att.query.out_channels, att.key.out_channels, att.value.out_channels) == (2, 2, 16)  # C/8, C/8, C
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(att(x), x)


def test_self_attention_sees_the_whole_image() -> None:
    torch.manual_seed(0)
    att = SelfAttention(16).double()  # float64: a change far above rounding noise, however peaked the softmax
    with torch.no_grad():
        att.gamma.fill_(0.5)
    x = torch.randn(1, 16, 8, 8, dtype=torch.float64)
    moved = x.clone()
    moved[:, :, 0, 0] += 3.0  # one corner pixel
    far = (slice(None), slice(None), 7, 7)  # the opposite corner
    assert (att(moved)[far] - att(x)[far]).abs().max() > 1e-4
    # A convolution of the same depth does not reach that far: its output at the far corner stays put.
    local = nn.Conv2d(16, 16, 3, padding=1).double()
    assert torch.equal(local(moved)[far], local(x)[far])
    # With the queries zeroed every position attends uniformly: o is the mean of the values over the image.
    with torch.no_grad():
        att.query.weight.zero_()
    expected = x + 0.5 * att.value(x).mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(att(x), expected, atol=1e-12)


def test_attention_goes_after_the_block_of_that_resolution() -> None:
    G = ResNetGenerator(z_dim=8, out_shape=(3, 32, 32), width=8, attention=16)
    D = ResNetDiscriminator(in_shape=(3, 64, 64), width=8, attention=8)
    assert [type(m).__name__ for m in G.blocks] == ["UpBlock", "UpBlock", "SelfAttention", "UpBlock"]
    assert [type(m).__name__ for m in D.blocks].index("SelfAttention") == 3  # after 32, 16, 8
    g_in = block_outputs(G, SelfAttention, lambda: G(torch.randn(2, 8)))
    d_in = block_outputs(D, SelfAttention, lambda: D(torch.randn(2, 3, 64, 64)))
    assert g_in == [(8, 16)] and d_in == [(16, 8)]  # attention's output = its input's shape


@pytest.mark.parametrize(
    ("make", "valid", "lacking"),
    [
        (lambda a: ResNetGenerator(z_dim=8, out_shape=(3, 32, 32), width=8, attention=a), "8, 16, 32", 4),
        (lambda a: ResNetGenerator(z_dim=8, out_shape=(3, 64, 64), width=8, attention=a), "8, 16, 32, 64", 4),
        (lambda a: ResNetDiscriminator(in_shape=(3, 32, 32), width=8, attention=a), "8, 16", 32),
        (lambda a: ResNetDiscriminator(in_shape=(1, 64, 64), width=8, attention=a), "2, 4, 8, 16, 32", 64),
    ],
)
def test_attention_at_a_resolution_the_network_lacks_is_refused(
    make: Callable[[object], nn.Module], valid: str, lacking: int
) -> None:
    for bad in (lacking, 12, True, "16"):
        with pytest.raises(ConfigError, match=f"choose one of {valid} "):
            make(bad)


def test_conditional_generator_draws_the_label() -> None:
    torch.manual_seed(0)
    G = ResNetGenerator(z_dim=8, out_shape=(3, 32, 32), width=8, num_classes=4)
    cbn = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    plain = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
    assert len(cbn) == 6 and plain == [G.out[0]]  # two per up-block; the output BN stays unconditional
    with torch.no_grad():  # classes further apart, as training would leave them (they start about 10 % apart)
        for m in cbn:
            m.scale.weight.mul_(5.0)
            m.shift.weight.mul_(5.0)
    G.eval()  # running statistics: each sample's image depends on its own label only
    z = torch.randn(4, 8)
    a, b = G(z, torch.tensor([0, 1, 2, 3])), G(z, torch.tensor([3, 1, 2, 3]))
    assert (a[0] - b[0]).abs().max() > 1e-2  # same z, other class: another image
    assert torch.equal(a[1:], b[1:])
    assert torch.equal(a, G(z, torch.tensor([0, 1, 2, 3])))
    with pytest.raises(ValueError, match="needs class labels"):
        G(z)
    with pytest.raises(ValueError, match="unconditional"):
        ResNetGenerator(z_dim=8, out_shape=(3, 32, 32), width=8)(z, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ConfigError, match="at least 2 classes"):
        ResNetGenerator(z_dim=8, out_shape=(3, 32, 32), width=8, num_classes=1)


@pytest.mark.parametrize("minibatch_std", [0, 2])
def test_projection_discriminator_adds_the_inner_product(minibatch_std: int) -> None:
    torch.manual_seed(0)
    D = ResNetDiscriminator(in_shape=(3, 32, 32), width=8, minibatch_std=minibatch_std, num_classes=5)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 4, 3])
    h = torch.relu(D.blocks(x))  # ReLU, then global sum pooling, by hand
    if minibatch_std:
        h = torch.cat([h, D.minibatch_std(h)[:, -1:]], dim=1)
    h = h.sum(dim=(2, 3))
    assert h.shape == (4, 8 + (1 if minibatch_std else 0)) and torch.allclose(D.features(x), h, atol=1e-5)
    term = torch.stack([D.projection.embed.weight[label] @ h[i] for i, label in enumerate(y.tolist())])
    assert torch.allclose(D(x, y) - D.linear(h).view(-1), term, atol=1e-4)
    assert term.abs().min() > 0  # the check has teeth: the class term is not zero
    with pytest.raises(ValueError, match="needs class labels"):
        D(x)
    with pytest.raises(ValueError, match="unconditional"):
        ResNetDiscriminator(in_shape=(3, 32, 32), width=8)(x, y)


def test_discriminator_norms_and_minibatch_std() -> None:
    def norms(norm: str) -> list[type]:
        D = ResNetDiscriminator(in_shape=(3, 32, 32), width=4, norm=norm)
        return [type(m) for m in D.modules() if isinstance(m, nn.BatchNorm2d | nn.GroupNorm)]

    # one in the optimized block, two in each of the other three
    assert norms("batch") == [nn.BatchNorm2d] * 7
    assert norms("layer") == [nn.GroupNorm] * 7
    assert norms("none") == []
    with pytest.raises(ConfigError, match="normalisation"):
        ResNetDiscriminator(in_shape=(3, 32, 32), norm="spectral")
    D = ResNetDiscriminator(in_shape=(3, 32, 32), width=4, minibatch_std=4)
    assert D.linear.in_features == 5 and D(torch.randn(8, 3, 32, 32)).shape == (8,)
    with pytest.raises(ConfigError, match="minibatch_std"):
        ResNetDiscriminator(in_shape=(3, 32, 32), minibatch_std=1)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2,), "use model=mlp"),
        ((1, 28, 28), "32x32 and 64x64"),
        ((1, 16, 16), "data.image_size"),
        ((3, 128, 128), "32x32 and 64x64"),
        ((2, 32, 32), "1 or 3"),
        ((1, 32, 64), "square"),
    ],
)
def test_refuses_shapes_it_cannot_build(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ResNetGenerator(z_dim=4, out_shape=shape)
    with pytest.raises(ConfigError, match=message):
        ResNetDiscriminator(in_shape=shape)


def test_refuses_bad_widths() -> None:
    with pytest.raises(ConfigError, match="model.generator.width must be a positive integer"):
        ResNetGenerator(z_dim=4, out_shape=(3, 32, 32), width=0)
    with pytest.raises(ConfigError, match="model.discriminator.width must be a positive integer"):
        ResNetDiscriminator(in_shape=(3, 32, 32), width=-1)


def test_resnet_trains_with_spectral_norm_and_attention(tmp_path: Path) -> None:
    """(Every loss trains with model=resnet in test_train.py's model x loss grid.)"""
    sn_and_attention = ["model.spectral_norm=true", "model.generator.attention=16", "model.discriminator.attention=8"]
    cfg = compose_cfg("model=resnet", "data=digits", "data.image_size=32", "loss=hinge", *sn_and_attention)
    assert cfg.model.generator.width == 8 and cfg.model.discriminator.norm == "none"  # debug=fast, the default
    train(cfg, tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4
    for net in ("G", "D"):
        assert all(torch.isfinite(p).all() for p in state[net].values() if p.is_floating_point())
    # attention sits after the 16x16 block of G and the first 8x8 block of D, and training moved its gamma
    assert state["G"]["blocks.2.gamma"].item() != 0.0 and state["D"]["blocks.2.gamma"].item() != 0.0
    assert any("parametrizations" in key for key in state["D"])  # spectral norm was applied by build.py
