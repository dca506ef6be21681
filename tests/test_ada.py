"""ADA's controller (issue 21): p follows r_t = E[sign(D(real))] towards the target, at the paper's speed, every
4 D updates; p and its sums are in the checkpoint, so a resumed run continues exactly. The pipeline itself is
tests/test_ada_pipeline.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.errors import ConfigError
from ganlab.stabilizers.ada import AdaController
from tests.conftest import assert_same_networks, compose_cfg, read_events, straight_and_resumed_from_step_4

ADA = ["augment.ada=true", "augment.ada_kimg=0.05"]  # p moves 8 images x 4 / 50 = 0.64 per adjustment


def controller(target: float | None = 0.6, p: float = 0.5) -> AdaController:
    # 64 real images per D update, every 4 updates, 500k images from 0 to 1: 256 / 500 000 per adjustment
    return AdaController(["blit", "geom", "color"], p, target, 500.0, 4, 64, torch.device("cpu"))


@pytest.mark.parametrize(("sign", "direction"), [(0.9, 1.0), (0.2, -1.0), (-0.5, -1.0)])
def test_p_moves_towards_the_target_at_the_stated_speed_every_4_d_updates(sign: float, direction: float) -> None:
    ada = controller()
    for update in range(1, 9):
        ada.observe(torch.tensor(sign))
        ada.after_d_updates(update)
        adjustments = update // 4
        assert ada.p.item() == pytest.approx(0.5 + direction * adjustments * 64 * 4 / 500_000, abs=1e-7)
    assert ada.r_t.item() == pytest.approx(sign)
    assert ada.scalars() == {"augment/p": pytest.approx(ada.p.item()), "augment/r_t": pytest.approx(sign)}


def test_p_goes_from_0_to_1_in_ada_kimg_thousand_images_and_stays_in_range() -> None:
    ada = controller(p=0.0)
    adjustments = 0
    while ada.p.item() < 1.0:
        for _ in range(4):
            ada.observe(torch.tensor(1.0))
        adjustments += 1
        ada.after_d_updates(4 * adjustments)
    assert adjustments * 4 * 64 == pytest.approx(500_000, rel=0.001)  # 500k real images, as the paper's speed
    ada.observe(torch.tensor(1.0))
    ada.after_d_updates(4 * (adjustments + 1))
    assert ada.p.item() == 1.0
    low = controller(p=0.0)
    low.observe(torch.tensor(-1.0))
    low.after_d_updates(4)
    assert low.p.item() == 0.0


def test_a_fixed_p_without_a_target_and_bad_settings() -> None:
    ada = controller(target=None, p=0.3)
    ada.observe(torch.tensor(1.0))
    ada.after_d_updates(4)
    assert ada.p.item() == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="augment.ada_target"):
        controller(target=1.5)
    with pytest.raises(ConfigError, match="augment.ada_groups"):
        AdaController(["blur"], 0.0, 0.6, 500.0, 4, 64, torch.device("cpu"))


def test_ada_trains_logs_p_and_r_t_and_resumes_exactly(tmp_path: Path) -> None:
    straight, resumed = straight_and_resumed_from_step_4(ADA, tmp_path)
    assert_same_networks(straight, resumed, ("G", "D"))
    for key in ("p", "sign_sum", "count", "r_t"):
        assert torch.equal(straight["ada"][key], resumed["ada"][key]), key
    scalars, _ = read_events(tmp_path / "straight")
    p = [value for _, value in scalars["augment/p"]]
    assert any(value > 0 for value in p) and all(0 <= value <= 1 for value in p)
    assert {"augment/r_t", "D/real_sign"} <= set(scalars)


def test_r_t_is_logged_without_augmentation_and_ada_refuses_points(tmp_path: Path) -> None:
    from ganlab.build import build
    from ganlab.train import train

    train(compose_cfg("trainer.steps=2"), tmp_path)
    scalars, _ = read_events(tmp_path)
    assert "D/real_sign" in scalars and "augment/p" not in scalars
    assert -1 <= scalars["D/real_sign"][0][1] <= 1
    with pytest.raises(ConfigError, match="augment.ada augments images"):
        build(compose_cfg(*ADA, "data=gaussians", "model=mlp"))


@pytest.mark.parametrize(
    "losses",
    [
        pytest.param(["gan", "wgan_gp"], id="penalties"),
        pytest.param(["minimax", "lsgan", "hinge", "wgan"], id="others", marks=pytest.mark.slow),
    ],
)
def test_ada_composes_with_every_loss_and_with_penalties_through_the_augmentation(
    losses: list[str], tmp_path: Path
) -> None:
    """p = 1, so that every transformation acts on every image: R1 (with gan) and the gradient penalty
    differentiate D twice through the resampling."""
    from ganlab.train import train

    fixed = ["augment.ada=true", "augment.ada_p=1.0", "augment.ada_target=null", "trainer.steps=1"]
    for loss in losses:
        extra = ["loss.r1=1.0"] if loss == "gan" else []
        train(compose_cfg(*fixed, f"loss={loss}", *extra), tmp_path / loss)
        scalars, _ = read_events(tmp_path / loss)
        assert all(torch.isfinite(torch.tensor(v)) for tag in ("loss/D", "loss/G") for _, v in scalars[tag]), loss
        assert scalars["augment/p"][-1][1] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "resnet", "progan", "stylegan2", "dcgan conditional"])
def test_ada_composes_with_every_image_model(model: str, tmp_path: Path) -> None:
    from ganlab.train import train

    name, *rest = model.split()
    # 8 images x 4 D updates / 320: p moves by 0.1 at step 4, up or down as r_t says
    overrides = [f"model={name}", "augment.ada=true", "augment.ada_p=0.5", "augment.ada_kimg=0.32", "trainer.steps=4"]
    if name in ("resnet", "stylegan2", "progan"):
        overrides.append("data.image_size=32" if name == "resnet" else "data.image_size=16")
    if rest:
        overrides.append("model.conditional=true")
    train(compose_cfg(*overrides), tmp_path)
    scalars, _ = read_events(tmp_path)
    assert abs(scalars["augment/p"][-1][1] - 0.5) == pytest.approx(0.1)
    assert all(torch.isfinite(torch.tensor(v)) for _, v in scalars["loss/D"])


def test_g_learns_through_every_transformation() -> None:
    """At p = 1 every image is flipped, rotated, scaled, translated and recoloured on its way to D: G's
    gradients come through all of it, finite and nonzero in every layer."""
    from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
    from ganlab.stabilizers.ada_pipeline import AugmentPipeline

    torch.manual_seed(0)
    G, D = DCGANGenerator(8, (3, 16, 16), width=8), DCGANDiscriminator((3, 16, 16), width=8)
    pipeline = AugmentPipeline(["blit", "geom", "color"], 1.0, "cpu")
    D(pipeline(G(torch.randn(4, 8)))).mean().backward()
    for name, param in G.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, name


def _rank_adjusts_p(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ada = controller()
        ada.observe(torch.tensor(1.0 if rank == 0 else 0.0))  # rank 0's D calls every real real, rank 1's half
        ada.after_d_updates(4)
        torch.save({"p": ada.p, "r_t": ada.r_t}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes importing torch: seconds the default suite keeps for others
def test_under_torchrun_p_follows_r_t_over_every_ranks_real_images(tmp_path: Path) -> None:
    """Two gloo processes: r_t is the mean over both ranks' sums (0.5, below the target: p falls on both), not
    each rank's own (rank 0 alone would raise p)."""
    import torch.multiprocessing as mp

    mp.spawn(_rank_adjusts_p, args=(2, str(tmp_path / "init"), str(tmp_path / "out")), nprocs=2)
    results = [torch.load(tmp_path / f"out.{rank}", weights_only=True) for rank in range(2)]
    for result in results:
        assert result["r_t"].item() == pytest.approx(0.5)
        assert result["p"].item() == pytest.approx(0.5 - 64 * 4 / 500_000)
