"""Each stabiliser against a value computed by hand, and each one training a few steps and doing what it should."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.build import build, seed_everything
from ganlab.checkpoint import load_checkpoint
from ganlab.errors import ConfigError
from ganlab.losses.gan import NonSaturatingLoss
from ganlab.losses.hinge import HingeLoss
from ganlab.losses.lsgan import LSGANLoss
from ganlab.models.minibatch_std import MinibatchStd
from ganlab.stabilizers.augment import AugmentedDiscriminator, color, cutout, translation
from ganlab.stabilizers.critic_schedule import CriticSchedule
from ganlab.stabilizers.ema import EMA, ema_beta
from ganlab.stabilizers.lr_schedule import lr_factor
from ganlab.stabilizers.spectral_norm import apply_spectral_norm, largest_singular_values
from ganlab.train import train
from tests.conftest import compose_cfg, read_events

POINTS = ["model=mlp", "data=gaussians"]
QUIET = ["trainer.sample_every=1000", "trainer.checkpoint_every=1000", "trainer.log_every=1000"]  # only the end


# --- spectral normalisation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "tolerance"),
    [(POINTS, 0.02), (["data=digits", "data.image_size=16", "model.discriminator.norm=none"], 0.1)],
)
def test_spectral_norm_keeps_every_layer_of_d_at_singular_value_one(
    data: list[str], tolerance: float, tmp_path: Path
) -> None:
    cfg = compose_cfg(*data, "model.spectral_norm=true", "trainer.steps=30", *QUIET)
    train(cfg, tmp_path)
    parts = build(cfg)  # a D of the same architecture, to read the trained state into
    parts.D.load_state_dict(load_checkpoint(tmp_path / "checkpoints" / "last.pt")["D"])
    parts.D.eval()  # eval: the weight is normalised with the stored u, v (no further power iteration)
    sigmas = largest_singular_values(parts.D)
    assert len(sigmas) >= 3
    # One power iteration per forward pass gives a lower bound of sigma that tightens as training goes; the
    # N(0, 0.02) conv weights of DCGAN have close top singular values, so it tightens more slowly there.
    assert sigmas == pytest.approx([1.0] * len(sigmas), abs=tolerance)
    originals = [p for name, p in parts.D.named_parameters() if "original" in name]
    raw = [float(torch.linalg.matrix_norm(p.detach().flatten(1), ord=2)) for p in originals]
    assert max(abs(r - 1.0) for r in raw) > 0.3  # the weights themselves are far from it


def test_without_spectral_norm_a_fast_d_leaves_singular_value_one(tmp_path: Path) -> None:
    cfg = compose_cfg(*POINTS, "optimizer.lr_d=0.05", "trainer.steps=30")
    train(cfg, tmp_path)
    parts = build(cfg)
    parts.D.load_state_dict(load_checkpoint(tmp_path / "checkpoints" / "last.pt")["D"])
    assert max(largest_singular_values(parts.D)) > 1.2


def test_spectral_norm_covers_transposed_convolutions() -> None:
    net = apply_spectral_norm(nn.Sequential(nn.ConvTranspose2d(3, 5, 4), nn.Linear(4, 7)))
    for _ in range(30):
        net[0](torch.randn(1, 3, 2, 2)), net[1](torch.randn(2, 4))  # power iterations
    net.eval()
    assert largest_singular_values(net) == pytest.approx([1.0, 1.0], abs=1e-3)


def test_spectral_norm_is_torchs_own_and_survives_torch_compile() -> None:
    """The same numbers as torch.nn.utils.parametrizations.spectral_norm, eager and compiled; compiled, a D with a
    1x1 convolution called twice before its backward (real, then fake) used to fail in that backward."""
    from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

    def make() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))

    torch.manual_seed(0)
    ours = apply_spectral_norm(make())
    torch.manual_seed(0)
    reference = make()
    torch_spectral_norm(reference[0]), torch_spectral_norm(reference[3])
    compiled = copy.deepcopy(ours)
    compiled_call = torch.compile(compiled)
    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)
    for _ in range(3):
        for net, call in ((ours, ours), (reference, reference), (compiled, compiled_call)):
            net.zero_grad()
            (call(real).mean() - call(fake).mean()).backward()
    assert torch.equal(ours[0].weight, reference[0].weight)
    assert torch.equal(ours[0].parametrizations.weight[0]._v, reference[0].parametrizations.weight[0]._v)
    assert set(ours.state_dict()) == set(reference.state_dict())  # checkpoints keep torch's keys
    for mine, theirs in zip(compiled.parameters(), ours.parameters(), strict=True):
        assert torch.allclose(mine.grad, theirs.grad, atol=1e-5)


# --- R1 / R2 --------------------------------------------------------------------------------------------------


class Quadratic(nn.Module):
    """D(x) = sum(a * x^2) / 2 + c: grad_x D = a * x, so ||grad||^2 = sum(a^2 x^2) by hand."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.a * x**2).flatten(1).sum(1) + 0.3


