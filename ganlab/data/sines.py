"""`data=sines`: the multivariate sine benchmark of TimeGAN (Yoon et al. 2019, sec. 5.1), generated offline.

Every channel of every sequence is an independent sine, x(t) = sin(2π f t + θ) for t = 0 .. length-1, with its
own frequency f ~ U[0, 0.1) and phase θ ~ U[-π, π), scaled from [-1, 1] to [0, 1]. `form=reference_code`
builds it as TimeGAN's released code does instead (data_loading.py: sin(f t + φ) with f, φ ~ U[0, 0.1)):
nearly straight lines over 24 steps, an easier set than the paper's text describes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganlab.data.sequences import InMemorySequences
from ganlab.errors import ConfigError

FORMS = ("paper", "reference_code")


def sine_sequences(n: int, length: int, features: int, seed: int, form: str = "paper") -> Tensor:
    """(n, length, features) float32 in [0, 1], the same for a seed whatever the global RNG."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64)
    if form == "paper":
        freq = torch.rand(n, 1, features, generator=g, dtype=torch.float64) * 0.1
        phase = (torch.rand(n, 1, features, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
        angle = 2 * math.pi * freq * t[None, :, None] + phase
    elif form == "reference_code":
        freq = torch.rand(n, 1, features, generator=g, dtype=torch.float64) * 0.1
        phase = torch.rand(n, 1, features, generator=g, dtype=torch.float64) * 0.1
        angle = freq * t[None, :, None] + phase
    else:
        raise ConfigError(f"data.form={form!r}: choose one of {', '.join(FORMS)}.")
    return ((torch.sin(angle) + 1) * 0.5).float()


class SinesData(InMemorySequences):
    def __init__(
        self,
        n: int = 10_000,
        length: int = 24,
        features: int = 5,
        seed: int = 0,
        form: str = "paper",
        prefix: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        for key, value, low in (("n", n, 2), ("length", length, 2), ("features", features, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"data.{key} must be an integer >= {low}, got {value!r}.")
        super().__init__(sine_sequences(n, length, features, seed, form), device=device, prefix=prefix)
