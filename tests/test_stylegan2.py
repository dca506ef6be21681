"""model=stylegan2: the FIR resampling, the modulated convolution, the mapping network's w_avg, truncation and style
mixing checked against values computed here by hand from the paper's formulas; every size builds and runs, with and
without labels, through R1's double backward (ganlab/models/resample.py, ganlab/models/stylegan2.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganlab.build import build
from ganlab.errors import ConfigError
from ganlab.models.resample import blur, downsample2d, upsample2d
from ganlab.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator, modulated_conv2d
from tests.conftest import compose_cfg
from tests.graph_emulator import RecordedGraph, Recorder

TINY = {"channel_base": 256, "channel_max": 32}
TINY_G = {"w_dim": 16, "mapping_layers": 3, **TINY}
F1D = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)


# ---- resampling -------------------------------------------------------------------------------------------------


def naive_upsample2d(x: torch.Tensor) -> torch.Tensor:
    """Zero insertion, 2 zeros padded before and 1 after, then correlation with 4 * outer([1,3,3,1]) / 64: loops."""
    b, c, h, w = x.shape
    k = torch.outer(F1D, F1D) / 64 * 4
    z = torch.zeros(b, c, 2 * h + 3, 2 * w + 3, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            z[:, :, 2 + 2 * i, 2 + 2 * j] = x[:, :, i, j]
    out = torch.zeros(b, c, 2 * h, 2 * w, dtype=x.dtype)
    for i in range(2 * h):
        for j in range(2 * w):
            for p in range(4):
                for q in range(4):
                    out[:, :, i, j] += k[p, q] * z[:, :, i + p, j + q]
    return out


def test_upsample2d_is_zero_insertion_then_the_filter_with_gain_4() -> None:
    x = torch.randn(2, 3, 3, 5, dtype=torch.float64)  # not square: the two axes must not be swapped
    up = upsample2d(x)
    assert up.shape == (2, 3, 6, 10)
    assert torch.allclose(up, naive_upsample2d(x), atol=1e-12)


def test_resampling_keeps_a_constant_image_away_from_the_borders() -> None:
    x = torch.full((2, 3, 8, 8), 2.5, dtype=torch.float64)
    up, down = upsample2d(x), downsample2d(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    assert torch.allclose(up[:, :, 1:-1, 1:-1], x.new_tensor(2.5), atol=1e-12)  # the outer ring reads padding
    assert torch.allclose(down[:, :, 1:-1, 1:-1], x.new_tensor(2.5), atol=1e-12)
    assert up[0, 0, 0, 0] < 2.5 and down[0, 0, 0, 0] < 2.5


def test_upsampling_then_downsampling_is_the_3_10_3_smoothing() -> None:
    """By hand: down(up(x))[i] = 2/64 * sum over the odd sums s = a + b of taps f_a f_b of x[i + (s - 3) / 2], and
    (f * f) = 1 6 15 20 15 6 1 at s = 1, 3, 5 gives (6, 20, 6) * 2/64 = (3, 10, 3) / 16 per axis."""
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    smooth = downsample2d(upsample2d(x))
    assert smooth.shape == x.shape
    k = torch.outer(*(2 * [torch.tensor([3.0, 10.0, 3.0], dtype=torch.float64) / 16]))
    expected = F.conv2d(x.reshape(6, 1, 8, 8), k[None, None]).reshape(2, 3, 6, 6)
    assert torch.allclose(smooth[:, :, 1:-1, 1:-1], expected, atol=1e-12)
    assert smooth.std() < x.std()  # a low-pass


def test_blur_then_a_centre_tap_stride_2_conv_is_downsample2d() -> None:
    """D's downsampling conv (blur pad 2, 3x3 stride 2, no padding) halves the size and stays aligned with the skip
    branch's downsample2d: with a kernel that is 1 at its centre, the two are the same everywhere."""
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    delta = torch.zeros(3, 1, 3, 3, dtype=torch.float64)
    delta[:, :, 1, 1] = 1
    strided = F.conv2d(blur(x, 2), delta, stride=2, groups=3)
    assert strided.shape == (2, 3, 8, 8)
    assert torch.allclose(strided, downsample2d(x), atol=1e-12)


# ---- modulated convolution --------------------------------------------------------------------------------------