def test_r1_and_r2_match_the_hand_computed_penalty() -> None:
    a = torch.tensor([0.5, -2.0])
    real = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    fake = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    D = Quadratic(a.clone())
    grad_sq_real = ((a * real) ** 2).sum(1).mean()  # (0.25 + 16 + 2.25 + 4) / 2 = 11.25
    grad_sq_fake = ((a * fake) ** 2).sum(1).mean()  # (0 + 4 + 1 + 16) / 2 = 10.5
    assert float(grad_sq_real) == pytest.approx(11.25) and float(grad_sq_fake) == pytest.approx(10.5)

    plain = HingeLoss()
    base, _ = plain.d_loss(D, real, fake)
    loss = HingeLoss(r1=10.0, r2=4.0, reg_every=4)
    total, stats = loss.d_loss(D, real, fake, regularize=True)
    assert float(stats["loss/r1"]) == pytest.approx(11.25)
    assert float(stats["loss/r2"]) == pytest.approx(10.5)
    # gamma / 2 x reg_every (lazy regularisation keeps the strength) x the penalty
    assert float(total) == pytest.approx(float(base) + 10.0 / 2 * 4 * 11.25 + 4.0 / 2 * 4 * 10.5)
    skipped, stats = loss.d_loss(D, real, fake, regularize=False)
    assert float(skipped) == pytest.approx(float(base)) and "loss/r1" not in stats

    # the penalty trains D: d(gamma/2 * mean sum(a^2 x^2)) / da = gamma * a * mean(x^2)
    D.zero_grad()
    HingeLoss(r1=1.0).d_loss(D, real, fake)[0].backward()
    D2 = Quadratic(a.clone())
    plain.d_loss(D2, real, fake)[0].backward()
    assert torch.allclose(D.a.grad - D2.a.grad, a * (real**2).mean(0))


def test_lazy_r1_runs_every_reg_every_d_steps(tmp_path: Path) -> None:
    cfg = compose_cfg(*POINTS, "loss.r1=1.0", "loss.reg_every=3", "trainer.n_critic=2", "trainer.steps=6")
    train(cfg, tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["d_updates"] == 12
    scalars, _ = read_events(tmp_path)
    # D updates 0..11 (two per G step), regularised at 0, 3, 6, 9; a log step shows each stat's mean over the D
    # updates since the last log that computed it: r1 from updates 0 and 3 at step 2, 6 at step 4, 9 at step 6.
    assert [s for s, _ in scalars["loss/r1"]] == [2, 4, 6]
    assert [s for s, _ in scalars["loss/D"]] == [2, 4, 6]


def test_penalty_weights_are_checked() -> None:
    with pytest.raises(ConfigError, match="loss.r1"):
        NonSaturatingLoss(r1=-1.0)
    with pytest.raises(ConfigError, match="reg_every"):
        NonSaturatingLoss(reg_every=0)


# --- label smoothing ------------------------------------------------------------------------------------------


def test_one_sided_label_smoothing_is_bce_with_a_real_target_of_one_minus_s() -> None:
    real_out, fake_out = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.3, -2.0, 1.0])
    smoothed = NonSaturatingLoss(label_smoothing=0.1).d_objective(real_out, fake_out)
    reference = F.binary_cross_entropy_with_logits(
        real_out, torch.full_like(real_out, 0.9)
    ) + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))  # fakes keep target 0
    assert float(smoothed) == pytest.approx(float(reference), rel=1e-6)
    assert float(NonSaturatingLoss().d_objective(torch.zeros(1), torch.zeros(1))) == pytest.approx(2 * math.log(2))
    ls = LSGANLoss(label_smoothing=0.2).d_objective(torch.tensor([1.0]), torch.tensor([0.5]))
    assert float(ls) == pytest.approx(0.5 * 0.2**2 + 0.5 * 0.25)
    with pytest.raises(ConfigError, match="label_smoothing"):
        NonSaturatingLoss(label_smoothing=1.0)


