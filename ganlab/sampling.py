"""Drawing from a generator: eval-mode forward passes, reproducible latents, spherical interpolation."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn


@torch.no_grad()
def generate(G: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """G's output in eval mode (BatchNorm uses running statistics), leaving G as it was; `labels` for a
    conditional G."""
    was_training = G.training
    G.eval()
    try:
        return G(z) if labels is None else G(z, labels)
    finally:
        G.train(was_training)


def latents(n: int, z_dim: int, seed: int) -> Tensor:
    """n standard-normal latents from their own generator: the same for a seed, and the global RNG (which a
    training run's batches use) does not move."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def sample_batches(
    G: nn.Module, z_dim: int, n: int, seed: int, batch_size: int, device: torch.device, labels: Tensor | None = None
) -> Iterator[Tensor]:
    """n samples in batches from seeded latents; `labels` (n,) for a conditional G."""
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
