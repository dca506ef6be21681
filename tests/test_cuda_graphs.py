"""trainer.cuda_graphs, tested on the CPU through tests/graph_emulator.py: a captured part is a recorded list of
operations replayed on the same tensors, so a value frozen into the graph (a Python number that should change
between steps) or a host sync inside a part shows here as it would on CUDA. The CUDA graphs themselves are
tested by tests/test_gpu.py (scripts/gpu_check.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import ganlab.cuda_graphs as cuda_graphs
import ganlab.step as step_module
from ganlab.build import build, seed_everything
from ganlab.cuda_graphs import EagerParts, GraphCaptureError, GraphedParts, graph_blocker, graph_option
from ganlab.divergence import NanWatch
from ganlab.errors import ConfigError
from ganlab.step import TrainStep
from tests.conftest import assert_same_networks, compose_cfg, image_conditioned, straight_and_resumed_from_step_4
from tests.graph_emulator import EmulatedBackend
from tests.step_families import FAMILIES

EVERYTHING = [  # every host-side setting that changes between steps, and lazy R1 (a second D graph)
    "trainer.lr_schedule_g=linear",
    "trainer.lr_schedule_d=cosine",
    "trainer.ema=0.9",
    "loss.r1=1.0",
    "loss.reg_every=2",
    "augment.diffaugment=[color,translation,cutout]",
    "augment.instance_noise=0.1",
    "augment.instance_noise_steps=6",
    "trainer.clip_grad_norm=1.0",
]
FOREACH = ["+optimizer.generator.foreach=true", "+optimizer.discriminator.foreach=true"]
# SNGAN's ResNet: spectral norm's power iteration, self-attention, hinge; and the consistency term
RESNET_SN = ["model=resnet", "data.image_size=32", "model.generator.width=16", "model.discriminator.width=16",
             "model.generator.attention=16", "model.discriminator.attention=16", "loss=hinge",
             "model.spectral_norm=true", "stabilizers=[consistency]"]  # fmt: skip
# recurrent G and D through the gradient penalty, and TimeGAN's stepwise supervision on a feedback G
RNN_SUPERVISED = ["model=rnn", "data=sines", "data.n=64", "loss=wgan_gp", "model.generator.feedback=true",
                  "stabilizers=[supervised]", "model.discriminator.bidirectional=true"]  # fmt: skip
CONFIGS = {
    "default": [],
    "everything": EVERYTHING,
    "wgan_gp": ["loss=wgan_gp"],
    "conditional": ["model.conditional=true", "trainer.ema=0.99"],
    # RMSprop as CUDA runs it: the foreach update (the CPU default, one tensor at a time, reads a tensor lr back)
    "mlp_points": ["model=mlp", "data=gaussians", "loss=hinge", "optimizer=rmsprop", *FOREACH],
    "wgan_burst": ["loss=wgan", "trainer.n_critic_schedule=wgan", "trainer.critic_burst=3"],
    # p on the device, read by the captured D and G parts, moved between steps; r_t's sums added inside D's graph
    "ada": ["augment.ada=true", "augment.ada_p=0.5", "augment.ada_kimg=0.32", "loss.r1=1.0", "loss.reg_every=2"],
    **FAMILIES,  # StyleGAN2's filters and lazy regularisers, ProGAN's phases, SRGAN's pre-training, SimGAN's history
    "resnet_sn": RESNET_SN,
    "rnn_supervised": RNN_SUPERVISED,
    "pix2pix": ["model=unet", "content=l1"],  # + a paired folder, written by the test
}


@pytest.fixture(autouse=True)
def capturable_rmsprop_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """RMSprop's capturable update (pure tensor arithmetic) asserts a CUDA-like device; let it run on the CPU
    here, as it will on CUDA. (Fused Adam takes capturable=True on the CPU as it is.)"""
    import torch.optim.rmsprop as rmsprop

    supported = rmsprop._get_capturable_supported_devices
    monkeypatch.setattr(rmsprop, "_get_capturable_supported_devices", lambda *a, **k: [*supported(*a, **k), "cpu"])


def run_steps(overrides: list[str], capture: bool, steps: int = 8, restart_at: int | None = None) -> tuple[Any, Any]:
    """`steps` steps through GraphedParts on the emulator; capture=False runs every part eagerly with the same
    (capturable, tensor-lr) optimizers, the reference the replays must match bit for bit."""
    cfg = compose_cfg(*overrides)
    seed_everything(0)
    parts = build(cfg)
    stepper = TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))
    graphs = GraphedParts(parts, stepper.meter, EmulatedBackend())
    if not capture:
        graphs.run = lambda key, part, *args: part(*args)  # type: ignore[method-assign]
    stepper.graphs = graphs
    for step in range(1, steps + 1):
        stepper(step)
        if step == restart_at:
            stepper.restart_graphs()
    return stepper, parts


def state_of(parts: Any) -> list[torch.Tensor]:
    nets = [parts.G, parts.D] + ([parts.ema.model] if parts.ema else [])
    tensors = [t.detach().clone() for net in nets for t in [*net.parameters(), *net.buffers()]]
    for opt in (parts.opt_g, parts.opt_d):
        tensors += [v.clone() for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return tensors


def host_numbers(obj: Any, path: str = "step", depth: int = 0) -> dict[str, Any]:
    """The Python numbers that ganlab's objects reachable from the stepper hold (counters, flags), by path. A
    replayed graph runs no Python, so a count kept inside a captured part stops moving on CUDA."""
    numbers: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, (bool, int, float)):
            numbers[f"{path}.{name}"] = value
            continue
        children = value.items() if isinstance(value, dict) else [(None, value)]
        for key, child in children:
            if depth < 2 and hasattr(child, "__dict__") and type(child).__module__.startswith("ganlab"):
                numbers |= host_numbers(child, f"{path}.{name}" + ("" if key is None else f"[{key}]"), depth + 1)
    return numbers


SLOW_CONFIGS = {"rnn_supervised"}  # 7 s: LSTMs stepped in Python, through the gradient penalty


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CONFIGS else n for n in sorted(CONFIGS)]
)
def test_replayed_parts_compute_bitwise_what_the_eager_parts_do(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = CONFIGS[name] + (image_conditioned("unet", tmp_path) if "model=unet" in CONFIGS[name] else [])
    if "model=rnn" in options:  # oneDNN's CPU LSTM/GRU makes its backward's workspace only with grad mode
        monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)  # on, which a replay is not; CUDA has no such op
    eager, eager_parts = run_steps(options, capture=False)
    graphed, graphed_parts = run_steps(options, capture=True)
    assert {key[0] for key in graphed.graphs.captured} == {"G", "D"}  # ProGAN's keys name the phase too
    assert sum(g.replays for g in graphed.graphs.backend.graphs) > 0
    assert graphed.meter.means() == eager.meter.means()
    assert graphed.watch.first_bad_step() == 0
    for a, b in zip(state_of(eager_parts), state_of(graphed_parts), strict=True):
        assert torch.equal(a, b)
    assert host_numbers(graphed) == host_numbers(eager)  # e.g. SRGAN's count of pre-training updates


def test_a_part_that_cannot_be_captured_stops_the_run_naming_the_part_and_the_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host sync inside a part (here, the NaN watch read back at every step) fails its capture, as on CUDA.
    The run stops with the cause and the way out rather than going on in an unsure CUDA state."""
    monkeypatch.setattr(NanWatch, "end_step", lambda self: float(self.probe))
    with pytest.raises(GraphCaptureError, match=r"capture of the \('G',\) part .*host-device sync.*cuda_graphs=false"):
        run_steps([], capture=True, steps=4)


