"""`format=pt2`: `torch.export` of G's forward (ganlab/export/forward.py), saved with `torch.export.save`.

The file holds the graph of aten operations and the weights, so `torch.export.load(path).module()(z)` runs it
with torch alone, no ganlab. The batch dimension is dynamic; the rest is fixed at the trained shape."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.export.forward import GeneratorForward, batch_dimensions
from ganlab.export.spec import GeneratorSpec

FILE = "generator.pt2"


def to_bytes(G: nn.Module, args: tuple[Tensor, ...]) -> bytes:
    with warnings.catch_warnings():
        # torch's own LSTM/GRU keep their weights in a list (`_flat_weights`) that export sees reassigned, and
        # torch warns to the user about its own module; the export is checked against G all the same (check.py).
        warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights", category=UserWarning)
        program = torch.export.export(GeneratorForward(G).eval(), args, dynamic_shapes=batch_dimensions(len(args)))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def runner(folder: Path, spec: GeneratorSpec) -> Callable[..., Tensor]:
    module = torch.export.load(folder / FILE).module()
    return lambda *args: module(*args)