# --- EMA ------------------------------------------------------------------------------------------------------


def test_ema_after_k_updates_matches_the_closed_form() -> None:
    G = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        G.weight.fill_(2.0)
    ema = EMA(G, beta=0.9, start=3)
    for step in (1, 2, 3):  # before `start` the copy follows G
        with torch.no_grad():
            G.weight.fill_(float(step))
        ema.set_step(step)
        ema.update(G)
        assert float(ema.model.weight) == step
    with torch.no_grad():
        G.weight.fill_(10.0)  # then G holds still: the gap to it shrinks by the product of the betas
    for step in range(4, 104):
        ema.set_step(step)
        ema.update(G)
    betas = [min(0.9, t / (9 + t)) for t in range(1, 101)]
    assert betas[0] == pytest.approx(0.1) and betas[-1] == 0.9  # warm-up, then the configured decay
    expected = 10.0 + math.prod(betas) * (3.0 - 10.0)
    assert float(ema.model.weight) == pytest.approx(expected, rel=1e-5)
    assert not ema.model.weight.requires_grad


def test_ema_half_life_in_images() -> None:
    beta = ema_beta(None, half_life_images=6400, batch_size=64)
    assert beta**100 == pytest.approx(0.5)  # 100 steps of 64 images: the old weights count half
    assert ema_beta(0.999, None, 64) == 0.999 and ema_beta(None, None, 64) is None
    with pytest.raises(ConfigError, match="trainer.ema"):
        ema_beta(1.5, None, 64)


