"""Drawing from a generator: eval-mode forward passes, reproducible latents, spherical interpolation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ganlab import pictures
from ganlab.condition import call, conditioning_for
from ganlab.data.base import close_source

SCATTER_POINTS_PER_SAMPLE = 16  # 2-D pictures: trainer.num_samples x 16 points


@torch.no_grad()
def generate(G: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """G's output in eval mode (BatchNorm uses running statistics), leaving G as it was; `labels` for a
    conditional G."""
    was_training = G.training
    G.eval()
    try:
        return call(G, z, labels)
    finally:
        G.train(was_training)


def latents(n: int, z_dim: int, seed: int) -> Tensor:
    """n standard-normal latents from their own generator: the same for a seed, and the global RNG (which a
    training run's batches use) does not move."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def sample_batches(
    G: nn.Module, z_dim: int, n: int, seed: int, batch_size: int, device: torch.device, labels: Tensor | None = None
) -> Iterator[Tensor]:
    """n samples in batches from seeded latents; `labels` (n, ...) for a conditional G: class labels, or one
    condition tensor per sample (a sequence's prefix)."""
    z_all = latents(n, z_dim, seed)
    for start in range(0, n, batch_size):
        z = z_all[start : start + batch_size].to(device)
        y = None if labels is None else labels[start : start + batch_size].to(device)
        yield generate(G, z, y)


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (White 2016) between rows of z0 and z1 at fractions t: for Gaussian latents it
    keeps the norm typical of the prior, where a straight line would pass through improbably short vectors.

    z0, z1: (N, D); t: (T,) -> (N, T, D). Falls back to linear interpolation for (anti)parallel pairs."""
    a = z0 / z0.norm(dim=1, keepdim=True)
    b = z1 / z1.norm(dim=1, keepdim=True)
    omega = torch.acos((a * b).sum(dim=1).clamp(-1.0, 1.0))[:, None, None]  # (N, 1, 1)
    t = t.to(z0)[None, :, None]  # (1, T, 1)
    sin_omega = torch.sin(omega)
    parallel = sin_omega.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin_omega), sin_omega)
    w0 = torch.where(parallel, 1 - t, torch.sin((1 - t) * omega) / safe)
    w1 = torch.where(parallel, t, torch.sin(t * omega) / safe)
    return w0 * z0[:, None, :] + w1 * z1[:, None, :]


def interpolation_latents(rows: int, steps: int, z_dim: int, seed: int) -> Tensor:
    """(rows * steps, z_dim): each row of `steps` latents slerps from latent r to latent rows + r of the seed."""
    ends = latents(2 * rows, z_dim, seed)
    path = slerp(ends[:rows], ends[rows:], torch.linspace(0, 1, steps))  # (rows, steps, z_dim)
    return path.reshape(rows * steps, z_dim)


@dataclass
class FixedInputs:
    """What a run's sample pictures show at every step: G's output for fixed latents (a conditional grid: one
    row per class, as many columns as trainer.num_samples allows), beside fixed real points for 2-D data."""

    noise: Tensor
    labels: Tensor | None  # the conditions (class labels, or tensors for paired data); None: unconditional
    real_points: Tensor | None  # what 2-D points and sequences are drawn over
    columns: int | None
    targets: Tensor | None = None  # image-conditioned models: the real image paired with each input
    channel_names: list[str] | None = None  # sequences: the panels' names (a csv's columns)

    @classmethod
    def draw(
        cls,
        data: Any,
        z_dim: int,
        num_classes: int | None,
        conditioning: Any,
        num_samples: int,
        seed: int,
        device: torch.device,
    ) -> FixedInputs:
        """From a generator of their own, seeded by the run's seed: the global RNG, which the training batches
        use, does not move. A conditional model's grid has a row per class; `conditioning` (ganlab/condition.py)
        gives the conditions G is drawn for."""
        is_points = len(data.shape) == 1
        n = num_samples * (SCATTER_POINTS_PER_SAMPLE if is_points else 1)
        columns = None
        if num_classes:
            columns = max(1, num_samples // num_classes)
            n = num_classes * columns
        noise = latents(n, z_dim, seed).to(device)
        paired = getattr(conditioning, "picture_batch", None)  # image conditions come with their targets
        if paired is not None:
            batch = paired(data, n)
            return cls(noise[: len(batch.condition)], batch.condition.to(device), None, None, batch.real)
        labels = conditioning.picture_conditions(data, n, columns, device)
        if len(data.shape) == 2:  # sequences, drawn over the same real ones at every step
            return cls(noise, labels, data.fixed_sequences(n).cpu(), columns, channel_names=data.channel_names)
        return cls(noise, labels, _draw_without_rng(data, n) if is_points else None, columns)

    @classmethod
    def for_run(cls, parts: Any, num_samples: int, seed: int) -> FixedInputs:
        """`draw` for a run's built components (ganlab/build.py's Components)."""
        return cls.draw(parts.data, parts.z_dim, parts.num_classes, parts.conditioning, num_samples, seed, parts.device)

    def generate(self, G: nn.Module) -> Tensor:
        return generate(G, self.noise, self.labels)

    def picture(self, samples: Tensor) -> Tensor:
        """The run's picture of G's output for these inputs: input | output | target triplets for an
        image-conditioned model, else a grid (a row per class), or a scatter over real points for 2-D data."""
        if self.targets is not None:
            return pictures.triplets(self.labels, samples, self.targets)
        if self.channel_names is not None:
            return pictures.sequences(samples, self.real_points, self.channel_names)
        return pictures.render(samples, self.real_points, ncol=self.columns)


def held_out_inputs(snap: Any, n: int, seed: int) -> FixedInputs:
    """An image-conditioned run's first n held-out inputs with their targets (fewer where its data holds fewer),
    as its sample grids draw them, on the CPU: what `ganlab sample` without input= and `ganlab browse` show.
    `snap` is a trained_generator.Snapshot; its data is read, then closed."""
    cpu = torch.device("cpu")
    data = snap.data(cpu)
    try:
        return FixedInputs.draw(data, snap.z_dim, None, conditioning_for(data, None), n, seed, cpu)
    finally:
        close_source(data)


def _draw_without_rng(data: Any, n: int) -> Tensor:
    """Real points for pictures, drawn without moving the global RNG that training batches use."""
    state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        return data.sample(n).cpu()
    finally:
        torch.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
