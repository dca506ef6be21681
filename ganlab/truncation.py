"""The truncation trick (Karras et al. 2019, sec. 2; Brock et al. 2019): trade variety for fidelity at sampling
time by pulling each mapped latent w towards the average w̄ that G tracked during training,
w' = w̄ + psi (w - w̄). psi = 1 draws from the trained distribution; psi = 0 gives the average image, the same
for every z. `ganlab sample ... truncation=0.7` and `ganlab eval ... truncation=0.7` apply it, and the evaluation
records it in metrics.json, since FID depends on it.

Only a generator with a w space has a w̄ to pull towards (model=stylegan2: `styles(z, y, truncation)`); others
refuse psi != 1 with a message rather than silently drawing untruncated samples.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganlab.errors import ConfigError


def has_w_space(G: nn.Module) -> bool:
    """Whether G maps z to an intermediate latent w that it can truncate (StyleGAN2's `styles`)."""
    return callable(getattr(G, "styles", None))


class Truncated(nn.Module):
    """G called with a fixed truncation psi: `Truncated(G, 0.7)(z, y)` is `G(z, y, truncation=0.7)`."""

    def __init__(self, G: nn.Module, psi: float) -> None:
        super().__init__()
        self.G, self.psi = G, psi

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.G(z, y, truncation=self.psi)


def truncated(G: nn.Module, psi: float, model: str = "this model") -> nn.Module:
    """G drawing with truncation psi (G itself for psi = 1); a ConfigError for a G without a w space."""
    if not math.isfinite(psi):
        raise ConfigError(f"truncation must be a number (1: none, 0.7: a typical trade), got {psi}.")
    if psi == 1.0:
        return G
    if not has_w_space(G):
        raise ConfigError(
            f"truncation={psi}: {model} has no w space to truncate (truncation pulls StyleGAN's mapped latents "
            "towards their average; model=stylegan2 has one). Use truncation=1."
        )
    return Truncated(G, psi)
