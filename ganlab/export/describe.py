"""A trained generator (ganlab/trained_generator.py's Snapshot) described for export: its spec, and the fixed
inputs every exported file is checked on.

What G takes besides noise comes from the condition seam (ganlab/condition.py): class labels for a conditional
model, or a tensor that the data gives (a sequence's prefix, a low-resolution or synthetic image). The data is
loaded only where it decides that (a source with its own `conditioning()`), so exporting an image or 2-D
generator needs only the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import get_class
from torch import Tensor

from ganlab.condition import conditioning_for, grid_labels
from ganlab.export.spec import GeneratorSpec
from ganlab.generation import latents
from ganlab.targets import check_targets, option_name
from ganlab.trained_generator import Snapshot
from ganlab.truncation import has_w_space

CHECK_SAMPLES = 8  # inputs every exported file is checked on
CHECK_SEED = 0


@dataclass
class Inputs:
    """What G is called with: latents and the condition (None for an unconditional G)."""

    z: Tensor
    condition: Tensor | None

    @property
    def args(self) -> tuple[Tensor, ...]:
        return (self.z,) if self.condition is None else (self.z, self.condition)


def describe(snap: Snapshot) -> tuple[GeneratorSpec, Inputs]:
    data = _data_if_needed(snap)
    condition, examples = _condition(snap, data)
    units = None
    if data is not None and len(snap.shape) == 2:  # sequences: what [0, 1] stands for in the data's units
        units = {"channels": data.channel_names, "low": data.low.tolist(), "high": data.high.tolist()}
    spec = GeneratorSpec(
        generator=snap.config["model"]["generator"],
        model=option_name(snap.config["model"]["generator"]["_target_"]),
        data=option_name(snap.config["data"]["_target_"]),
        sample_shape=list(snap.shape),
        latent_size=snap.z_dim,
        condition=condition,
        value_range=value_range(snap.shape),
        weights=snap.generator,
        step=snap.step,
        w_space=has_w_space(snap.G),
        units=units,
    )
    return spec, check_inputs(spec, examples)


def value_range(shape: tuple[int, ...]) -> list[float] | None:
    """What G writes: images through tanh in [-1, 1], sequences through a sigmoid in [0, 1] (the data's scaling);
    points come out of a linear layer, in the data's own coordinates, unbounded (ring8's radius is 2)."""
    if len(shape) == 1:
        return None
    return [0.0, 1.0] if len(shape) == 2 else [-1.0, 1.0]


def check_inputs(spec: GeneratorSpec, examples: Tensor | None = None) -> Inputs:
    """Seeded latents and, per the spec's condition, class labels (0, 1, ..., K-1, 0, ...) or the example
    conditions the data gave."""
    n = CHECK_SAMPLES if examples is None else len(examples)
    z = latents(n, spec.latent_size, CHECK_SEED)
    if spec.num_classes:
        return Inputs(z, grid_labels(n, 1, spec.num_classes))
    return Inputs(z, examples)


def _data_if_needed(snap: Snapshot) -> Any | None:
    node = snap.config["data"]
    check_targets(node, "the checkpoint's data")
    if snap.num_classes or not hasattr(get_class(node["_target_"]), "conditioning"):
        return None
    return snap.data(torch.device("cpu"))


def _condition(snap: Snapshot, data: Any | None) -> tuple[dict[str, Any], Tensor | None]:
    if snap.num_classes:
        return {"kind": "class", "num_classes": snap.num_classes}, None
    if data is None:
        return {"kind": "none"}, None
    examples = conditioning_for(data, None).picture_conditions(data, CHECK_SAMPLES, None, torch.device("cpu"))
    if examples is None:
        return {"kind": "none"}, None
    examples = examples.cpu()
    return {"kind": "tensor", "shape": list(examples.shape[1:]), "dtype": str(examples.dtype).split(".")[-1]}, examples
