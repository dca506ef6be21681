"""The hook interface of a stabiliser that plugs in by config alone: `stabilizers=[consistency]` composes
`conf/stabilizers/consistency.yaml`, whose `_target_` names a subclass of `Stabilizer`; its knobs are
`stabilizers.<name>.*`. Such a stabiliser is two files, its module and its YAML: build.py instantiates every
node under `stabilizers`, the step calls the hooks, and the checkpoint holds `state_dict()`.

The hooks run inside the step's parts, which ganlab/cuda_graphs.py captures on CUDA: what they do there must
stay on the device (no `.item()`, no Python branch on a tensor's value). Host-side settings belong in
`at_step_start`, written into device tensors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

Stats = dict[str, Tensor]


HOOKS = ("at_step_start", "d_term", "g_term", "g_regularizer", "after_d_update", "after_g_update")


def overriding(stabilizers: Iterable[Stabilizer], hook: str) -> list[Stabilizer]:
    """The stabilisers whose class overrides `hook`: the step calls no hook that would do nothing."""
    return [s for s in stabilizers if getattr(type(s), hook) is not getattr(Stabilizer, hook)]


class Stabilizer:
    """Override the hooks you need; each default does nothing."""

    #: Lazy regularisation (Karras et al. 2020, sec. 3.1): `g_regularizer` runs on every g_reg_every-th G update
    #: only, and should weight its term by this interval so that its strength is kept.
    g_reg_every: int = 1

    def bind(self, data_shape: tuple[int, ...], device: Any) -> None:
        """Once, at build: check the data fits (raise ganlab.ConfigError), make device tensors."""

    def bind_networks(self, G: nn.Module, D: nn.Module) -> None:
        """Once, at build, after `bind`: check the networks fit (raise ganlab.ConfigError)."""

    def at_step_start(self, step: int) -> None:
        """Host side, before G step `step` runs (1-based)."""

    def d_term(self, D: Any, real: Tensor, fake: Tensor) -> tuple[Tensor | None, Stats]:
        """A term added to D's loss in every D update: D (its condition bound, behind any augmentation), the real
        batch and G's detached samples."""
        return None, {}

    def g_term(self, D: Any, fake: Tensor) -> tuple[Tensor | None, Stats]:
        """A term added to G's loss: D (frozen, its condition bound) and G's samples."""
        return None, {}

    def g_regularizer(self, G: nn.Module, z: Tensor, condition: Tensor | None) -> tuple[Tensor | None, Stats]:
        """A term added to G's loss on every `g_reg_every`-th G update: G itself (not wrapped for speed: the term
        may call its parts), the update's latents and conditions."""
        return None, {}

    def after_d_update(self, D: nn.Module) -> None:
        """After each optimizer step of D."""

    def after_g_update(self, G: nn.Module) -> None:
        """After each optimizer step of G."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold for an exact resume (tensors and plain data only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output; `{}` for a checkpoint written before this stabiliser was on."""
