"""Spotting a diverged run: losses that stop being finite, and weights or samples that hold NaN or infinity.

The losses are watched at every step without a host-device sync: a device-side flag remembers the first step
whose losses were not finite, and the host reads it only at log, checkpoint and evaluation steps, when it
syncs anyway. A stopped or rolled-back run can so name the step where the trouble began.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class NanWatch:
    """Remembers, on the device, the first step whose losses were not finite: a handful of in-place operations
    per step and no host sync, so it also runs inside a captured CUDA graph (ganlab/cuda_graphs.py).

    `probe` is the running sum of every loss observed: it turns non-finite at the first NaN or infinity and stays
    so (NaN absorbs everything; inf + -inf is NaN). `good_steps` counts the steps that ended with a finite probe,
    which is the number of steps before the first bad one."""

    def __init__(self, device: torch.device, step: int) -> None:
        self.start = step  # the loop's step counter when watching began
        # float64 so that a long run's sum of large but finite losses cannot overflow (MPS has no float64)
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.probe = torch.zeros((), dtype=dtype, device=device)
        self.good_steps = torch.zeros((), dtype=torch.int64, device=device)

    def observe(self, loss: Tensor) -> None:
        loss = loss.detach()
        self.probe.add_(loss if loss.dim() == 0 else loss.sum())

    def end_step(self) -> None:
        self.good_steps.add_((self.probe - self.probe) == 0)  # x - x == 0 exactly when x is finite

    def first_bad_step(self) -> int:
        """The first step with a non-finite loss, or 0. Reading it syncs with the device."""
        probe, good = torch.stack([self.probe, self.good_steps.to(self.probe.dtype)]).tolist()
        return 0 if math.isfinite(probe) else self.start + int(good) + 1

    def reset(self, step: int) -> None:
        """Watch afresh from `step` (after a rollback), in place: captured graphs keep these tensors."""
        self.start = step
        self.probe.zero_()
        self.good_steps.zero_()


def nonfinite_state(G: nn.Module, D: nn.Module, fixed_samples: Tensor, G_ema: nn.Module | None = None) -> list[str]:
    """Names of the parameters and buffers of G, D (and G's EMA) holding a NaN or an infinity, and
    "G(fixed noise)" if the pictured generator's output is not finite. One device sync when all is well."""
    networks = [("G", G), ("D", D)] + ([("G_ema", G_ema)] if G_ema is not None else [])
    named = {f"{label}.{name}": t for label, m in networks for name, t in [*m.named_parameters(), *m.named_buffers()]}
    named["G(fixed noise)"] = fixed_samples
    named = {name: t for name, t in named.items() if t.is_floating_point()}
    if bool(torch.stack([torch.isfinite(t).all() for t in named.values()]).all()):
        return []
    return [name for name, t in named.items() if not bool(torch.isfinite(t).all())]