def modulated_by_hand(x, weight, styles, demodulate: bool, padding: int) -> torch.Tensor:
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, :, None, None]  # eq. 1: w'_ijk = s_i w_ijk
        if demodulate:  # eq. 3: divided by sqrt(sum_ik w'^2 + eps), one number per output channel j
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        outs.append(F.conv2d(x[b : b + 1], w, padding=padding))
    return torch.cat(outs)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(("k", "padding"), [(3, 1), (3, 0), (1, 0)])
def test_modulated_conv2d_is_a_per_sample_conv_with_the_modulated_weight(
    demodulate: bool, fused: bool, k: int, padding: int
) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(5, 4, k, k, dtype=torch.float64)
    styles = torch.randn(3, 4, dtype=torch.float64)
    got = modulated_conv2d(x, weight, styles, demodulate=demodulate, fused=fused, padding=padding)
    assert torch.allclose(got, modulated_by_hand(x, weight, styles, demodulate, padding), atol=1e-10)


def test_demodulation_gives_unit_variance_outputs_for_any_styles() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 16, 64, 64)
    weight = torch.randn(16, 16, 3, 3)
    styles = torch.rand(4, 16) * 5 + 0.1  # styles far from 1: without demodulation the scale would follow them
    out = modulated_conv2d(x, weight, styles, padding=0, fused=False)
    assert abs(out.std().item() - 1) < 0.05
    per_channel = out.std(dim=(2, 3))
    assert ((per_channel - 1).abs() < 0.15).all(), per_channel
    raw = modulated_conv2d(x, weight, styles, demodulate=False, padding=0, fused=False)
    assert raw.std() > 3  # the check above is not trivially met


# ---- mapping, w_avg, truncation, style mixing -------------------------------------------------------------------


def mapping_by_hand(G: StyleGAN2Generator, z: torch.Tensor, lr_mul: float = 0.01) -> torch.Tensor:
    """Normalise z to unit second moment, then each layer with the equalized scale lr_mul / sqrt(fan_in) and
    lr_mul on the bias, and LeakyReLU(0.2) * sqrt(2)."""
    x = z / torch.sqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    for layer in G.mapping_net.layers:
        w, b = layer.weight, layer.bias
        x = F.linear(x, w * lr_mul / math.sqrt(w.shape[1]), b * lr_mul)
        x = F.leaky_relu(x, 0.2) * math.sqrt(2)
    return x


def small_g(size: int = 8, **kwargs: float) -> StyleGAN2Generator:
    torch.manual_seed(0)
    return StyleGAN2Generator(12, (3, size, size), **{**TINY_G, **kwargs})


@torch.no_grad()
def test_truncation_pulls_every_w_to_w_avg() -> None:
    G = small_g().eval()
    G.w_avg.copy_(torch.randn(16))
    z = torch.randn(5, 12)
    raw = mapping_by_hand(G, z)
    assert torch.allclose(G.styles(z, truncation=0.0), G.w_avg.expand(5, G.num_ws, 16), atol=1e-6)
    assert torch.allclose(G.styles(z), raw[:, None].expand(5, G.num_ws, 16), atol=1e-5)
    half = G.w_avg + 0.5 * (raw - G.w_avg)
    assert torch.allclose(G.styles(z, truncation=0.5), half[:, None].expand(5, G.num_ws, 16), atol=1e-5)


@torch.no_grad()
def test_w_avg_moves_by_one_lerp_in_training_and_not_in_eval() -> None:
    G = small_g(w_avg_beta=0.9).train()
    old = torch.randn(16)
    G.w_avg.copy_(old)
    z = torch.randn(6, 12)
    w = G.mapping(z)
    assert torch.allclose(w, mapping_by_hand(G, z), atol=1e-5)
    expected = 0.9 * old + 0.1 * mapping_by_hand(G, z).mean(dim=0)
    assert torch.allclose(G.w_avg, expected, atol=1e-6)
    moved = G.w_avg.clone()
    G.eval()
    G.mapping(z)
    G(z)
    assert torch.equal(G.w_avg, moved)


@torch.no_grad()
def test_the_mixing_latent_does_not_move_w_avg() -> None:
    G = small_g(w_avg_beta=0.5, style_mixing=1.0).train()
    z = torch.randn(6, 12)
    G.styles(z)
    assert torch.allclose(G.w_avg, 0.5 * mapping_by_hand(G, z).mean(dim=0), atol=1e-6)


