"""`trainer.lr_schedule_g` / `trainer.lr_schedule_d`: the learning rate of each network over the G steps.

constant; linear (to zero at the last step, as in the WGAN-GP and SNGAN reference code for CIFAR-10); cosine
(half a cosine from the configured rate down to zero). The rate is a pure function of the step, so a resumed
run needs no scheduler state: `apply(step)` sets it.
"""

from __future__ import annotations

import math

import torch

from ganlab.errors import ConfigError

SCHEDULES = ("constant", "linear", "cosine")


def lr_factor(kind: str, step: int, total: int) -> float:
    """The multiplier of the base rate for the G step `step` (0-based: the rate of the step about to run)."""
    progress = min(max(step / total, 0.0), 1.0)
    if kind == "constant":
        return 1.0
    if kind == "linear":
        return 1.0 - progress
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ConfigError(f"learning-rate schedule {kind!r} is not one ganlab knows ({', '.join(SCHEDULES)}).")


class LRSchedule:
    """Sets an optimizer's rates to base x factor(step). `scale()` lowers the base (a rollback after NaNs).

    A rate held as a device tensor (an optimizer prepared for CUDA graph capture, ganlab/cuda_graphs.py) is filled
    in place, so that the captured graph reads it, and only when it changes."""

    def __init__(self, opt: torch.optim.Optimizer, kind: str, total_steps: int, option: str) -> None:
        if kind not in SCHEDULES:
            raise ConfigError(f"{option}={kind!r} is not a schedule ganlab knows; choose one of {', '.join(SCHEDULES)}")
        self.opt, self.kind, self.total = opt, kind, total_steps
        self.base = [float(group["lr"]) for group in opt.param_groups]
        self.current = list(self.base)  # the rates last set, on the host: logging them reads no device

    def apply(self, step: int) -> None:
        factor = lr_factor(self.kind, step, self.total)
        for i, (group, base) in enumerate(zip(self.opt.param_groups, self.base, strict=True)):
            rate = base * factor
            if not isinstance(group["lr"], torch.Tensor):
                group["lr"] = rate
            elif rate != self.current[i]:  # a fill is a kernel launch: only when the rate moves
                group["lr"].fill_(rate)
            self.current[i] = rate

    def scale(self, factor: float) -> None:
        self.base = [base * factor for base in self.base]