def test_memory_running_out_during_a_capture_is_reported_as_memory_not_as_a_bug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The allocator's own failure (a tensor larger than RAM, inside G's capture) comes out as the out-of-memory
    error that `ganlab train` turns into its batch-size advice, naming the graphs, not as a GraphCaptureError."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    from ganlab.errors import out_of_memory
    from ganlab.train import out_of_memory_message
    from tests.graph_emulator import Recorder

    end_step = NanWatch.end_step

    def too_much_while_captured(self: NanWatch) -> None:
        if isinstance(_get_current_dispatch_mode(), Recorder):
            torch.empty(2**60, dtype=torch.uint8)
        end_step(self)

    monkeypatch.setattr(NanWatch, "end_step", too_much_while_captured)
    with pytest.raises(RuntimeError) as caught:
        run_steps([], capture=True, steps=4)
    assert not isinstance(caught.value, GraphCaptureError) and out_of_memory(caught.value)
    message = out_of_memory_message(caught.value, 64, "cuda:0")
    assert "try trainer.batch_size=32" in message
    assert "capturing the ('G',) part" in message and "trainer.cuda_graphs=false needs less" in message


def test_lazy_r1_gets_a_graph_of_its_own() -> None:
    stepper, _ = run_steps(EVERYTHING, capture=True)
    assert set(stepper.graphs.captured) == {("D", True), ("D", False), ("G",)}