def test_ema_generator_is_checkpointed_pictured_and_sampled(tmp_path: Path) -> None:
    train(compose_cfg("trainer.ema=0.9", "trainer.steps=6"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["G_ema"].keys() == state["G"].keys()
    differs = [k for k in state["G"] if not torch.equal(state["G"][k], state["G_ema"][k])]
    assert differs  # an average, not a copy
    from ganlab.trained_generator import load_snapshot

    assert load_snapshot(str(tmp_path), torch.device("cpu")).generator == "G_ema"


# --- schedules ------------------------------------------------------------------------------------------------


def test_learning_rate_schedules_by_hand(tmp_path: Path) -> None:
    assert [lr_factor("linear", s, 4) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert [lr_factor("cosine", s, 4) for s in (0, 2, 4)] == pytest.approx([1.0, 0.5, 0.0])
    assert lr_factor("constant", 3, 4) == 1.0
    cfg = compose_cfg(
        "trainer.lr_schedule_g=linear", "trainer.lr_schedule_d=cosine", "trainer.log_every=1", "optimizer.lr_d=1e-3"
    )
    train(cfg, tmp_path)
    scalars, _ = read_events(tmp_path)
    assert [v for _, v in scalars["lr/G"]] == pytest.approx([2e-4 * f for f in (1.0, 0.75, 0.5, 0.25)])
    cos = [0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)]
    assert [v for _, v in scalars["lr/D"]] == pytest.approx([1e-3 * f for f in cos])


def test_wgan_critic_schedule_by_hand(tmp_path: Path) -> None:
    reference = CriticSchedule("wgan", n_critic=5)  # WGAN's main.py: Diters = 100 if gen_iterations < 25 or % 500
    assert [reference(s) for s in (1, 25, 26, 27, 500, 501, 502, 1001)] == [100, 100, 5, 5, 5, 100, 5, 100]
    cfg = compose_cfg(
        *POINTS,
        "trainer.n_critic_schedule=wgan",
        "trainer.n_critic=1",
        "trainer.critic_burst=3",
        "trainer.critic_burst_first=2",
        "trainer.critic_burst_every=3",
    )
    train(cfg, tmp_path)  # G steps 1..4 = iterations 0..3: 3, 3, 1, 3 D steps
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["d_updates"] == 10
    assert {float(s["step"]) for s in state["opt_D"]["state"].values()} == {10.0}
    with pytest.raises(ConfigError, match="n_critic_schedule"):
        CriticSchedule("bursty", 5)


# --- gradient clipping ----------------------------------------------------------------------------------------


def test_gradient_clipping_bounds_each_update(tmp_path: Path) -> None:
    common = [*POINTS, "optimizer=sgd", "optimizer.lr_g=1.0", "optimizer.lr_d=1.0", "trainer.steps=1"]
    train(compose_cfg(*common, "trainer.clip_grad_norm=0.001", "trainer.log_every=1"), tmp_path / "clipped")
    seed_everything(0)  # as train() does: the initial weights of the run
    seed_state = build(compose_cfg(*common))
    for net in ("G", "D"):
        start = getattr(seed_state, net).state_dict()
        end = load_checkpoint(tmp_path / "clipped" / "checkpoints" / "last.pt")[net]
        moved = torch.cat([(end[k] - start[k]).flatten() for k in start])
        assert float(moved.norm()) == pytest.approx(0.001, rel=1e-3)  # SGD, lr 1: the update is the clipped grad
    scalars, _ = read_events(tmp_path / "clipped")
    assert scalars["grad/D"][0][1] > 0.001 and scalars["grad/G"][0][1] > 0.001  # logged before clipping


# --- augmentation ---------------------------------------------------------------------------------------------


def _naive_shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(image)
    _, h, w = image.shape
    for i in range(h):
        for j in range(w):
            if 0 <= i + dy < h and 0 <= j + dx < w:
                out[:, i, j] = image[:, i + dy, j + dx]
    return out


def test_translation_is_a_zero_filled_shift_of_at_most_an_eighth() -> None:
    x = torch.randn(16, 3, 16, 16)
    torch.manual_seed(0)
    shifted = translation(x)
    for img, out in zip(x, shifted, strict=True):
        shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
        matches = [shift for shift in shifts if torch.equal(out, _naive_shift(img, *shift))]
        assert len(matches) == 1  # exactly one shift within +-2 (16 / 8) pixels explains the output
    assert len({tuple(float(v) for v in o.flatten()[:5]) for o in shifted}) > 1  # shifts differ per sample


def test_cutout_erases_a_half_side_square() -> None:
    torch.manual_seed(1)
    erased = cutout(torch.ones(200, 1, 16, 16)) == 0
    sizes = erased.flatten(1).sum(1)
    assert int(sizes.max()) == 64 and int(sizes.min()) >= 16  # 8 x 8 inside, clipped at the border
    rows_hit = erased.any(dim=3)  # the erased rows are one contiguous run per image
    for r in rows_hit[:, 0]:
        idx = r.nonzero().flatten()
        assert int(idx[-1] - idx[0] + 1) == len(idx)


def test_color_changes_brightness_per_sample_and_is_differentiable() -> None:
    torch.manual_seed(2)
    x = torch.zeros(64, 3, 4, 4, requires_grad=True)
    out = color(x)
    means = out.mean(dim=(1, 2, 3))
    assert float(means.min()) >= -0.5 and float(means.max()) <= 0.5 and float(means.std()) > 0.1
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_augmented_d_applies_the_policy_and_annealed_instance_noise() -> None:
    def identity(x: torch.Tensor) -> torch.Tensor:  # a D that returns its input, to see what it was given
        return x

    view = AugmentedDiscriminator(identity, [], 0.5, 10, (2,))
    torch.manual_seed(0)
    x = torch.zeros(20000, 2)
    assert float(view(x).std()) == pytest.approx(0.5, rel=0.02)
    view.set_step(6)
    assert view.noise_std == pytest.approx(0.25)
    assert float(view(x).std()) == pytest.approx(0.25, rel=0.02)
    view.set_step(11)
    assert view.noise_std == 0.0 and torch.equal(view(x), x)
    with pytest.raises(ConfigError, match="images"):
        AugmentedDiscriminator(identity, ["translation"], 0.0, None, (2,))
    with pytest.raises(ConfigError, match="rotate"):
        AugmentedDiscriminator(identity, ["rotate"], 0.0, None, (1, 8, 8))


def test_diffaugment_trains_g_through_the_augmentation(tmp_path: Path) -> None:
    cfg = compose_cfg("data.image_size=16", "augment.diffaugment=[color,translation,cutout]", "loss.r1=1.0")
    parts = build(cfg)
    fake = parts.G(torch.randn(4, parts.z_dim))
    g_loss, _ = parts.loss.g_loss(parts.D_view, fake)
    grads = torch.autograd.grad(g_loss, list(parts.G.parameters()))
    assert all(torch.isfinite(g).all() for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    train(cfg, tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4


# --- minibatch standard deviation ----------------------------------------------------------------------------


def test_minibatch_std_by_hand() -> None:
    x = torch.tensor([[0.0, 2.0], [1.0, 2.0], [4.0, 0.0], [1.0, 6.0]])
    out = MinibatchStd(group_size=2)(x)
    # groups by i % 2: {0, 2} and {1, 3}; population std per feature, averaged over features
    g0 = (torch.tensor([0.0, 4.0]).std(unbiased=False) + torch.tensor([2.0, 0.0]).std(unbiased=False)) / 2
    g1 = (torch.tensor([1.0, 1.0]).std(unbiased=False) + torch.tensor([2.0, 6.0]).std(unbiased=False)) / 2
    assert out[:, :2].equal(x)
    assert out[:, 2].tolist() == pytest.approx([float(g0), float(g1), float(g0), float(g1)], abs=1e-4)
    maps = MinibatchStd(4)(torch.randn(8, 3, 4, 4))
    assert maps.shape == (8, 4, 4, 4) and torch.equal(maps[:, 3], maps[:, 3, :1, :1].expand(8, 4, 4))


@pytest.mark.parametrize("data", [POINTS, ["data=digits", "data.image_size=16"]])
def test_minibatch_std_makes_a_score_depend_on_the_rest_of_the_batch(data: list[str]) -> None:
    parts = build(compose_cfg(*data, "model.discriminator.minibatch_std=4"))
    D = parts.D.eval()
    batch = parts.data.sample(8)
    changed = batch.clone()
    changed[1:] = changed[1:] * 3  # every sample but the first
    assert not torch.allclose(D(batch)[0], D(changed)[0])
    plain = build(compose_cfg(*data)).D.eval()
    assert torch.allclose(plain(batch)[0], plain(changed)[0])


# --- everything at once: composes, trains, resumes bitwise ------------------------------------------------------

EVERYTHING = [
    "loss.r1=1.0",
    "loss.reg_every=2",
    "loss.label_smoothing=0.1",
    "model.spectral_norm=true",
    "model.discriminator.minibatch_std=2",
    "trainer.ema=0.9",
    "trainer.lr_schedule_g=linear",
    "trainer.lr_schedule_d=cosine",
    "trainer.n_critic_schedule=wgan",
    "trainer.critic_burst=2",
    "trainer.critic_burst_first=1",
    "trainer.critic_burst_every=3",
    "trainer.clip_grad_norm=1.0",
    "augment.diffaugment=[color,translation,cutout]",
    "augment.instance_noise=0.1",
    "augment.instance_noise_steps=6",
    "data.image_size=16",
]


def test_all_stabilisers_together_resume_bitwise(tmp_path: Path) -> None:
    """Resuming from the step-4 checkpoint of an 8-step run ends where the straight run does: the EMA, the
    D-update count (lazy R1, bursts), the schedules and the augmentation draws all continue exactly."""
    common = [*EVERYTHING, "trainer.steps=8", "trainer.checkpoint_every=100", "trainer.sample_every=100"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(compose_cfg(*common, "trainer.keep_every=4"), straight)
    train(compose_cfg(*common, f"resume={straight / 'checkpoints' / 'step_0000004.pt'}"), resumed)
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["d_updates"] == b["d_updates"] == 2 + 1 + 1 + 2 + 1 + 1 + 2 + 1  # bursts at iterations 0, 3, 6
    for net in ("G", "G_ema", "D"):
        assert a[net].keys() == b[net].keys()
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key}"
        assert all(torch.isfinite(v).all() for v in a[net].values() if v.is_floating_point())
    scalars_a, _ = read_events(straight)
    scalars_b, _ = read_events(resumed)
    assert [(s, v) for s, v in scalars_a["lr/G"] if s > 4] == scalars_b["lr/G"]
