"""The options that make a training step fast without changing what it computes: trainer.precision (autocast),
trainer.compile (torch.compile), trainer.channels_last (NHWC memory) and DistributedDataParallel under torchrun.

`prepare_execution` applies them once, at build time, and returns the networks as the step calls them
(`Execution`); ganlab/step.py only steps. CUDA graphs, which capture the step itself, are ganlab/cuda_graphs.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ganlab.distributed import current
from ganlab.errors import ConfigError
from ganlab.growth import grows
from ganlab.models.layers import has_batchnorm

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}
# DDP's buffers stay each rank's own after the start (torch 2.14 renamed the option; older ones know the first).
RANK_OWN_BUFFERS = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


@dataclass
class Execution:
    """The networks as the training step calls them, wrapped once: DistributedDataParallel when several
    processes train, torch.compile when asked. D's gradients are synchronised in D's updates only; in G's update
    D is frozen and called directly, so no rank waits for gradients that are not computed."""

    dtype: torch.dtype | None  # autocast's dtype; None: float32
    channels_last: bool  # the image networks (and so their batches) in NHWC memory
    compiled: bool
    G: Callable[..., Tensor]  # G in its update (synchronised, compiled)
    D: Callable[..., Tensor]  # D in its updates (synchronised, compiled)
    D_eager: Callable[..., Tensor]  # D in updates whose penalty differentiates it twice: compiled graphs cannot
    D_frozen: Callable[..., Tensor]  # D in G's update (compiled, not synchronised)


def prepare_execution(
    G: nn.Module,
    D: nn.Module,
    ema_model: nn.Module | None,
    optimizers: tuple[torch.optim.Optimizer, ...],
    penalised_twice: bool,
    trainer: DictConfig,
    device: torch.device,
    shape: tuple[int, ...],
) -> Execution:
    """Check what the device can do, then wrap. `penalised_twice`: the loss differentiates D twice (R1, R2, the
    gradient penalty), which matters for float16 with BatchNorm. Changes G, D and the EMA's model in place
    (channels_last), so the optimizers keep their parameters."""
    dtype = check_precision(trainer.precision, device)
    if dtype is torch.float16 and penalised_twice and has_batchnorm(D):
        # NativeBatchNormBackwardBackward returns NaN in float16 (measured: every D step, at any loss scale),
        # so the GradScaler would skip every D update and D would never train.
        raise ConfigError(
            "trainer.precision=16 with R1/R2 on a D with BatchNorm: BatchNorm's second derivative, which the "
            "penalty needs, overflows in float16 and every D step would be skipped. Use trainer.precision=bf16, "
            "or model.discriminator.norm=none (or layer)."
        )
    channels_last = uses_channels_last(trainer.get("channels_last"), device, shape)
    if channels_last:
        for net in (G, D, ema_model):
            if net is not None:
                net.to(memory_format=torch.channels_last)
        for opt in optimizers:
            match_state_layout(opt)
    if current().enabled:
        # No buffer broadcast at each forward: D runs several (real, fake, penalty) before one backward, and
        # the broadcast would overwrite BatchNorm statistics in place that autograd still needs.
        # A growing model (model=progan) leaves the blocks of later phases without gradients until they start.
        unused = {"find_unused_parameters": True} if grows(G) else {}
        G_sync: nn.Module = DistributedDataParallel(G, **RANK_OWN_BUFFERS, **unused)
        D_sync: nn.Module = DistributedDataParallel(D, **RANK_OWN_BUFFERS, **unused)
    else:
        G_sync, D_sync = G, D
    compiled = bool(trainer.compile)
    if not compiled:
        return Execution(dtype, channels_last, False, G_sync, D_sync, D_sync, D)
    check_compile(device)
    return Execution(dtype, channels_last, True, torch.compile(G_sync), torch.compile(D_sync), D_sync, torch.compile(D))


def check_precision(precision: Any, device: torch.device) -> torch.dtype | None:
    """trainer.precision -> the autocast dtype (None: float32), refusing what the device cannot do."""
    key = str(precision)
    if key not in PRECISIONS:
        raise ConfigError(f"trainer.precision must be 32, bf16 or 16, got {precision!r}.")
    if key == "16" and device.type != "cuda":
        raise ConfigError(
            f"trainer.precision=16 (float16 autocast with a GradScaler) needs a CUDA device, and this run is on "
            f"{device.type}; use trainer.precision=bf16 or 32."
        )
    if key == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("trainer.precision=bf16: this GPU has no bfloat16 support; use trainer.precision=16.")
    if key == "bf16" and device.type == "mps":
        raise ConfigError("trainer.precision=bf16 is not supported on mps; use trainer.precision=32.")
    return PRECISIONS[key]


def check_compile(device: torch.device) -> None:
    """torch.compile where it can run: Dynamo on this Python, and a C++ compiler for CPU kernels."""
    try:
        import torch._dynamo

        torch._dynamo.eval_frame.check_if_dynamo_supported()
    except Exception as err:  # RuntimeError with the reason (Python version, platform)
        raise ConfigError(f"trainer.compile=true: torch.compile is not available here ({err}).") from err
    if device.type == "mps":
        raise ConfigError("trainer.compile=true is not supported on mps; use trainer.compile=false.")
    if device.type == "cpu":
        from torch._inductor import cpp_builder

        # torch 2.4 names it _get_cpp_compiler
        find_compiler = getattr(cpp_builder, "get_cpp_compiler", None) or cpp_builder._get_cpp_compiler
        try:  # the search Inductor itself makes ($CXX, else g++), so a pass here means step 1 compiles
            find_compiler()
        except Exception as err:  # InvalidCxxCompiler
            raise ConfigError(
                "trainer.compile=true on the CPU needs the C++ compiler torch.compile builds its kernels with "
                "(g++, or the one $CXX names) and none works here; install one or use trainer.compile=false."
            ) from err
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise ConfigError(
                "trainer.compile=true on CUDA needs Triton, which torch.compile generates its GPU kernels with, "
                "and it is missing or unusable here (pip install triton); or use trainer.compile=false."
            )


def uses_channels_last(option: bool | None, device: torch.device, shape: tuple[int, ...]) -> bool:
    """trainer.channels_last: null (auto) is on for image models on CUDA, where cuDNN's convolutions prefer
    NHWC (and tensor cores need it), and on x86 CPUs with AVX2 or AVX-512, where oneDNN's are faster in NHWC too
    (scripts/bench.py on two such 2-core CPUs: DCGAN 64×64 9 to 17 % faster a step, StyleGAN2 17 %); elsewhere
    (ARM, MPS) it stays off until measured there."""
    if len(shape) != 3:
        return False
    if option is not None:
        return bool(option)
    return device.type == "cuda" or (device.type == "cpu" and fast_nhwc_cpu())


def fast_nhwc_cpu() -> bool:
    """Whether this CPU is one where channels_last was measured to pay: x86 with AVX2 or AVX-512 (oneDNN)."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def match_state_layout(opt: torch.optim.Optimizer) -> None:
    """Give each parameter-shaped optimizer state (Adam's moments) its parameter's memory layout.

    The fused kernels pair parameter, gradient and moments by memory position, not by index: a checkpoint's
    contiguous moments on channels_last parameters (or the reverse, after a resume that switches
    trainer.channels_last) would silently update each weight with another weight's moments.
    """
    for param, state in opt.state.items():
        for key, value in state.items():
            if isinstance(value, Tensor) and value.shape == param.shape and value.stride() != param.stride():
                state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
