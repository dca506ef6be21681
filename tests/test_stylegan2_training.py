"""StyleGAN2 in training and after it: path length regularisation checked by hand on a linear "generator", a
resume that is bitwise the straight run (style mixing, noise inputs, w_avg, lazy R1 and path length, EMA), and
the truncation trick in `ganlab sample` and `ganlab eval` (ganlab/stabilizers/path_length.py, ganlab/truncation.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from ganlab.cli import main
from ganlab.stabilizers.path_length import PathLengthRegularization
from ganlab.train import train
from tests.conftest import assert_same_networks, compose_cfg, exits_2, read_events, straight_and_resumed_from_step_4

NUM_WS, W_DIM, Z_DIM, SHAPE = 3, 4, 5, (2, 3, 3)


class LinearStyles(nn.Module):
    """w = z M for every layer; image = flatten(ws) A: its Jacobian in ws is A itself."""

    def __init__(self) -> None:
        super().__init__()
        self.M = nn.Parameter(torch.randn(Z_DIM, W_DIM))
        self.A = nn.Parameter(torch.randn(NUM_WS * W_DIM, math.prod(SHAPE)))

    def styles(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return (z @ self.M).unsqueeze(1).expand(-1, NUM_WS, -1)

    def synthesis(self, ws: Tensor) -> Tensor:
        return (ws.flatten(1) @ self.A).view(-1, *SHAPE)


def test_the_path_length_penalty_by_hand_on_a_linear_generator() -> None:
    torch.manual_seed(0)
    G = LinearStyles()
    pl = PathLengthRegularization(weight=2.0, every=4, decay=0.01, batch_shrink=2)
    pl.bind(SHAPE, "cpu")
    pl.bind_networks(G, nn.Identity())
    z = torch.randn(8, Z_DIM)
    expected_mean = 0.0
    for _ in range(2):  # the second call starts from the running mean the first left
        state = torch.get_rng_state()
        term, stats = pl.g_regularizer(G, z, None)
        torch.set_rng_state(state)  # the same draws, by hand: the fresh latents, then the image noise
        torch.randn(4, Z_DIM)
        noise = torch.randn(4, *SHAPE) / math.sqrt(3 * 3)  # y / sqrt(H W)
        with torch.no_grad():
            grads = (noise.flatten(1) @ G.A.T).view(4, NUM_WS, W_DIM)  # J_w^T y = A y for each sample
        lengths = grads.square().sum(dim=2).mean(dim=1).sqrt()
        expected_mean = expected_mean + 0.01 * (lengths.mean().item() - expected_mean)
        penalty = (lengths - expected_mean).square().mean().item()
        assert float(stats["G/path_length"]) == pytest.approx(expected_mean, rel=1e-5)
        assert float(stats["loss/path_length"]) == pytest.approx(penalty, rel=1e-5)
        assert float(term.detach()) == pytest.approx(2.0 * 4 * penalty, rel=1e-5)  # the weight, times the lazy interval
    term.backward()
    assert G.A.grad is not None and G.A.grad.abs().sum() > 0  # it trains the synthesis weights


def test_path_length_refuses_a_generator_without_a_w_space(capsys: pytest.CaptureFixture[str]) -> None:
    err = exits_2(["train", "debug=fast", "stabilizers=[path_length]"], capsys)
    assert "stabilizers=[path_length]" in err and "model=stylegan2" in err


STYLEGAN2 = [
    "model=stylegan2",
    "stabilizers=[path_length]",
    "loss.r1=1.0",
    "loss.reg_every=4",
    "trainer.ema_half_life=50",
]


def test_stylegan2_trains_logs_its_regularisers_and_resumes_bitwise(tmp_path: Path) -> None:
    straight, resumed = straight_and_resumed_from_step_4(STYLEGAN2, tmp_path)
    assert_same_networks(straight, resumed)
    assert torch.equal(straight["stabilizers"]["path_length"]["mean"], resumed["stabilizers"]["path_length"]["mean"])
    assert float(straight["stabilizers"]["path_length"]["mean"]) > 0
    assert not torch.equal(straight["G"]["w_avg"], torch.zeros_like(straight["G"]["w_avg"]))
    scalars, _ = read_events(tmp_path / "straight")
    assert {"loss/path_length", "G/path_length", "loss/r1"} <= set(scalars)


@pytest.fixture(scope="module")
def stylegan2_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("stylegan2")
    train(compose_cfg(*STYLEGAN2, "trainer.steps=2"), run)
    return run


def test_truncation_zero_draws_the_average_image_for_every_latent(stylegan2_run: Path, tmp_path: Path) -> None:
    for psi, name in ((0.0, "zero.npz"), (1.0, "one.npz"), (0.5, "half.npz")):
        main(["sample", f"run={stylegan2_run}", "n=6", f"out={tmp_path / name}", f"truncation={psi}"])
    zero, one, half = (np.load(tmp_path / n)["samples"] for n in ("zero.npz", "one.npz", "half.npz"))
    spread = lambda samples: float(np.abs(samples - samples.mean(axis=0)).max())  # noqa: E731
    assert spread(one) > 1e-3
    assert spread(zero) < 1e-6 < spread(half) < spread(one)  # eval mode's noise maps are fixed: one image


def test_drawing_samples_leaves_the_global_rng_alone_and_a_latent_gives_one_image(stylegan2_run: Path) -> None:
    """StyleGAN2's noise inputs are fixed maps in eval mode, so the pictures and evaluations drawn during training
    do not move the RNG that its batches use (a run's trajectory does not depend on trainer.sample_every)."""
    from ganlab.generation import generate
    from ganlab.trained_generator import load_snapshot

    G = load_snapshot(str(stylegan2_run), torch.device("cpu")).G
    for module in G.modules():  # strengths as if trained, so that the noise shows
        if hasattr(module, "noise_strength"):
            module.noise_strength.data.fill_(1.0)
    z = torch.randn(4, G.z_dim)
    state = torch.get_rng_state()
    first, second = generate(G, z), generate(G, z)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(first, second)
    # whatever the batch: the same image up to float rounding (oneDNN may pick another convolution kernel for
    # another batch size, so batches are not bitwise alike on every CPU)
    torch.testing.assert_close(generate(G, z[:2]), first[:2], rtol=1e-5, atol=1e-5)


def test_truncation_is_exact_in_w(stylegan2_run: Path) -> None:
    from ganlab.trained_generator import load_snapshot

    G = load_snapshot(str(stylegan2_run), torch.device("cpu")).G
    z = torch.randn(5, G.z_dim)
    with torch.no_grad():
        assert torch.allclose(G.styles(z, truncation=0.0), G.w_avg.expand(5, G.num_ws, -1))
        w = G.styles(z)
        assert torch.allclose(G.styles(z, truncation=0.7), G.w_avg + 0.7 * (w - G.w_avg), atol=1e-6)


def test_eval_records_the_truncation_in_metrics_json(stylegan2_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    main(["eval", f"run={stylegan2_run}", "n=200", f"out={out}", "truncation=0.7"])
    report = json.loads(out.read_text())
    assert report["truncation"] == 0.7
    assert {m["metric"] for m in report["metrics"]} >= {"fid_digits", "class_kl"}


def test_a_model_without_a_w_space_refuses_truncation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(compose_cfg("trainer.steps=2"), tmp_path / "dcgan")
    for command in ("sample", "eval"):
        err = exits_2([command, f"run={tmp_path / 'dcgan'}", "truncation=0.7"], capsys)
        assert "truncation=0.7: model=dcgan has no w space" in err
    main(["sample", f"run={tmp_path / 'dcgan'}", "n=4", f"out={tmp_path / 'x.png'}", "truncation=1"])  # psi 1: fine


@pytest.mark.parametrize("model", ["stylegan2", "progan"])
def test_spectral_norm_is_refused_for_the_equalized_models(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = exits_2(["train", "debug=fast", f"model={model}", "model.spectral_norm=true"], capsys)
    assert "model.spectral_norm=true" in err and "equalized learning rate" in err


@pytest.mark.parametrize("model", ["stylegan2", "progan"])
def test_class_conditional_through_the_condition_seam(model: str, tmp_path: Path) -> None:
    """model.conditional=true: the labels reach G (StyleGAN2's mapping, ProGAN's latent) and D (projection)."""
    train(compose_cfg(f"model={model}", "model.conditional=true", "trainer.steps=2"), tmp_path)
    main(["sample", f"run={tmp_path}", "n=4", "class=3", f"out={tmp_path / 'three.npz'}"])
    drawn = np.load(tmp_path / "three.npz")
    assert drawn["samples"].shape == (4, 1, 16, 16) and (drawn["labels"] == 3).all()
    from ganlab.trained_generator import load_snapshot

    G = load_snapshot(str(tmp_path), torch.device("cpu")).G
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        zero, again, seven = (
            G(z, torch.zeros(3, dtype=torch.long)),
            G(z, torch.zeros(3, dtype=torch.long)),
            G(z, torch.full((3,), 7)),
        )
    noise = (zero - again).abs().max()  # StyleGAN2's noise inputs alone
    assert (zero - seven).abs().max() > 10 * noise + 1e-6  # the same latents, another class: other images
