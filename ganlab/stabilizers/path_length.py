"""`stabilizers=[path_length]`: path length regularisation (Karras et al. 2020, sec. 3.2), StyleGAN2's G penalty.

A fixed-size step in w should move the image by a fixed amount, whatever the direction: with y ~ N(0, I) images
of noise scaled by 1/sqrt(H W), the penalty is E (||J_w^T y||_2 - a)^2, where J_w is the Jacobian of the
synthesis network at w (every layer's w, summed over layers as the paper's authors do: the squares summed over
w's dimensions, averaged over layers) and a is a running mean of the lengths (decay 0.01). It makes G smoother
and its latent space better behaved (lower perceptual path length), and the paper's authors find that it improves
the images. Lazy (sec. 3.1): computed every `every` G updates on half the batch, weighted by `every`.

Needs a generator with a w space: `styles(z, y)` and `synthesis(ws)` (model=stylegan2).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError, check_number, check_positive
from ganlab.stabilizers.base import Stabilizer, Stats
from ganlab.truncation import has_w_space


def path_lengths(G: Any, z: Tensor, condition: Tensor | None) -> Tensor:
    """||J_w^T y|| for each sample: y is image-shaped Gaussian noise scaled by 1/sqrt(H W); differentiable."""
    ws = G.styles(z) if condition is None else G.styles(z, condition)
    images = G.synthesis(ws)
    noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return grad.float().square().sum(dim=2).mean(dim=1).sqrt()


class PathLengthRegularization(Stabilizer):
    def __init__(self, weight: float = 2.0, every: int = 4, decay: float = 0.01, batch_shrink: int = 2) -> None:
        weight = check_number("stabilizers.path_length.weight", weight, 0)
        decay = check_number("stabilizers.path_length.decay", decay, 0, 1, low_open=True)
        check_positive("stabilizers.path_length", every=every, batch_shrink=batch_shrink)
        self.weight, self.decay = float(weight), float(decay)
        self.g_reg_every, self.batch_shrink = int(every), int(batch_shrink)
        self.mean: Tensor | None = None  # the running mean a of the path lengths, on the device

    def bind(self, data_shape: tuple[int, ...], device: Any) -> None:
        if len(data_shape) != 3:
            raise ConfigError(f"stabilizers=[path_length] needs images (C, H, W), not samples of shape {data_shape}.")
        self.mean = torch.zeros((), device=device)

    def bind_networks(self, G: nn.Module, D: nn.Module) -> None:
        if not has_w_space(G):
            raise ConfigError(
                f"stabilizers=[path_length] regularises a generator's w space, and {type(G).__name__} has none; "
                "use model=stylegan2."
            )

    def g_regularizer(self, G: nn.Module, z: Tensor, condition: Tensor | None) -> tuple[Tensor | None, Stats]:
        n = max(1, z.shape[0] // self.batch_shrink)
        fresh = torch.randn_like(z[:n])  # latents of its own, as a separate regularisation pass would draw
        lengths = path_lengths(G, fresh, None if condition is None else condition[:n])
        assert self.mean is not None
        mean = self.mean.lerp(lengths.mean(), self.decay)
        self.mean.copy_(mean.detach())  # in place: a captured CUDA graph keeps updating the same tensor
        penalty = (lengths - mean).square().mean()
        stats = {"loss/path_length": penalty.detach(), "G/path_length": mean.detach()}
        return penalty * (self.weight * self.g_reg_every), stats

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.detach().cpu()} if self.mean is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "mean" in state and self.mean is not None:
            self.mean.copy_(state["mean"])
