"""G's forward as the traced formats (pt2, onnx) see it: positional tensors in, samples out."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.condition import call


class GeneratorForward(nn.Module):
    """`G(z)` or `G(z, condition)`, in eval mode, at truncation 1: what `torch.export` and the ONNX exporter
    trace. The batch dimension stays free."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        return call(self.G, z, condition)


def input_names(conditional: bool) -> list[str]:
    return ["z", "condition"] if conditional else ["z"]


MAX_BATCH = 1 << 30  # bounded: torch 2.6 adds a guard batch != 2**63 - 1 that an unbounded batch dimension violates


def batch_dimensions(count: int) -> tuple[dict[int, torch.export.Dim], ...]:
    """dynamic_shapes for `count` positional inputs whose first dimension is one free batch size."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return tuple({0: batch} for _ in range(count))
