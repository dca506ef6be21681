"""CUDA paths, run with `pytest -m gpu` on a machine with a GPU (skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.train import train
from tests.conftest import assert_same_networks, compose_cfg, read_events, straight_and_resumed_from_step_4
from tests.step_families import FAMILIES, PROGAN, SIMGAN, SRGAN, STYLEGAN2

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("loss", ["gan", "wgan_gp"])
def test_train_and_resume_on_cuda(loss: str, tmp_path: Path) -> None:
    common = [f"loss={loss}", "trainer.device=auto", "trainer.log_every=1"]
    train(compose_cfg(*common, "trainer.steps=4"), tmp_path)
    train(compose_cfg(*common, "trainer.steps=8", f"resume={tmp_path}"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 8 and state["rng"]["cuda"]  # the CUDA generator states are saved
    assert [s for s, _ in read_events(tmp_path)[0]["loss/D"]] == list(range(1, 9))


def test_data_lives_on_the_device() -> None:
    from ganlab.build import build

    parts = build(compose_cfg("trainer.device=cuda"))
    assert parts.data.sample(4).device.type == "cuda"
    assert next(parts.G.parameters()).device.type == "cuda"


@pytest.mark.parametrize(
    "options",
    [
        ["trainer.precision=32"],
        ["trainer.precision=bf16", "loss.r1=1.0"],
        ["trainer.precision=16", "loss=wgan_gp", "model.discriminator.norm=layer"],
        ["trainer.compile=true", "trainer.precision=bf16"],
        ["trainer.cuda_graphs=true", "loss.r1=1.0", "loss.reg_every=2"],  # three graphs, replayed
    ],
)
def test_steps_never_wait_for_the_device(options: list[str]) -> None:
    """CUDA's sync debug mode raises on any host-device synchronisation inside the timed steps. float16's
    GradScaler reads found_inf in step() unless the optimizer is fused: Adam is made fused there."""
    from ganlab.build import build, seed_everything
    from ganlab.divergence import NanWatch
    from ganlab.step import TrainStep

    cfg = compose_cfg("trainer.device=cuda", *options)
    seed_everything(0)
    parts = build(cfg)
    stepper = TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))
    # warm-up: lazy initialisation, compilation and the graphs' captures (by step 6) may synchronise
    warm_up = 6 if "trainer.cuda_graphs=true" in options else 3
    for step in range(1, warm_up + 1):
        stepper(step)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(warm_up + 1, warm_up + 4):
            stepper(step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    values = stepper.meter.means()
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values()), values
    if "trainer.cuda_graphs=true" in options:
        assert set(stepper.graphs.captured) == {("D", True), ("D", False), ("G",)}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_families_steps_are_captured_and_never_wait_for_the_device(name: str) -> None:
    """Every part of their steps is captured as a CUDA graph (each lazy regulariser's, each growth phase's, G's
    pre-training; the low-res inputs made on the device, the perceptual term and the history buffer inside), and
    the replays make no host-device synchronisation."""
    options = FAMILIES[name]
    stepper = graphed_stepper("trainer.cuda_graphs=true", *options)
    for step in range(1, 12):  # every part seen 3 times: 2 eager warm-ups, then its capture
        stepper(step)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(12, 16):
            stepper(step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    values = stepper.meter.means()
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values()), values
    captured = stepper.graphs.captured
    if name == "progan":
        assert any(len(key) > 2 and key[0] == "G" for key in captured)  # a growth phase's own graph
    else:
        assert {"stylegan2": ("G", "reg", 0), "srgan": ("G", "pretrain"), "simgan": ("G",)}[name] in captured
    if name == "simgan":
        assert stepper.parts.history.filled.item() == 16


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_families_train_in_bfloat16(name: str) -> None:
    """CUDA's autocast keeps some ops in float32 that the CPU's runs in bfloat16 (nearest upsampling among them),
    so a family that mixes their outputs (ProGAN's fade-in once did) fails on CUDA alone. Through every growth
    phase and regulariser, captured."""
    stepper = graphed_stepper("trainer.precision=bf16", *FAMILIES[name])
    for step in range(1, 10):
        stepper(step)
    values = stepper.meter.means()
    assert values and all(torch.isfinite(torch.tensor(v)) for v in values.values()), values


def test_an_evaluation_during_training_leaves_the_gpus_random_state_alone() -> None:
    """SimGAN's refinement test trains a classifier from a fixed seed between the run's steps: it must not
    restart the CUDA generator that draws the run's batches and noise (torch.manual_seed reseeds every GPU)."""
    from ganlab.data.unpaired import UnpairedData
    from ganlab.evaluation import make_evaluator

    evaluator = make_evaluator(UnpairedData(synthetic_options={"n": 200}), None, "digits", n=200, device="cuda")
    torch.cuda.manual_seed(1234)
    torch.randn(8, device="cuda")  # an offset of its own, that a reseed would lose
    before = torch.cuda.get_rng_state()
    evaluator(Identity(), 1)
    assert torch.equal(torch.cuda.get_rng_state(), before)


class Identity(torch.nn.Module):
    """A refiner that changes nothing."""

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return condition


def test_a_streaming_image_folder_trains_on_cuda(tmp_path: Path) -> None:
    """What only CUDA turns on in the streaming path: worker processes forked after CUDA has started (which newer
    torch checks harder), pinned host batches and copies that do not block. The run ends with every worker gone."""
    import multiprocessing

    from tests.test_data_cache import write_folder

    write_folder(tmp_path / "imgs", n=48)
    options = [f"data.root={tmp_path / 'imgs'}", "data.image_size=16", "data.cache=false", "data.num_workers=2"]
    cfg = compose_cfg("trainer.device=cuda", "data=image_folder", *options, "trainer.steps=6", "trainer.log_every=1")
    cfg.trainer.batch_size = 16
    others = {child.pid for child in multiprocessing.active_children()}  # e.g. a compile pool of an earlier test
    train(cfg, tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 6
    losses = read_events(tmp_path / "run")[0]["loss/D"]
    assert [s for s, _ in losses] == list(range(1, 7)) and all(torch.isfinite(torch.tensor(v)) for _, v in losses)
    assert {child.pid for child in multiprocessing.active_children()} <= others  # the workers are gone


def test_float16_trains_and_resumes_with_its_scalers(tmp_path: Path) -> None:
    common = ["trainer.device=cuda", "trainer.precision=16", "loss.r1=1.0", "trainer.log_every=1"]
    common += ["model.discriminator.norm=none"]  # float16 refuses R1 through BatchNorm (test_step.py)
    train(compose_cfg(*common, "trainer.steps=4"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["scalers"]["G"]["scale"] > 0 and state["scalers"]["D"]["scale"] > 0
    train(compose_cfg(*common, "trainer.steps=6", f"resume={tmp_path}"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 6


def test_a_checkpoint_of_the_plain_adam_update_resumes_with_the_fused_one(tmp_path: Path) -> None:
    plain = ["+optimizer.generator.fused=false", "+optimizer.discriminator.fused=false"]
    train(compose_cfg("trainer.device=cuda", "trainer.steps=2", *plain), tmp_path)
    train(compose_cfg("trainer.device=cuda", "trainer.steps=4", f"resume={tmp_path}"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4


def graphed_stepper(*options: str) -> object:
    from ganlab.build import build, seed_everything
    from ganlab.divergence import NanWatch
    from ganlab.step import TrainStep

    cfg = compose_cfg("trainer.device=cuda", *options)
    seed_everything(0)
    parts = build(cfg)
    return TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["loss=wgan_gp"],
        ["loss.r1=1.0", "loss.reg_every=2", "trainer.ema=0.9", "trainer.lr_schedule_g=linear"],
        ["model.conditional=true"],
        ["model=mlp", "data=gaussians", "loss=hinge", "optimizer=rmsprop"],
        ["loss=wgan", "trainer.n_critic_schedule=wgan", "trainer.critic_burst=3"],
        ["augment.ada=true", "augment.ada_p=0.5", "augment.ada_kimg=0.32", "loss.r1=1.0", "loss.reg_every=2"],
        STYLEGAN2,
        PROGAN,
        SRGAN,
        SIMGAN,
    ],
)
def test_cuda_graphs_on_and_off_give_the_same_losses(options: list[str]) -> None:
    """Captured and replayed parts compute what the eager ones do, up to the float32 rounding of the tensor
    learning rate (and TF32/cuDNN choices, which are the same on both paths)."""
    means = {}
    for graphs in ("true", "false"):
        stepper = graphed_stepper(f"trainer.cuda_graphs={graphs}", "trainer.steps=8", *options)
        for step in range(1, 9):
            stepper(step)
        means[graphs] = stepper.meter.means()
        if graphs == "true":  # a growing model's G graph is keyed by its phase too
            assert any(key[0] == "G" for key in stepper.graphs.captured)
    assert means["true"].keys() == means["false"].keys()
    for key, value in means["false"].items():
        assert means["true"][key] == pytest.approx(value, rel=2e-3, abs=2e-4), key


@pytest.mark.parametrize("graphs", ["false", "true"])  # false: the control, so a failure of true is the graphs'
def test_a_run_with_cuda_graphs_resumes_bitwise(graphs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cuDNN's atomics-based weight-gradient kernels could flip bits between two runs whatever the graphs do
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    common = ["trainer.device=cuda", f"trainer.cuda_graphs={graphs}", "loss.r1=1.0", "loss.reg_every=2"]
    common += ["trainer.ema=0.9", "augment.diffaugment=[color,cutout]"]  # translation's index backward adds atomically
    straight, resumed = straight_and_resumed_from_step_4(common, tmp_path)
    assert_same_networks(straight, resumed)


def test_a_captured_runs_checkpoint_resumed_by_the_plain_update_keeps_its_step_counts_on_the_host(
    tmp_path: Path,
) -> None:
    """torch's loader puts the step counts where the *saved* groups (capturable) read them, on the GPU; the plain
    update (`optimizer.*.fused=false`, no graphs) reads them on the host, so they must come back to the CPU or
    each step would wait for the device twice a parameter."""
    from ganlab.build import build
    from ganlab.run_state import load_optimizer_state

    train(compose_cfg("trainer.device=cuda", "trainer.cuda_graphs=true", "trainer.steps=4"), tmp_path)
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    plain = ["+optimizer.generator.fused=false", "+optimizer.discriminator.fused=false"]
    parts = build(compose_cfg("trainer.device=cuda", "trainer.cuda_graphs=false", *plain))
    for opt, key in ((parts.opt_g, "opt_G"), (parts.opt_d, "opt_D")):
        load_optimizer_state(opt, saved[key])
        assert not opt.param_groups[0]["capturable"] and not opt.param_groups[0]["fused"]
        assert {state["step"].device.type for state in opt.state.values()} == {"cpu"}
        assert {state["exp_avg"].device.type for state in opt.state.values()} == {"cuda"}


def test_the_ema_copy_of_a_recurrent_g_keeps_cudnn_s_flat_weights() -> None:
    import warnings

    from ganlab.build import build

    parts = build(compose_cfg("trainer.device=cuda", "model=rnn", "data=sines", "data.n=64", "trainer.ema=0.9"))
    copies = [m for m in parts.ema.model.modules() if isinstance(m, torch.nn.RNNBase)]
    assert copies
    for rnn in copies:  # one storage for all of a layer stack's weights, as cuDNN wants them
        assert len({w.untyped_storage().data_ptr() for w in rnn._flat_weights}) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "RNN module weights are not part of single contiguous chunk"
        parts.ema.model(torch.randn(4, parts.z_dim, device="cuda"))


def test_features_on_the_gpu_are_the_cpus_to_float32_rounding() -> None:
    """No TF32 in the extractors (cuDNN's convolutions would take it by default): the digits classifier's
    features of the same images agree between the devices."""
    from ganlab.data.digits import DigitsData
    from ganlab.metrics.extractors import get_extractor

    cfg = compose_cfg().data
    images = DigitsData(image_size=16).images[:256]
    on_cpu = get_extractor("digits", cfg, torch.device("cpu"))(images)[0]
    on_gpu = get_extractor("digits", cfg, torch.device("cuda:0"))(images.cuda())[0].cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)


def test_a_checkpoint_from_a_machine_with_more_gpus_restores_this_devices_random_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ganlab.checkpoint import capture_rng, restore_rng

    state = capture_rng()
    torch.cuda.manual_seed(123)
    wanted = torch.cuda.get_rng_state(0)
    state["cuda"] = [wanted] * (torch.cuda.device_count() + 1)  # one GPU more than here
    torch.cuda.manual_seed(7)
    with caplog.at_level("WARNING", logger="ganlab"):
        restore_rng(state)
    assert torch.equal(torch.cuda.get_rng_state(torch.cuda.current_device()), wanted)
    assert "continues from the checkpoint's cuda:" in caplog.text


def test_a_run_resumed_on_another_gpu_continues_the_generator_it_drew_from(caplog: pytest.LogCaptureFixture) -> None:
    """A checkpoint says which GPU's generator the run drew from; resumed on another index (a run on cuda:1
    resumed with trainer.device=cuda:0, or on a machine with other GPUs), this GPU continues that state."""
    from ganlab.checkpoint import capture_rng, restore_rng

    index, count = torch.cuda.current_device(), torch.cuda.device_count()
    state = capture_rng()
    assert state["cuda_device"] == index
    torch.cuda.manual_seed(123)
    trained = torch.cuda.get_rng_state(index)
    torch.cuda.manual_seed(456)
    other = torch.cuda.get_rng_state(index)
    for slots in sorted({count, count + 1}):  # this machine's GPUs (a different index needs two), and one more
        source = (index + 1) % slots
        if source == index:
            continue
        state["cuda"] = [other] * slots
        state["cuda"][source], state["cuda_device"] = trained, source
        torch.cuda.manual_seed(7)
        caplog.clear()
        with caplog.at_level("WARNING", logger="ganlab"):
            restore_rng(state)
        assert torch.equal(torch.cuda.get_rng_state(index), trained), slots
        if slots != count:
            assert f"continues from the checkpoint's cuda:{source} (the GPU it trained on)" in caplog.text


def test_compile_bf16_and_graphs_together_give_finite_losses() -> None:
    stepper = graphed_stepper("trainer.compile=true", "trainer.precision=bf16", "trainer.cuda_graphs=true")
    for step in range(1, 9):
        stepper(step)
    values = stepper.meter.means()
    assert values and all(torch.isfinite(torch.tensor(v)) for v in values.values()), values


@pytest.mark.parametrize("loss", ["gan", "wgan_gp"])
def test_recurrent_gans_train_on_the_gpu_through_the_gradient_penalty(loss: str, tmp_path: Path) -> None:
    """cuDNN's RNN kernels have no double backward ("double backwards is not supported for CuDNN RNNs"): the
    gradient penalty through the recurrent D must run torch's own kernels (ganlab/models/rnn.py)."""
    options = ["model=rnn", "data=sines", "data.n=64", f"loss={loss}", "model.discriminator.bidirectional=true"]
    train(compose_cfg(*options, "trainer.device=cuda", "data.prefix=2", "model.generator.feedback=true"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(p).all() for net in ("G", "D") for p in state[net].values() if p.is_floating_point())
