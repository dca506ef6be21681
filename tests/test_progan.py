"""model=progan: the fade-in's endpoints, the schedule in images, the drift term, and a resume in the middle of a fade
that is bitwise the run that never stopped (ganlab/models/progan.py, ganlab/growth.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ganlab.build import build
from ganlab.checkpoint import load_checkpoint
from ganlab.errors import ConfigError
from ganlab.growth import GrowthSchedule, GrowthState
from ganlab.losses.wgan_gp import WGANGPLoss
from ganlab.models.progan import ProGANDiscriminator, ProGANGenerator, fade
from ganlab.train import train
from tests.conftest import assert_same_networks, compose_cfg, read_events, straight_and_resumed_from_step_4

SMALL = {"channel_base": 128, "channel_max": 16}
# batch 8: steps 1-3 at 4x4; steps 4-6 fade 8x8 in (alpha 0, 1/3, 2/3); 7-9 at 8x8; step 10 fades 16x16 in
SCHEDULE = ["trainer.grow.stable_images=24", "trainer.grow.fade_images=24"]


def grown(net: torch.nn.Module, phase: int, fading: bool = False, alpha: float = 1.0) -> torch.nn.Module:
    net.set_growth(phase, fading, alpha)
    return net


def test_the_generators_fade_in_starts_at_the_previous_resolution_and_ends_at_the_new_block() -> None:
    torch.manual_seed(0)
    G = ProGANGenerator(8, (3, 32, 32), **SMALL).eval()
    z = torch.randn(5, 8)
    with torch.no_grad():
        previous = grown(G, 1)(z)  # 8x8, nearest-upsampled to 32x32
        start = grown(G, 2, True, 0.0)(z)
        end = grown(G, 2, True, 1.0)(z)
        new = grown(G, 2)(z)  # 16x16 without fading
        middle = grown(G, 2, True, 0.25)(z)
    assert previous.shape == new.shape == (5, 3, 32, 32)
    assert torch.equal(start, previous)
    assert torch.equal(end, new)
    assert torch.allclose(middle, 0.75 * previous + 0.25 * new, atol=1e-6)
    # the previous phase's output is blocky at 8x8: every 4x4 patch of the 32x32 picture is one value
    assert torch.equal(previous, F.interpolate(previous[:, :, ::4, ::4], scale_factor=4, mode="nearest"))


def test_a_fade_between_float32_and_bfloat16_is_taken_in_float32() -> None:
    """Under CUDA's autocast the upsampled old image is float32 and the new block's is bfloat16 (upsampling is on
    autocast's float32 list there, not on the CPU's): the fade must take both, with its endpoints exact."""
    old, new = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8).bfloat16()
    assert torch.equal(fade(old, new, torch.tensor(0.0)), old)
    assert torch.equal(fade(old, new, torch.tensor(1.0)), new.float())
    middle = fade(old, new, torch.tensor(0.25))
    assert middle.dtype == torch.float32
    torch.testing.assert_close(middle, 0.75 * old + 0.25 * new.float())
    assert fade(new, new, torch.tensor(0.5)).dtype == torch.bfloat16  # one dtype: kept


def test_the_discriminators_fade_in_starts_at_the_previous_resolution_and_ends_at_the_new_block() -> None:
    torch.manual_seed(0)
    D = ProGANDiscriminator((1, 16, 16), **SMALL).eval()
    x = torch.randn(8, 1, 16, 16)
    with torch.no_grad():
        previous = grown(D, 1)(x)
        start = grown(D, 2, True, 0.0)(x)
        end = grown(D, 2, True, 1.0)(x)
        new = grown(D, 2)(x)
    assert torch.allclose(start, previous, atol=1e-5)  # average pooling in one go or in two: rounding apart
    assert torch.equal(end, new)


def test_during_a_fade_the_reals_are_blended_from_the_previous_resolution_to_their_own() -> None:
    """The paper's appendix A: lerp(upsample(downsample(x)), x, alpha) at the phase's resolution, reals only."""
    D = ProGANDiscriminator((1, 16, 16), **SMALL)
    x = torch.randn(2, 1, 16, 16)
    at_8 = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")  # x seen at 8x8
    at_4 = F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="nearest")
    assert torch.allclose(grown(D, 1, True, 0.0).fade_reals(x), at_4, atol=1e-6)
    assert torch.allclose(grown(D, 1, True, 0.25).fade_reals(x), 0.75 * at_4 + 0.25 * at_8, atol=1e-6)
    assert torch.allclose(grown(D, 2, True, 1.0).fade_reals(x), x, atol=1e-6)
    assert torch.equal(grown(D, 2).fade_reals(x), x)  # no fade: the batch as it is


def test_a_phase_sees_the_data_at_its_own_resolution() -> None:
    """At 4x4, D's verdict depends only on each 4x4 cell's mean: the real images are downsampled to the phase."""
    torch.manual_seed(0)
    D = grown(ProGANDiscriminator((1, 16, 16), **SMALL).eval(), 0)
    x = torch.randn(4, 1, 16, 16)
    detail = torch.randn(4, 1, 16, 16)
    detail -= F.interpolate(F.avg_pool2d(detail, 4), scale_factor=4, mode="nearest")  # zero mean per 4x4 cell
    with torch.no_grad():
        assert torch.allclose(D(x), D(x + detail), atol=1e-5)
        assert not torch.allclose(grown(D, 2)(x), D(x + detail), atol=1e-3)


class _Net(torch.nn.Module):
    num_phases, resolutions = 3, [4, 8, 16]

    def set_growth(self, phase: int, fading: bool, alpha: float) -> None:
        self.state = (phase, fading, alpha)


def test_the_schedule_counts_images_shown() -> None:
    schedule = GrowthSchedule([_Net()], fade_images=24, stable_images=24, batch_size=8)
    states = [schedule.at(step) for step in range(1, 14)]
    assert states[:3] == [GrowthState(0, False, 1.0)] * 3
    assert states[3:6] == [GrowthState(1, True, 0.0), GrowthState(1, True, 1 / 3), GrowthState(1, True, 2 / 3)]
    assert states[6:9] == [GrowthState(1, False, 1.0)] * 3
    assert states[9] == GrowthState(2, True, 0.0)
    assert states[12] == GrowthState(2, False, 1.0)  # the last phase: on at alpha 1 to the end
    assert schedule.at(10_000) == GrowthState(2, False, 1.0)
    no_fade = GrowthSchedule([_Net()], fade_images=0, stable_images=16, batch_size=8)
    assert [no_fade.at(s).phase for s in range(1, 8)] == [0, 0, 1, 1, 2, 2, 2]
    with pytest.raises(ConfigError, match="trainer.grow.stable_images"):
        GrowthSchedule([_Net()], fade_images=0, stable_images=0, batch_size=8)


def test_the_drift_term_adds_eps_times_the_mean_square_of_the_real_scores() -> None:
    real, fake = torch.tensor([1.0, -3.0]), torch.tensor([0.5, 2.5])
    plain = WGANGPLoss().d_objective(real, fake)
    drifted = WGANGPLoss(drift=0.001).d_objective(real, fake)
    assert plain.item() == pytest.approx((0.5 + 2.5) / 2 - (1.0 - 3.0) / 2)
    assert drifted.item() == pytest.approx(plain.item() + 0.001 * (1.0 + 9.0) / 2)


def test_after_networks_are_reloaded_the_schedule_sets_the_step_s_growth_again() -> None:
    """A rollback reloads last.pt's networks (their phase and alpha with them): the schedule must not skip the
    next step's state because it equals the last one it applied before the rollback."""
    G = ProGANGenerator(8, (1, 16, 16), **SMALL)
    schedule = GrowthSchedule([G], fade_images=24, stable_images=24, batch_size=8)
    schedule.apply(8)  # 8x8, stable: the last state applied before the rollback
    mid_fade = G.state_dict() | {"fading": torch.tensor(True), "alpha": torch.tensor(0.5)}  # last.pt's networks
    G.load_state_dict(mid_fade)
    schedule.apply(8)
    assert G._fading  # the cached state hides the reload...
    schedule.forget()  # ... which run_state.py's _load_networks tells it about
    schedule.apply(8)
    assert (G._phase, G._fading, float(G.alpha)) == (1, False, 1.0)


