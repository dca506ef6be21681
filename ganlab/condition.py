"""The seam every GAN family plugs into: a batch of real samples and what G is given besides noise.

Every family plays the same game (k D updates, then one G update through a frozen D). What differs is the
*condition*: nothing (an unconditional GAN), a class label (a class-conditional GAN), or a tensor (a
low-resolution image for super-resolution, a synthetic image for a refiner, a prefix for a sequence). G is
called as `G(z, condition)` and D as `D(x, condition)`, with `condition=None` for an unconditional model, and a
loss's `g_loss` receives the G update's `Batch`, so that a family's content or reconstruction term can compare
G's output with the real sample paired to its condition.

A `Conditioning` says where a run's conditions come from, for D's updates (`real_batch`) and for G's
(`g_batch`). ganlab/build.py picks it: a data source may bring its own (`conditioning()`, for paired data),
else `model.conditional=true` on labelled data gives `ClassConditional`, else `Unconditional`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ganlab.errors import ConfigError


@dataclass
class Batch:
    """Real samples (None where G's update needs none) and their condition (None: unconditional)."""

    real: Tensor | None
    condition: Tensor | None = None


class Conditioning(Protocol):
    """Where a run's conditions come from."""

    def real_batch(self, data: object, batch_size: int) -> Batch:
        """A batch for one D update: real samples and the conditions G is given for the fake half."""
        ...

    def g_batch(self, data: object, batch_size: int, device: torch.device) -> Batch:
        """What one G update is given: the conditions (and, for paired data, the real samples they belong to)."""
        ...

    def picture_conditions(self, data: object, n: int, columns: int | None, device: torch.device) -> Tensor | None:
        """The fixed conditions of the run's sample pictures (`columns` a row), drawn without moving the global
        RNG; None for an unconditional model."""
        ...


NO_CONDITION = Batch(None)  # what G's update of an unconditional model is given: made once, not every step


class Unconditional:
    """G is given noise only."""

    def real_batch(self, data: object, batch_size: int) -> Batch:
        return Batch(data.sample(batch_size))

    def g_batch(self, data: object, batch_size: int, device: torch.device) -> Batch:
        return NO_CONDITION

    def picture_conditions(self, data: object, n: int, columns: int | None, device: torch.device) -> None:
        return None


class ClassConditional:
    """Class labels (`model.conditional=true`): D's updates take the real batch's labels for G's samples too, so
    that D compares like with like; G's update draws every class equally often."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def real_batch(self, data: object, batch_size: int) -> Batch:
        real, labels = data.sample_labeled(batch_size)
        return Batch(real, labels)

    def g_batch(self, data: object, batch_size: int, device: torch.device) -> Batch:
        return Batch(None, torch.randint(self.num_classes, (batch_size,), device=device))

    def picture_conditions(self, data: object, n: int, columns: int | None, device: torch.device) -> Tensor:
        return grid_labels(n, columns or n, self.num_classes, device)


class Paired:
    """Image conditions (super-resolution, refinement, translation): the data source hands out (target,
    condition) pairs through `sample_pair(batch_size)`, and fixed ones for pictures through `picture_pairs(n)`.
    D's fakes are G's outputs for the real batch's conditions; G's update gets a fresh pair, so that a content
    term (ganlab/content/) can compare G's output with its target or its input."""

    def real_batch(self, data: object, batch_size: int) -> Batch:
        return Batch(*data.sample_pair(batch_size))

    def g_batch(self, data: object, batch_size: int, device: torch.device) -> Batch:
        return Batch(*data.sample_pair(batch_size))

    def picture_conditions(self, data: object, n: int, columns: int | None, device: torch.device) -> Tensor:
        return self.picture_batch(data, n).condition

    def picture_batch(self, data: object, n: int) -> Batch:
        """The pictures' fixed inputs with their targets (input | output | target triplets)."""
        return Batch(*data.picture_pairs(n))


class Prefixed:
    """Sequences continued from a real beginning (`data.prefix` steps): G is given the first steps of a real
    sequence and writes the rest (ganlab/models/rnn.py returns the prefix and its continuation, so that D judges
    whole sequences). D's fakes continue the real batch's own prefixes; G's update draws fresh ones."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def real_batch(self, data: object, batch_size: int) -> Batch:
        real = data.sample(batch_size)
        return Batch(real, real[:, : self.steps])

    def g_batch(self, data: object, batch_size: int, device: torch.device) -> Batch:
        return Batch(None, data.sample(batch_size)[:, : self.steps])

    def picture_conditions(self, data: object, n: int, columns: int | None, device: torch.device) -> Tensor:
        return data.fixed_sequences(n)[:, : self.steps].to(device)


def conditioning_for(data: object, num_classes: int | None) -> Conditioning:
    """The data source's own conditioning (an optional `conditioning()` member: paired data, sequence prefixes;
    it may return None), else class labels when the model is conditional (`num_classes`), else none."""
    own = getattr(data, "conditioning", None)
    conditioning = own() if callable(own) else None
    if conditioning is not None:
        if num_classes:
            raise ConfigError(
                f"{type(data).__name__} gives G its own condition ({type(conditioning).__name__}); "
                "model.conditional=true cannot add class labels to it."
            )
        return conditioning
    return ClassConditional(num_classes) if num_classes else Unconditional()


def call(net: Callable[..., Tensor], x: Tensor, condition: Tensor | None) -> Tensor:
    """`net(x, condition)`, or `net(x)` without one: an unconditional network may take its input alone."""
    return net(x) if condition is None else net(x, condition)


def given(net: Callable[..., Tensor], condition: Tensor | None) -> Callable[..., Tensor]:
    """`net` with the condition bound, as the losses call D: on one batch at a time."""
    return net if condition is None else functools.partial(call, net, condition=condition)


def grid_labels(n: int, columns: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """Labels for a picture of `columns` images a row: row r shows class r mod K."""
    return (torch.arange(n, device=device) // columns) % num_classes
