"""Spotting a diverged run: losses that stop being finite, and weights or samples that hold NaN or infinity.

The losses are watched at every step without a host-device sync: a device-side flag remembers the first step
whose losses were not finite, and the host reads it only at log, checkpoint and evaluation steps, when it
syncs anyway. A stopped or rolled-back run can so name the step where the trouble began.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NanWatch:
    def __init__(self, device: torch.device, step: int) -> None:
        self.count = torch.tensor(step, dtype=torch.long, device=device)  # mirrors the loop's step counter
        self.first = torch.zeros((), dtype=torch.long, device=device)  # 0: all finite so far
        self.ok = torch.ones((), dtype=torch.bool, device=device)

    def observe(self, loss: Tensor) -> None:
        self.ok &= torch.isfinite(loss.detach()).all()

    def end_step(self) -> None:
        self.count += 1
        self.first = torch.where((self.first == 0) & ~self.ok, self.count, self.first)
        self.ok.fill_(True)

    def first_bad_step(self) -> int:
        """The first step with a non-finite loss, or 0. Reading it syncs with the device."""
        return int(self.first)

    def reset(self, step: int) -> None:
        self.count.fill_(step)
        self.first.zero_()
        self.ok.fill_(True)


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