def test_model_progan_brings_wgan_gp_with_the_papers_drift_and_one_critic_step() -> None:
    cfg = compose_cfg("model=progan")
    assert cfg.loss._target_.endswith("WGANGPLoss") and cfg.loss.drift == 0.001 and cfg.loss.n_critic == 1
    assert compose_cfg("model=progan", "loss=hinge").loss._target_.endswith("HingeLoss")
    assert compose_cfg("model=dcgan", "loss=wgan_gp").loss.drift == 0.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """A 10-step run (log every 2 steps) and the same run resumed from its step-4 checkpoint, in the middle of
    the 8x8 fade; both cross into the 8x8 stable phase and the 16x16 fade."""
    tmp = tmp_path_factory.mktemp("progan")
    straight, resumed = straight_and_resumed_from_step_4(["model=progan", *SCHEDULE, "trainer.ema=0.9"], tmp)
    return tmp, straight, resumed


def test_a_resume_in_the_middle_of_a_fade_and_across_phases_is_bitwise_the_straight_run(runs: tuple) -> None:
    tmp, straight, resumed = runs
    assert_same_networks(straight, resumed)
    assert straight["growth"] == resumed["growth"] == {"phase": 2, "resolution": 16, "fading": True, "alpha": 0.0}
    middle = load_checkpoint(tmp / "straight" / "checkpoints" / "step_0000004.pt")
    assert middle["growth"] == {"phase": 1, "resolution": 8, "fading": True, "alpha": 0.0}
    assert int(middle["G"]["phase"]) == int(middle["D"]["phase"]) == 1 and bool(middle["G_ema"]["fading"])


