"""Image-conditioned generators judged by their task's own measures, one module per task (a data source's
`task` member names it): super_resolution, refinement, translation. ganlab/evaluation.py judges the rest
and picks among these (make_evaluator). What the three share is set up here."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ganlab.errors import ConfigError


def evaluation_count(n: int | None, available: int, minimum: int, option: str, why: str, too_few: str) -> int:
    """How many of the `available` images (or pairs) an evaluation uses: all, or the `n` asked for; refused
    below `minimum` (`why` says what needs that many; `too_few`, with {available}, what to do when the data
    itself holds too few)."""
    count = available if n is None else min(int(n), available)
    if count < minimum:
        advice = ": " + too_few.format(available=available) if available < minimum else ""
        raise ConfigError(f"{option} must be >= {minimum} ({why}), got {count}{advice}.")
    return count


def task_extractor(source_config: Any, features: str, device: torch.device, option_prefix: str) -> tuple[str, Any]:
    """(name, extractor) of the feature space for FID: `features`, or with auto the data's own classifier where
    ganlab has one (digits, mnist, fashion_mnist), else Inception; built without moving the training RNG."""
    from ganlab.metrics.extractors import default_features, get_extractor

    name = default_features(source_config, points=False) if features in ("auto", None) else features
    with forked_rng(device):
        return name, get_extractor(name, source_config, device, option=f"{option_prefix}features")


def forked_rng(device: torch.device) -> contextlib.AbstractContextManager:
    """The RNG state (CPU, and the evaluation's GPU) restored on exit: evaluating leaves a training run's alone.
    A bare `cuda` means the current GPU (fork_rng needs an index)."""
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(devices=[device.index if device.index is not None else torch.cuda.current_device()])
