"""The training step's speed options (ganlab/speed.py, applied at build): they change how a step runs, not what it
computes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ganlab.build import build, seed_everything
from ganlab.checkpoint import load_checkpoint
from ganlab.divergence import NanWatch
from ganlab.errors import ConfigError
from ganlab.losses.wgan_gp import gradient_penalty
from ganlab.run_state import load_optimizer_state
from ganlab.speed import check_compile, check_precision, uses_channels_last
from ganlab.stabilizers.penalties import gradient_sq_norm, input_gradient
from ganlab.step import StatsMeter, TrainStep
from ganlab.train import train
from tests.conftest import compose_cfg, exits_2, read_events


def test_the_meter_averages_each_stat_over_the_steps_that_reported_it() -> None:
    meter = StatsMeter()
    meter.add({"loss/D": torch.tensor(1.0), "loss/r1": torch.tensor(4.0)})
    meter.add({"loss/D": torch.tensor(2.0)})
    meter.add({"loss/D": torch.tensor(float("inf"))}, keep=torch.tensor(False))  # a step the GradScaler skipped
    meter.add({"loss/D": torch.tensor(6.0)}, keep=torch.tensor(True))
    assert meter.means() == {"loss/D": 3.0, "loss/r1": 4.0}
    meter.reset()
    meter.add({"loss/D": torch.tensor(float("nan"))}, keep=torch.tensor(False))
    assert meter.means() == {}  # every step since the last log skipped: nothing to log, rather than 0/0
    meter.reset()
    assert meter.means() == {}


def test_logged_losses_are_the_means_of_the_steps_since_the_last_log(tmp_path: Path) -> None:
    cfg = compose_cfg("data=gaussians", "model=mlp", "trainer.steps=4", "trainer.log_every=4")
    per_step = []
    seed_everything(cfg.seed)
    parts = build(cfg)
    stepper = TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))
    for step in range(1, 5):
        stepper(step)
        per_step.append(stepper.meter.means()["loss/G"] * step - sum(per_step))  # undo the running mean
    train(cfg, tmp_path)
    scalars, _ = read_events(tmp_path)
    assert scalars["loss/G"] == [(4, pytest.approx(sum(per_step) / 4, rel=1e-5))]


def test_scaled_input_gradients_equal_plain_ones_and_survive_float16() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(3)
    out = (x * w).sum(dim=1) ** 2
    scale = torch.tensor(2.0**16)
    assert torch.allclose(input_gradient(out, x, scale), input_gradient(out, x), rtol=1e-6)
    assert gradient_sq_norm(out, x, scale).item() == pytest.approx(gradient_sq_norm(out, x).item(), rel=1e-6)
    # In float16, a gradient of 1e-8 flushes to zero on the way back (the smallest subnormal is 6e-8); scaled by
    # the loss scale first, it survives and is exact after unscaling: why penalties under precision=16 scale.
    x16 = torch.ones(2, 2, requires_grad=True)
    tiny = (x16.half() * 1e-4 * 1e-4).float().sum(dim=1)
    assert input_gradient(tiny, x16).abs().max() == 0
    tiny = (x16.half() * 1e-4 * 1e-4).float().sum(dim=1)
    scaled = input_gradient(tiny, x16, torch.tensor(2.0**10))  # (2^16 itself would overflow float16's 65504 here)
    assert torch.allclose(scaled, torch.full((2, 2), 1e-8), rtol=1e-2)


def test_gradient_penalty_with_a_loss_scale_matches_the_hand_value() -> None:
    w = torch.tensor([3.0, 4.0])  # a linear critic: every gradient is w, of norm 5, so the penalty is (5 - 1)^2

    def critic(x: torch.Tensor) -> torch.Tensor:
        return x @ w

    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(critic, real, fake, torch.tensor(1024.0)).item() == pytest.approx(16.0)
    assert gradient_penalty(critic, real, fake.bfloat16()).item() == pytest.approx(16.0)  # autocast's mixed dtypes


def test_precision_and_compile_options_are_checked() -> None:
    cpu = torch.device("cpu")
    assert check_precision(32, cpu) is None and check_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(ConfigError, match="precision=16 .* needs a CUDA device"):
        check_precision("16", cpu)
    with pytest.raises(ConfigError, match="must be 32, bf16 or 16"):
        check_precision("fp8", cpu)
    assert uses_channels_last(True, cpu, (2,)) is False and uses_channels_last(None, cpu, (2,)) is False
    assert uses_channels_last(None, torch.device("cuda"), (3, 16, 16)) is True
    assert uses_channels_last(False, torch.device("cuda"), (3, 16, 16)) is False


@pytest.mark.parametrize("capability", ["AVX512", "AVX2", "DEFAULT", "NO AVX"])
def test_channels_last_is_on_by_default_on_cpus_where_onednn_prefers_it(capability: str, monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    cpu = torch.device("cpu")
    assert uses_channels_last(None, cpu, (3, 16, 16)) is (capability in ("AVX2", "AVX512"))
    assert uses_channels_last(False, cpu, (3, 16, 16)) is False and uses_channels_last(True, cpu, (3, 16, 16))


def test_compile_without_a_cpu_compiler_exits_2_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torch._inductor import config as inductor

    check_compile(torch.device("cpu"))  # this machine has g++
    with inductor.patch({"cpp.cxx": (None, "no-such-compiler++")}):  # as if $CXX named a missing one
        err = exits_2(["train", "debug=fast", "trainer.compile=true", f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert "needs the C++ compiler torch.compile builds its kernels with" in err
    assert not (tmp_path / "run").exists()


def test_bf16_and_channels_last_train_close_to_float32(tmp_path: Path) -> None:
    finals = {}
    for name, options in {
        "fp32": ["trainer.channels_last=false"],
        "channels_last": ["trainer.channels_last=true"],
        "bf16": ["trainer.precision=bf16", "trainer.channels_last=false"],
    }.items():
        cfg = compose_cfg("data.image_size=16", "trainer.steps=3", "loss.r1=0.5", *options)
        train(cfg, tmp_path / name)
        state = load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")
        assert all(v.dtype == torch.float32 for k, v in state["G"].items() if v.is_floating_point())
        scalars, _ = read_events(tmp_path / name)
        assert all(math.isfinite(v) for _, v in scalars["loss/D"] + scalars["loss/r1"])
        finals[name] = state["G"]
    for key, value in finals["fp32"].items():
        if value.is_floating_point():
            assert torch.allclose(finals["channels_last"][key], value, atol=1e-4), key  # the same computation
            assert torch.allclose(finals["bf16"][key], value, atol=5e-2), key  # rounded to bfloat16 in places


@pytest.mark.slow  # Inductor compiles C++ kernels: 20 s with a fresh cache, as in a fresh clone
def test_compiled_steps_compute_what_eager_ones_do(tmp_path: Path) -> None:
    # On 2-D points with the MLP: compiling is quick there. WGAN-GP's D steps stay eager (double backward).
    finals = {}
    for name, options in {"eager": [], "compiled": ["trainer.compile=true"]}.items():
        cfg = compose_cfg(
            "data=gaussians", "model=mlp", "loss=wgan_gp", "trainer.steps=2", "trainer.n_critic=2", *options
        )
        train(cfg, tmp_path / name)
        finals[name] = load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")
    for net in ("G", "D"):
        for key, value in finals["eager"][net].items():
            assert torch.allclose(finals["compiled"][net][key], value, atol=1e-5), f"{net}.{key}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.precision=16", "needs a CUDA device"),
        ("trainer.precision=fp8", "must be 32, bf16 or 16"),
    ],
)
def test_bad_speed_options_exit_2_before_anything_is_written(
    override: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = exits_2(["train", "debug=fast", override, f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert message in err
    assert not (tmp_path / "run").exists()


def test_optimizers_use_their_fused_update_unless_told_not_to() -> None:
    parts = build(compose_cfg("+optimizer.discriminator.fused=false"))
    assert parts.opt_g.defaults["fused"] is True  # torch >= 2.4 has fused CPU kernels for Adam
    assert parts.opt_d.defaults["fused"] is False
    assert not build(compose_cfg("optimizer=rmsprop")).opt_g.defaults.get("fused")  # RMSprop has none


def test_a_checkpoint_of_the_plain_update_resumes_with_the_fused_one(tmp_path: Path) -> None:
    plain = ["+optimizer.generator.fused=false", "+optimizer.discriminator.fused=false"]
    train(compose_cfg("trainer.steps=2", *plain), tmp_path)
    train(compose_cfg("trainer.steps=4", f"resume={tmp_path}"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["opt_G"]["param_groups"][0]["fused"] is True
    assert all(s["step"].dtype == torch.float32 for s in state["opt_D"]["state"].values())


@pytest.mark.parametrize("saved_channels_last", [False, True])
def test_resumed_fused_adam_follows_its_parameters_memory_layout(saved_channels_last: bool) -> None:
    # The fused kernel pairs weights and moments by memory position: moments saved in one layout and loaded
    # onto parameters in the other must still update each weight with its own moments.
    layouts = {False: torch.contiguous_format, True: torch.channels_last}
    torch.manual_seed(0)
    start = torch.randn(4, 3, 2, 5)
    grads = [torch.randn(4, 3, 2, 5) for _ in range(3)]

    def adam(layout: torch.memory_format) -> tuple[torch.nn.Parameter, torch.optim.Adam]:
        param = torch.nn.Parameter(start.clone().contiguous(memory_format=layout))
        return param, torch.optim.Adam([param], lr=0.1, fused=True)

    straight, opt = adam(layouts[saved_channels_last])
    for grad in grads:
        straight.grad = grad.contiguous(memory_format=layouts[saved_channels_last])
        opt.step()

    first, opt = adam(layouts[saved_channels_last])
    for grad in grads[:2]:
        first.grad = grad.contiguous(memory_format=layouts[saved_channels_last])
        opt.step()
    resumed, opt_resumed = adam(layouts[not saved_channels_last])
    with torch.no_grad():
        resumed.copy_(first)
    load_optimizer_state(opt_resumed, opt.state_dict())
    resumed.grad = grads[2].contiguous(memory_format=layouts[not saved_channels_last])
    opt_resumed.step()
    torch.testing.assert_close(resumed.detach(), straight.detach())


def test_a_resume_that_switches_channels_last_continues_the_same_updates(tmp_path: Path) -> None:
    plain = ["+optimizer.generator.fused=false", "+optimizer.discriminator.fused=false"]
    finals = {}
    for name, update in {"fused": [], "plain": plain}.items():
        run = tmp_path / name
        train(compose_cfg("data.image_size=16", "trainer.steps=2", *update), run)
        train(
            compose_cfg(
                "data.image_size=16", "trainer.steps=4", "trainer.channels_last=true", *update, f"resume={run}"
            ),
            run,
        )
        finals[name] = load_checkpoint(run / "checkpoints" / "last.pt")["G"]
    for key, value in finals["plain"].items():  # the plain update indexes by element, whatever the layout
        if value.is_floating_point():
            torch.testing.assert_close(finals["fused"][key], value, atol=1e-6, rtol=1e-5, msg=key)


@pytest.mark.parametrize("loss", ["wgan_gp", "gan"])
def test_the_float16_path_with_its_scalers_trains_and_resumes_on_the_cpu(
    loss: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """precision=16 is refused on a CPU for users (slow, and what GPUs need it for), but its code — autocast to
    float16, a GradScaler per network, the gradient penalty and R1 under the scale, the scalers' state in the
    checkpoint — runs here too with torch's CPU GradScaler: checked without a GPU."""
    monkeypatch.setattr("ganlab.speed.check_precision", lambda precision, device: torch.float16)
    common = [f"loss={loss}", "data.image_size=16", "trainer.log_every=1"]
    if loss == "gan":  # R1 differentiates D twice, which BatchNorm cannot do in float16 (refused: next test)
        common += ["loss.r1=1.0", "model.discriminator.norm=none"]
    train(compose_cfg(*common, "trainer.steps=3"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["scalers"]["G"]["scale"] > 0 and state["scalers"]["D"]["scale"] > 0
    assert all(v.dtype == torch.float32 for v in state["G"].values() if v.is_floating_point())  # mixed, not half
    train(compose_cfg(*common, "trainer.steps=5", f"resume={tmp_path}"), tmp_path)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["step"] == 5 and last["scalers"]["D"]["_growth_tracker"] >= 0
    scalars, _ = read_events(tmp_path)
    penalty = "loss/gp" if loss == "wgan_gp" else "loss/r1"
    logged = [s for s, _ in scalars[penalty]]  # a step the GradScaler skipped (its scale backing off) is not
    assert set(logged) <= {1, 2, 3, 4, 5} and len(logged) >= 3 and logged[-1] == 5
    assert all(math.isfinite(v) for _, v in scalars["loss/D"] + scalars[penalty])


def test_float16_refuses_a_penalty_through_batchnorm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Measured on torch's float16 kernels: NativeBatchNormBackwardBackward gives NaN, so every D step would be
    # skipped by the GradScaler and D would never train.
    monkeypatch.setattr("ganlab.speed.check_precision", lambda precision, device: torch.float16)
    with pytest.raises(ConfigError, match="BatchNorm's second derivative.* overflows in float16"):
        train(compose_cfg("loss=gan", "loss.r1=1.0", "data.image_size=16"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
