"""Several independent GRUs trained at once: the repeats of the post-hoc sequence metrics in one pass.

TimeGAN's post-hoc networks are tiny (hidden = channels / 2), so a step of torch's nn.GRU costs its per-operation
overhead, not arithmetic: on a CPU the 2000-step classifier took 47 s, and five repeats of both scores about ten
minutes. M models of hidden size H are run here as ONE nn.GRU of hidden size M * H whose weights are
block-diagonal: model m's units read only model m's inputs and units, so the M models never mix, and M repeats
cost about as much as one. The off-block weights start at zero and their gradients are masked to zero, so Adam
(elementwise, no weight decay) never moves them. Each block is initialised as torch initialises a GRU of hidden
size H, U(-1/sqrt(H), 1/sqrt(H)); tests/test_sequence_metrics.py checks the ensemble against separate nn.GRUs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def block_mask(rows_per_model: int, cols_per_model: int, models: int, gates: int) -> Tensor:
    """(gates * M * rows, M * cols) booleans: True where a row's model is the column's model."""
    row_model = torch.arange(models * rows_per_model) // rows_per_model
    col_model = torch.arange(models * cols_per_model) // cols_per_model
    return (row_model[:, None] == col_model[None, :]).repeat(gates, 1)


class GRUEnsemble(nn.Module):
    """M independent stacked GRUs: (M, B, T, size_in) -> (M, B, T, hidden), each model's top layer at every step."""

    def __init__(self, models: int, size_in: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        self.models, self.size_in, self.hidden = models, size_in, hidden
        self.gru = nn.GRU(models * size_in, models * hidden, num_layers=layers, batch_first=True)
        bound = 1 / math.sqrt(hidden)  # a GRU of hidden size H's own initialisation
        with torch.no_grad():
            for name, param in self.gru.named_parameters():
                param.uniform_(-bound, bound)
                if name.startswith("weight"):
                    cols = size_in if name == "weight_ih_l0" else hidden
                    mask = block_mask(hidden, cols, models, 3)
                    param.mul_(mask)
                    # a buffer, so that it moves with the module: a host mask would be copied at every backward
                    self.register_buffer(f"{name}_mask", mask, persistent=False)
                    param.register_hook(lambda grad, key=f"{name}_mask": grad * getattr(self, key))

    def forward(self, x: Tensor) -> Tensor:
        m, b, t, size_in = x.shape
        packed = x.permute(1, 2, 0, 3).reshape(b, t, m * size_in)  # model m's inputs in columns m*C .. m*C+C-1
        states, _ = self.gru(packed)
        return states.view(b, t, m, self.hidden).permute(2, 0, 1, 3)


class LinearEnsemble(nn.Module):
    """M independent linear layers: (M, B, ..., size_in) -> (M, B, ..., size_out), initialised as nn.Linear."""

    def __init__(self, models: int, size_in: int, size_out: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(size_in)
        self.weight = nn.Parameter(torch.empty(models, size_in, size_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(models, 1, size_out).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        m, *middle, size_in = x.shape
        return torch.baddbmm(self.bias, x.reshape(m, -1, size_in), self.weight).view(m, *middle, -1)
