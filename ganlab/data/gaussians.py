"""`data=gaussians`: the 2-D mixtures used to study mode collapse.

ring8 (Metz et al. 2016): 8 modes evenly spaced on a circle of `radius`, std 0.02.
grid25 (Srivastava et al. 2017; Lin et al. 2018): 5x5 modes `spacing` apart centred on the origin, std 0.05.
Samples are drawn fresh each batch: pick a mode uniformly, add isotropic Gaussian noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganlab.errors import ConfigError, check_number

DEFAULT_STD = {"ring8": 0.02, "grid25": 0.05}


def mode_centres(kind: str, radius: float = 2.0, spacing: float = 2.0) -> Tensor:
    if kind == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()
    if kind == "grid25":
        axis = (torch.arange(5, dtype=torch.float32) - 2.0) * spacing
        return torch.cartesian_prod(axis, axis)
    raise ConfigError(f"data.kind={kind!r} is not a mixture ganlab knows; choose one of ring8, grid25.")


class GaussiansData:
    num_classes = None
    shape = (2,)
    device_resident = True  # drawn on the device: a CUDA graph can capture the sampling

    def __init__(
        self,
        kind: str = "ring8",
        radius: float = 2.0,
        spacing: float = 2.0,
        std: float | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.kind = kind
        radius = check_number("data.radius", radius, 0, low_open=True)
        spacing = check_number("data.spacing", spacing, 0, low_open=True)
        self.centres = mode_centres(kind, radius, spacing).to(device)
        self.std = DEFAULT_STD[kind] if std is None else check_number("data.std", std, 0, low_open=True)

    def sample(self, batch_size: int) -> Tensor:
        idx = torch.randint(len(self.centres), (batch_size,), device=self.centres.device)
        return self.centres[idx] + self.std * torch.randn(batch_size, 2, device=self.centres.device)
