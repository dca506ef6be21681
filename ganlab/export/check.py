"""The check every exported file passes right after it is written: run on fixed inputs, it must give G's own
output to within TOLERANCE (float32). A generator that draws randomness in eval mode (pix2pix's always-on
dropout) is run with the same seed on both sides."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError

TOLERANCE = 1e-5
CHECK_RNG_SEED = 0


class ExportCheckFailed(ConfigError):
    """An exported file does not reproduce G: the export is removed and the command fails."""


def seeded(run: Callable[..., Tensor], *args: Tensor) -> Tensor:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(CHECK_RNG_SEED)
        return run(*args).detach().float().cpu()


def reference(G: nn.Module, args: tuple[Tensor, ...]) -> Tensor:
    return seeded(G, *args)


def draws_randomness(G: nn.Module, args: tuple[Tensor, ...]) -> bool:
    """Whether G's output for fixed inputs depends on the RNG (pix2pix's dropout stays on in eval mode)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(CHECK_RNG_SEED + 1)
        other = G(*args).detach().float().cpu()
    return not torch.equal(other, reference(G, args))


def check_file(name: str, run: Callable[..., Tensor], args: tuple[Tensor, ...], expected: Tensor) -> float:
    """The largest difference from G's output; ExportCheckFailed beyond TOLERANCE or for a different shape."""
    got = seeded(run, *args)
    if got.shape != expected.shape:
        raise ExportCheckFailed(
            f"{name}: gives samples of shape {tuple(got.shape)} where G gives {tuple(expected.shape)}."
        )
    difference = float((got - expected).abs().max()) if got.numel() else 0.0
    if not difference <= TOLERANCE:  # NaN fails too
        raise ExportCheckFailed(
            f"{name}: its samples differ from G's by up to {difference:.3g} on the check's fixed inputs "
            f"(tolerance {TOLERANCE:g})."
        )
    return difference
