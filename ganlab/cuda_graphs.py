"""`trainer.cuda_graphs`: each part of a training step captured once as a CUDA graph, then replayed.

A small GAN on a fast GPU spends its step launching kernels, not running them: an MLP GAN took 6.5 ms per step
on an H200 whose arithmetic needs microseconds. A CUDA graph records a part's kernels once and replays them with
one launch. The parts of a step are a D update, a D update that carries R1/R2 (lazy regularisation: a different
graph), and the G update; each holds everything it does on the device: the real batch drawn by index from the
in-memory data, the noise, G and D forward and backward, the loss and its penalties, the optimizer step, the
EMA of G, the running stats and the NaN watch. A step is then n_critic + 1 replays.

What changes between steps without changing the graph lives in device tensors that the host fills before a
replay: the learning rates (optimizers prepared with `capturable=True` and a tensor lr), the EMA's weight, the
instance noise's std, the stats' running sums. Random numbers come from the default CUDA generator, which
torch registers with every graph: each replay advances its offset as the eager kernels would, so the saved RNG
state still resumes exactly.

Each part runs eagerly (on a side stream, as torch's documentation asks) WARMUP_RUNS times before it is
captured, so that lazy state (optimizer moments, cuBLAS workspaces, the stats' slots) exists first. What cannot
be captured runs eagerly, said once in the log: DDP (gradient all-reduce hooks), float16 (the GradScaler decides
on the host), a streaming DataLoader batch (it arrives from the host), an optimizer without `capturable`, and
torch.compile unless asked for explicitly (its compiled D cannot differentiate twice anyway).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import warnings
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import torch

from ganlab.distributed import current
from ganlab.errors import ConfigError, out_of_memory

if TYPE_CHECKING:
    from ganlab.build import Components

log = logging.getLogger("ganlab")
WARMUP_RUNS = 2  # eager runs of each part before its capture
OPTIONS = ("auto", "true", "false")


def graph_option(value: Any) -> str:
    """trainer.cuda_graphs as one of auto, true, false (YAML's true/false arrive as booleans or strings)."""
    option = str(value).lower()
    if option not in OPTIONS:
        raise ConfigError(f"trainer.cuda_graphs must be auto, true or false, got {value!r}.")
    return option


def graph_blocker(parts: Components, stepper: Any, explicit: bool) -> str | None:
    """Why this configuration's step cannot be captured, or None when it can."""
    if parts.device.type != "cuda":
        return f"they need CUDA and this run is on {parts.device.type}"
    if current().enabled:
        return "DistributedDataParallel all-reduces gradients from hooks that a graph does not replay"
    if stepper.scaler_d is not None:
        return "trainer.precision=16's GradScaler decides on the host whether to skip a step"
    if not getattr(parts.data, "device_resident", False):
        return (
            f"{type(parts.data).__name__} hands batches over from the host (a DataLoader); data.cache=true keeps "
            "the images on the device"
        )
    for opt in (parts.opt_g, parts.opt_d):
        if not all("capturable" in group for group in opt.param_groups):
            return f"{type(opt).__name__} has no capturable mode (Adam, AdamW and RMSprop have)"
    if stepper.compiled and not explicit:
        return "trainer.compile=true (set trainer.cuda_graphs=true to capture the compiled step too)"
    return None


def step_runner(option: Any, parts: Components, stepper: Any) -> EagerParts | GraphedParts:
    """How the step's parts run: captured and replayed where the configuration allows, else eagerly."""
    option = graph_option(option)
    if option == "false":
        return EagerParts()
    blocker = graph_blocker(parts, stepper, explicit=option == "true")
    if blocker is None:
        return GraphedParts(parts, stepper.meter)
    if option == "true":
        raise ConfigError(f"trainer.cuda_graphs=true: this step cannot be captured: {blocker}. Use auto or false.")
    if parts.device.type == "cuda" and current().is_main:
        log.info("CUDA graphs off, the step runs eagerly: %s.", blocker)
    return EagerParts()


class GraphCaptureError(RuntimeError):
    """A part of the step could not be captured: a ganlab bug or a torch limit, not a user's mistake."""


class EagerParts:
    """Runs each part as it is."""

    captured: tuple[Hashable, ...] = ()

    def run(self, key: Hashable, part: Callable[..., None], *args: Any) -> None:
        part(*args)

    def reset(self) -> None:
        pass


class CudaBackend:
    """torch.cuda's graphs and streams, for GraphedParts. (tests/graph_emulator.py stands in for it on a CPU.)"""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.side = torch.cuda.Stream(device)

    def new_graph(self) -> torch.cuda.CUDAGraph:
        return torch.cuda.CUDAGraph()

    @contextlib.contextmanager
    def capture(self, graph: torch.cuda.CUDAGraph) -> Any:
        """Record the part. The current stream is put back even when the capture fails (torch's own exit skips
        that when ending the capture raises), and so is the CUDA generator's state: a capture runs nothing and
        draws nothing, which torch guarantees itself; restoring it keeps that true whatever the version."""
        stream = torch.cuda.current_stream(self.device)
        rng = torch.cuda.get_rng_state(self.device)
        try:
            with torch.cuda.graph(graph):
                yield
        finally:
            torch.cuda.set_stream(stream)
            torch.cuda.set_rng_state(rng, self.device)

    def after_capture(self, graph: torch.cuda.CUDAGraph) -> None:
        """A capture records the part without running it: this runs it."""
        graph.replay()

    def warm_up(self, part: Callable[..., None], *args: Any) -> None:
        """An eager run on a side stream, as torch asks of the runs before a capture."""
        main = torch.cuda.current_stream(self.device)
        self.side.wait_stream(main)
        with torch.cuda.stream(self.side):
            part(*args)
        main.wait_stream(self.side)


class GraphedParts:
    """Runs each part (keyed by what makes its graph different) through its graph, capturing it after
    WARMUP_RUNS eager runs. A capture that fails stops the run (GraphCaptureError) with its cause."""

    def __init__(self, parts: Components, meter: Any, backend: Any = None) -> None:
        self.parts = parts
        self.meter = meter
        self.backend = backend or CudaBackend(parts.device)
        self.graphs: dict[Hashable, Any] = {}
        self.runs: collections.Counter[Hashable] = collections.Counter()
        # From the first step on, not just from the first capture: the eager warm-up then takes the same
        # (tensor) learning rates as the replays, so a resumed run, which warms up again, computes bitwise alike.
        for opt in (parts.opt_g, parts.opt_d):
            prepare_for_capture(opt, parts.device)

    @property
    def captured(self) -> tuple[Hashable, ...]:
        return tuple(self.graphs)

    def run(self, key: Hashable, part: Callable[..., None], *args: Any) -> None:
        graph = self.graphs.get(key)
        if graph is not None:
            graph.replay()
            return
        if self.runs[key] < WARMUP_RUNS:
            self.runs[key] += 1
            with warnings.catch_warnings():  # torch's "capturable=True but running without capture", once each
                warnings.filterwarnings("ignore", message=".*capturable=True.*")
                self.backend.warm_up(part, *args)
            return
        graph = self._capture(key, part, *args)
        if not self.graphs:
            log.info("CUDA graphs on: each part of a step is captured after %d eager runs", WARMUP_RUNS)
        self.graphs[key] = graph
        self.backend.after_capture(graph)

    def reset(self) -> None:
        """Drop the graphs (their memory pools go with them) and warm up again; grads that pointed into a
        graph's pool are let go."""
        self.graphs.clear()
        self.runs.clear()
        for opt in (self.parts.opt_g, self.parts.opt_d):
            opt.zero_grad(set_to_none=True)

    def _capture(self, key: Hashable, part: Callable[..., None], *args: Any) -> Any:
        """The part's graph, recorded (not run). A capture that fails stops the run with the cause: after a
        failed capture torch cannot promise a sane CUDA state (allocator, generator) to continue eagerly in."""
        graph = self.backend.new_graph()
        try:
            with self.frozen_meter(), self.backend.capture(graph):
                part(*args)
        except Exception as err:
            cause = err.__context__ or err  # CUDA's own error says only "a previous error during capture"
            for oom in (err, cause):
                if out_of_memory(oom):  # not a bug: the batch-size advice, and the graphs' own share of memory
                    raise type(oom)(
                        f"while capturing the {key} part of the training step as a CUDA graph, whose memory pool "
                        f"comes on top of the eager steps' (trainer.cuda_graphs=false needs less): {oom}"
                    ) from err
            raise GraphCaptureError(
                f"CUDA graph capture of the {key} part of the training step failed: {cause}. Run with "
                "trainer.cuda_graphs=false (eager steps) and report this, with the command, to ganlab's issues."
            ) from err
        return graph

    @contextlib.contextmanager
    def frozen_meter(self) -> Any:
        self.meter.frozen = True
        try:
            yield
        finally:
            self.meter.frozen = False


def prepare_for_capture(opt: torch.optim.Optimizer, device: torch.device) -> None:
    """Make an optimizer's step capturable: `capturable=True`, the learning rate a device tensor (that the
    schedules fill), and any step counts already there on the device (a resumed run's)."""
    for group in opt.param_groups:
        group["capturable"] = True
        if not isinstance(group["lr"], torch.Tensor):
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
    place_step_counts(opt)


def place_step_counts(opt: torch.optim.Optimizer) -> None:
    """Put each parameter's step count where its group's update reads it, as torch's own loader does for the
    flags of the *saved* groups: beside the parameter, as float32, for fused or capturable groups (their kernels
    read it there); on the CPU for the plain update, which reads it on the host (`.item()`) and would otherwise
    wait for the device twice a parameter per step after resuming a captured run's checkpoint eagerly."""
    for group in opt.param_groups:
        on_device = bool(group.get("fused") or group.get("capturable"))
        for param in group["params"]:
            step = opt.state.get(param, {}).get("step")
            if not isinstance(step, torch.Tensor):
                continue
            where = param.device if on_device else torch.device("cpu")
            if step.device != where or (on_device and step.dtype != torch.float32):
                opt.state[param]["step"] = step.to(device=where, dtype=torch.float32 if on_device else step.dtype)


def plain_optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """opt.state_dict() with device-tensor hyperparameters (a captured optimizer's lr) read back as numbers, so
    that a checkpoint's param_groups hold what an eager run's do."""
    state = opt.state_dict()
    for group in state["param_groups"]:
        for key, value in list(group.items()):
            if isinstance(value, torch.Tensor) and value.dim() == 0 and key != "params":
                group[key] = value.item()
    return state
