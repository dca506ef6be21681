"""`format=safetensors` (always written): G's weights in the safetensors format, which holds tensors and a JSON
header and nothing that runs on loading (unlike a pickle). generator.json says how to rebuild G around them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.export.spec import GeneratorSpec, build_generator

FILE = "generator.safetensors"


def to_bytes(G: nn.Module, args: tuple[Tensor, ...]) -> bytes:
    # Cloned: safetensors refuses tensors that share storage, and a state dict may hold views.
    weights = {name: t.detach().cpu().clone().contiguous() for name, t in G.state_dict().items()}
    return save(weights, metadata={"format": "ganlab generator weights"})


def load_weights(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ConfigError(
            f"{path}: not a readable safetensors file ({type(err).__name__}: {err}). ganlab never unpickles a "
            "file given as weights; export the run again."
        ) from err


def rebuild(folder: Path, spec: GeneratorSpec) -> nn.Module:
    """G with its exported weights, in eval mode, on the CPU."""
    G = build_generator(spec)
    try:
        G.load_state_dict(load_weights(folder / FILE))
    except RuntimeError as err:  # missing or unexpected keys, or shapes that differ
        raise ConfigError(
            f"{folder / FILE}: the weights do not fit the generator generator.json describes ({err})."
        ) from err
    return G.eval().requires_grad_(False)


def runner(folder: Path, spec: GeneratorSpec) -> Callable[..., Tensor]:
    G = rebuild(folder, spec)
    return lambda *args: torch.no_grad()(G)(*args)