@pytest.mark.parametrize(
    "changed, says",
    [
        (["trainer.grow.stable_images=10000"], "put step 4 at 4x4, but the checkpoint was saved at 8x8 fading in"),
        (["trainer.grow.stable_images=16"], "put step 4 at 8x8 fading in (alpha 0.333), but"),
        (["trainer.batch_size=4"], "put step 4 at 4x4, but"),
    ],
)
def test_a_resume_whose_schedule_moves_the_checkpoint_s_step_is_refused(
    runs: tuple, changed: list[str], says: str, tmp_path: Path
) -> None:
    """Resuming with other phase lengths used to put the run back at 4x4 (its grown layers unused) and exit 0."""
    checkpoint = runs[0] / "straight" / "checkpoints" / "step_0000004.pt"
    resume = ["model=progan", *SCHEDULE, "trainer.ema=0.9", "trainer.steps=6", f"resume={checkpoint}"]
    train(compose_cfg(*resume), tmp_path / "same")  # the schedule it trained with continues
    with pytest.raises(ConfigError, match="a growing run continues where it stopped") as refused:
        train(compose_cfg(*resume, *changed), tmp_path / "moved")
    assert says in str(refused.value)


def test_tensorboard_shows_the_resolution_and_alpha_and_the_grid_is_at_the_final_size(runs: tuple) -> None:
    tmp = runs[0]
    scalars, _ = read_events(tmp / "straight")
    assert [v for _, v in scalars["grow/resolution"]] == [4, 8, 8, 8, 16]  # steps 2, 4, 6, 8, 10
    assert [v for _, v in scalars["grow/alpha"]] == pytest.approx([1, 0, 2 / 3, 1, 0])
    assert all(math.isfinite(v) for _, v in scalars["loss/D"])
    from PIL import Image

    with Image.open(tmp / "straight" / "samples" / "step_0000002.png") as picture:
        width = picture.size[0]
    assert width >= 2 * 16  # 4x4 samples shown at 16x16 in a grid of at least two columns


def test_a_generator_loaded_from_a_checkpoint_draws_at_the_phase_it_was_saved_at(runs: tuple) -> None:
    state = load_checkpoint(runs[0] / "straight" / "checkpoints" / "step_0000004.pt")
    G = ProGANGenerator(8, (1, 16, 16), **SMALL)
    G.load_state_dict(state["G"])
    assert (G._phase, G._fading, float(G.alpha)) == (1, True, 0.0)
    assert G.resolution == 8


def test_a_run_too_short_to_reach_the_data_resolution_is_told_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="ganlab"):
        build(compose_cfg("model=progan"))  # 4 steps of 8 images against the default 800k-image phases
    assert "reaches 16x16 only after 3200000" in caplog.text and "will end at 4x4" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="ganlab"):
        build(compose_cfg("model=progan", "trainer.grow.stable_images=8", "trainer.grow.fade_images=8"))
    assert "growth schedule" not in caplog.text


def test_progan_refuses_a_discriminator_that_does_not_grow() -> None:
    cfg = compose_cfg("model=progan", "model.discriminator._target_=ganlab.models.dcgan.DCGANDiscriminator")
    cfg.model.discriminator = {"_target_": "ganlab.models.dcgan.DCGANDiscriminator", "width": 8, "norm": "layer"}
    with pytest.raises(ConfigError, match="grows with it"):
        build(cfg)