def cutoff_of(ws: torch.Tensor, w: torch.Tensor) -> int:
    """The layer from which the batch's ws stop being w: the same for every sample; the layers from it on share
    one second w per sample, different from the first."""
    first = torch.isclose(ws, w[:, None], atol=1e-5).all(dim=2)  # (B, num_ws)
    cutoff = int(first.all(dim=0).sum())
    assert first[:, :cutoff].all() and not first[:, cutoff:].any(), first
    second = ws[:, cutoff:]
    assert torch.equal(second, second[:, :1].expand_as(second))
    return cutoff


@torch.no_grad()
def test_style_mixing_splits_the_layers_at_one_random_cutoff() -> None:
    G = small_g(32, style_mixing=1.0).train()
    assert G.num_ws == 8
    cutoffs = set()
    for _ in range(40):
        z = torch.randn(4, 12)
        cutoffs.add(cutoff_of(G.styles(z), mapping_by_hand(G, z)))
    assert cutoffs <= set(range(1, 8)) and len(cutoffs) >= 4, cutoffs  # always mixed, at a cutoff in [1, num_ws)

    G.style_mixing = 0.5
    draws = [cutoff_of(G.styles(z), mapping_by_hand(G, z)) for _ in range(40)]
    assert 8 in draws and any(c < 8 for c in draws)  # sometimes not mixed, sometimes mixed

    for G.style_mixing, mode in ((0.0, True), (1.0, False)):  # off, or in eval: every layer the same w
        G.train(mode)
        assert cutoff_of(G.styles(z), mapping_by_hand(G, z)) == 8


@pytest.mark.parametrize("num_classes", [None, 10])
def test_a_training_step_needs_no_host_sync_and_redraws_the_mixing_at_each_replay(num_classes: int | None) -> None:
    """Recorded as a CUDA graph would be (tests/graph_emulator.py fails on .item(), bool(tensor), nonzero): G's
    styles and forward, D's forward and the backward through both."""
    torch.manual_seed(0)
    G = StyleGAN2Generator(12, (3, 8, 8), num_classes, style_mixing=1.0, **TINY_G).train()
    D = StyleGAN2Discriminator((3, 8, 8), num_classes, **TINY)
    z = torch.randn(4, 12)
    y = None if num_classes is None else torch.arange(4)
    args = () if y is None else (y,)
    with Recorder(RecordedGraph()):  # the whole step, recorded once: no sync anywhere in it
        D(G(z, *args), *args).mean().backward()
    graph = RecordedGraph()
    with Recorder(graph):  # the styles alone, replayed (a replay of the whole step would only be slower)
        ws = G.styles(z, *args)
    cutoffs = set()
    for _ in range(10):
        graph.replay()  # the same z: layer 0 always holds its w; the cutoff and the second latent are new draws
        cutoffs.add(cutoff_of(ws, ws[:, 0]))
    assert len(cutoffs) >= 2, cutoffs  # of 1, 2, 3 (8x8: 4 ws)
    if y is None:
        assert torch.allclose(ws[:, 0], mapping_by_hand(G, z), atol=1e-5)


# ---- building, shapes, gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128, 256])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_every_size_builds_and_runs(size: int, num_classes: int | None) -> None:
    torch.manual_seed(0)
    channels = 1 if size == 16 else 3
    G = StyleGAN2Generator(12, (channels, size, size), num_classes, **TINY_G)
    D = StyleGAN2Discriminator((channels, size, size), num_classes, **TINY)
    assert G.num_ws == 2 * int(math.log2(size)) - 2
    z = torch.randn(2, 12)
    y = None if num_classes is None else torch.tensor([3, 7])
    with torch.no_grad():
        x = G(z) if y is None else G(z, y)
        score = D(x) if y is None else D(x, y)
    assert x.shape == (2, channels, size, size) and score.shape == (2,)
    assert torch.isfinite(x).all() and torch.isfinite(score).all()


@pytest.mark.parametrize("shape", [(3, 12, 12), (3, 2048, 2048), (3, 4, 4), (3, 16, 32), (2, 16, 16), (16,)], ids=str)
def test_an_unsupported_shape_is_a_config_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="stylegan2"):
        StyleGAN2Generator(12, shape, **TINY_G)
    with pytest.raises(ConfigError, match="stylegan2"):
        StyleGAN2Discriminator(shape, **TINY)


@pytest.mark.parametrize(
    ("knob", "value"),
    [("style_mixing", 1.5), ("w_avg_beta", -0.1), ("mapping_lr_mul", 0.0), ("w_dim", 0), ("mapping_layers", 0)],
)
def test_a_bad_knob_is_a_config_error_naming_it(knob: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"model.generator.{knob}"):
        StyleGAN2Generator(12, (3, 8, 8), **{**TINY_G, knob: value})


