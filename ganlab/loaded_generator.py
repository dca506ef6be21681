"""`ganlab.load_generator(path)`: a trained generator as a plain `torch.nn.Module`, from an export folder
(`ganlab export`) or from a run directory or checkpoint.

    import ganlab
    G = ganlab.load_generator("exports/digits")     # or "outputs/2026-11-30/12-00-00", or a .pt checkpoint
    images = G.sample(16, seed=0)                    # (16, 1, 16, 16) in G.value_range, here [-1, 1]
    digits = G.sample(10, labels=range(10))          # a class-conditional G
    typical = G.sample(16, truncation=0.7)           # a G with a w space (model=stylegan2)

Nothing read runs code: an export's weights are safetensors and its description JSON; a checkpoint loads with
`torch.load(weights_only=True)`; the config's `_target_` passes ganlab's allow-list (ganlab/targets.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.condition import call, grid_labels
from ganlab.errors import ConfigError
from ganlab.export import safetensors
from ganlab.export.spec import SPEC_FILE, GeneratorSpec, read_spec
from ganlab.generation import latents
from ganlab.truncation import truncated


class LoadedGenerator(nn.Module):
    """A trained G with what it takes to draw from it: `sample(n, seed=, truncation=, labels=)`; `forward(z,
    condition)` is G's own. Move it with `.to(device)`; it starts in eval mode on the CPU."""

    def __init__(self, G: nn.Module, spec: GeneratorSpec) -> None:
        super().__init__()
        self.G = G.eval().requires_grad_(False)
        self.spec = spec
        self.latent_size = spec.latent_size
        self.sample_shape = tuple(spec.sample_shape)
        self.num_classes = spec.num_classes
        self.value_range = None if spec.value_range is None else tuple(spec.value_range)  # None: points

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        return call(self.G, z, condition)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int = 0,
        truncation: float = 1.0,
        labels: int | Iterable[int] | Tensor | None = None,
        condition: Tensor | None = None,
    ) -> Tensor:
        """n samples (n, *sample_shape) from seeded latents, on G's device. `labels`: one class for all or one
        per sample (a conditional G; default 0, 1, ..., K-1, 0, ...). `condition`: what an image- or
        prefix-conditioned G is given, one per sample. `truncation` < 1: a G with a w space only."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        device = next(self.G.parameters()).device
        z = latents(n, self.latent_size, seed).to(device)
        given = self._condition(n, labels, condition, device)
        G = truncated(self.G, truncation, f"model={self.spec.model}")
        return call(G, z, given)

    def _condition(
        self, n: int, labels: int | Iterable[int] | Tensor | None, condition: Tensor | None, device: torch.device
    ) -> Tensor | None:
        kind = self.spec.condition["kind"]
        if kind == "class":
            if condition is not None:
                raise ValueError("this generator takes class labels: give labels=, not condition=")
            if labels is None:
                return grid_labels(n, 1, self.num_classes, device)
            y = torch.as_tensor(labels if not isinstance(labels, range) else list(labels), dtype=torch.long)
            y = y.expand(n) if y.dim() == 0 else y
            if y.shape != (n,) or int(y.min()) < 0 or int(y.max()) >= self.num_classes:
                raise ValueError(f"labels must be one class or {n} classes, each from 0 to {self.num_classes - 1}")
            return y.to(device)
        if labels is not None:
            raise ValueError("this generator is not class-conditional: leave labels= out")
        if kind == "tensor":
            if condition is None or len(condition) != n:
                shape = tuple(self.spec.condition["shape"])
                raise ValueError(f"this generator is given a condition of shape {shape} per sample: pass condition=")
            return condition.to(device)
        if condition is not None:
            raise ValueError("this generator takes noise only: leave condition= out")
        return None


def load_generator(path: str | Path) -> LoadedGenerator:
    """A trained generator from an export folder (`ganlab export`), a run directory or a checkpoint file; the
    EMA weights where the run kept them. A ConfigError says what is wrong with the path."""
    path = Path(path).expanduser()
    if (path / SPEC_FILE).is_file():
        spec = read_spec(path)
        return LoadedGenerator(safetensors.rebuild(path, spec), spec)
    if path.is_dir() and not (path / "checkpoints").is_dir():
        raise ConfigError(f"{path}: neither an export folder (no {SPEC_FILE}) nor a run directory (no checkpoints/).")
    from ganlab.export.describe import describe
    from ganlab.trained_generator import load_snapshot

    snap = load_snapshot(str(path), torch.device("cpu"))
    spec, _ = describe(snap)
    return LoadedGenerator(snap.G, spec)