def test_a_learning_rate_frozen_into_the_graph_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's power, shown: with the optimizers left as they are (a Python-float rate), a linear schedule
    stops reaching the replayed optimizer step, and the weights part from the eager run's."""
    monkeypatch.setattr(cuda_graphs, "prepare_for_capture", lambda opt, device: None)
    options = ["trainer.lr_schedule_g=linear", "trainer.lr_schedule_d=linear", "trainer.steps=10"]
    _, eager_parts = run_steps(options, capture=False)
    _, graphed_parts = run_steps(options, capture=True)
    assert not all(torch.equal(a, b) for a, b in zip(state_of(eager_parts), state_of(graphed_parts), strict=True))


def test_graphs_on_and_off_agree_within_float32_rounding_of_the_rate() -> None:
    """The eager path keeps Python-float learning rates, the graphed one float32 tensors: the same training,
    up to that rounding."""
    cfg = compose_cfg()
    seed_everything(0)
    parts = build(cfg)
    plain = TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))
    for step in range(1, 7):
        plain(step)
    graphed, _ = run_steps([], capture=True, steps=6)
    a, b = plain.meter.means(), graphed.meter.means()
    assert a.keys() == b.keys()
    assert all(b[k] == pytest.approx(a[k], rel=1e-3, abs=1e-4) for k in a)


def test_restarted_graphs_are_captured_afresh_and_keep_computing_alike() -> None:
    options = [*EVERYTHING, "trainer.steps=16"]
    eager, eager_parts = run_steps(options, capture=False, steps=16, restart_at=8)
    graphed, graphed_parts = run_steps(options, capture=True, steps=16, restart_at=8)
    assert len(graphed.graphs.captured) == 3 and len(graphed.graphs.backend.graphs) == 6  # three parts, twice
    for a, b in zip(state_of(eager_parts), state_of(graphed_parts), strict=True):
        assert torch.equal(a, b)


def test_a_run_with_graphs_resumes_bitwise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint of a graphed run continues exactly: the resumed run warms up eagerly and captures again,
    and computes what the uninterrupted run's replays computed."""
    monkeypatch.setattr(
        step_module, "step_runner", lambda option, parts, stepper: GraphedParts(parts, stepper.meter, EmulatedBackend())
    )
    straight, resumed = straight_and_resumed_from_step_4([*EVERYTHING, "trainer.log_every=1"], tmp_path)
    assert_same_networks(straight, resumed)
    group = straight["opt_G"]["param_groups"][0]
    assert isinstance(group["lr"], float)  # the checkpoint holds numbers, not the graphs' device tensors


def test_the_option_is_auto_true_or_false() -> None:
    assert [graph_option(v) for v in ("auto", True, "false", "True")] == ["auto", "true", "false", "true"]
    with pytest.raises(ConfigError, match="trainer.cuda_graphs must be auto, true or false, got 'sometimes'"):
        graph_option("sometimes")


def test_on_the_cpu_auto_runs_eagerly_quietly_and_true_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_cfg()
    parts = build(cfg)
    with caplog.at_level(logging.INFO, logger="ganlab"):
        stepper = TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))
    assert isinstance(stepper.graphs, EagerParts) and "CUDA graphs" not in caplog.text
    with pytest.raises(ConfigError, match="cuda_graphs=true: this step cannot be captured: they need CUDA"):
        TrainStep(parts, compose_cfg("trainer.cuda_graphs=true").trainer, 8, NanWatch(parts.device, 0))


def test_what_cannot_be_captured_is_named() -> None:
    """On a CUDA device: each configuration that must run eagerly says why."""
    cfg = compose_cfg()
    real = build(cfg)

    def blocker(explicit: bool = False, **changes: Any) -> str | None:
        parts = SimpleNamespace(device=torch.device("cuda", 0), data=real.data, opt_g=real.opt_g, opt_d=real.opt_d)
        stepper = SimpleNamespace(scaler_d=None, compiled=False)
        for key, value in changes.items():
            setattr(stepper if hasattr(stepper, key) else parts, key, value)
        return graph_blocker(parts, stepper, explicit)

    assert blocker() is None
    assert "GradScaler" in blocker(scaler_d=object())
    assert "data.cache=true" in blocker(data=SimpleNamespace(shape=(1, 16, 16)))
    sgd = torch.optim.SGD(real.G.parameters(), lr=0.1)
    assert "SGD has no capturable mode" in blocker(opt_g=sgd)
    assert "trainer.compile=true" in blocker(compiled=True)
    assert blocker(explicit=True, compiled=True) is None