def test_labels_are_required_exactly_when_conditional() -> None:
    G, D = small_g(), StyleGAN2Discriminator((3, 8, 8), **TINY)
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(2, 12), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="needs class labels"):
        StyleGAN2Generator(12, (3, 8, 8), 10, **TINY_G)(torch.randn(2, 12))
    with pytest.raises(ValueError, match="unconditional"):
        D(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))


@torch.no_grad()
def test_the_label_changes_the_image_and_the_score() -> None:
    torch.manual_seed(0)
    G = StyleGAN2Generator(12, (3, 8, 8), 10, **TINY_G).eval()
    D = StyleGAN2Discriminator((3, 8, 8), 10, **TINY)
    z = torch.randn(1, 12).expand(2, 12)
    x = G(z, torch.tensor([1, 2]))
    assert not torch.allclose(x[0], x[1])
    same = x[:1].expand(2, -1, -1, -1)
    score = D(same, torch.tensor([1, 2]))
    assert not torch.isclose(score[0], score[1])


def test_initialisation_follows_the_paper() -> None:
    G = small_g(16)
    for name, p in G.named_parameters():
        if name.endswith("affine.bias"):  # styles start at 1: bias 1 (stored / lr_mul, which is 1 here)
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.endswith(("bias", "noise_strength")):
            assert torch.equal(p, torch.zeros_like(p)), name
    big = torch.cat([p.flatten() for n, p in G.synthesis_net.named_parameters() if n.endswith("weight")])
    assert abs(big.std().item() - 1) < 0.05 and abs(big.mean().item()) < 0.05  # N(0, 1): the scale is at run time
    mapping = torch.cat([layer.weight.flatten() for layer in G.mapping_net.layers])
    assert abs(mapping.std().item() - 100) < 5  # N(0, 1 / lr_mul^2)


@pytest.mark.parametrize("num_classes", [None, 10])
def test_gradients_flow_through_g_and_d_and_r1s_double_backward(num_classes: int | None) -> None:
    torch.manual_seed(0)
    G = StyleGAN2Generator(12, (3, 8, 8), num_classes, **TINY_G).train()
    D = StyleGAN2Discriminator((3, 8, 8), num_classes, **TINY)
    y = None if num_classes is None else torch.tensor([0, 3, 5, 9])
    args = () if y is None else (y,)
    fake = G(torch.randn(4, 12), *args)
    D(fake, *args).mean().backward()
    for net in (G, D):
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert G.mapping_net.layers[0].weight.grad.abs().sum() > 0 and G.synthesis_net.const.grad.abs().sum() > 0

    D.zero_grad()
    real = torch.randn(4, 3, 8, 8, requires_grad=True)
    (grad,) = torch.autograd.grad(D(real, *args).sum(), real, create_graph=True)
    grad.square().sum().backward()  # R1
    no_grad = {n for n, p in D.named_parameters() if p.grad is None}
    assert no_grad == {"epilogue.out.bias"}  # the one parameter dD/dx does not depend on
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)
    assert D.from_rgb.weight.grad.abs().sum() > 0


def test_the_1024_channel_schedule_is_config_fs() -> None:
    G = StyleGAN2Generator(512, (3, 1024, 1024))
    expected = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    assert G.synthesis_net.widths == expected
    assert G.synthesis_net.const.shape == (512, 4, 4)
    assert G.synthesis_net.blocks[-1].torgb.conv.weight.shape[:2] == (3, 32)
    assert G.num_ws == 18 and G.w_dim == 512 and G.z_dim == 512 and G.num_classes is None


def test_the_config_sets_both_networks_channel_schedule() -> None:
    cfg = compose_cfg("model=stylegan2", "model.channel_base=64", "model.channel_max=8", "model.generator.w_dim=8")
    parts = build(cfg)  # digits at 16x16
    assert parts.G.synthesis_net.widths == {4: 8, 8: 8, 16: 4}
    assert parts.D.from_rgb.weight.shape[:2] == (4, 1)
    assert parts.D.epilogue.fc.weight.shape == (8, 8 * 16)
    fake = parts.G(torch.randn(3, parts.z_dim))
    assert fake.shape == (3, 1, 16, 16) and parts.D(fake).shape == (3,)
