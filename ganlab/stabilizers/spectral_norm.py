"""`model.spectral_norm=true`: spectral normalisation of D (Miyato et al. 2018).

Every convolution and linear layer of D has its weight divided by its largest singular value, estimated by
one power iteration per forward pass (torch's own parametrisation; the u, v vectors are buffers and live in
checkpoints). Each layer is then 1-Lipschitz, and D is too if its activations are (LeakyReLU, ReLU).

Under trainer.compile the normalisation runs eagerly, outside the compiled graphs (one graph break per layer).
Compiled, torch 2.14's power iteration broke the backward of a D called twice before its update (real, then fake)
whenever D had a 1x1 convolution (ResNet's shortcuts): "one of the variables needed for gradient computation has
been modified by an inplace operation", the saved v vector being the buffer that the second call updates.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from ganlab.errors import ConfigError
from ganlab.models.equalized import EqualizedConv2d, EqualizedLinear

WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


class SpectralNorm(_SpectralNorm):
    """torch's spectral normalisation (its power iteration, buffers and state-dict keys, bitwise), kept out of
    torch.compile's graphs: see the module's docstring."""

    @torch.compiler.disable
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return super().forward(weight)


def spectral_norm(layer: nn.Module) -> nn.Module:
    """As torch.nn.utils.parametrizations.spectral_norm(layer) (a transposed convolution normalised over its
    output channels, dim 1), with SpectralNorm."""
    dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight, dim=dim))
    return layer


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every weighted layer of `module` in place (and return it). A D with the equalized
    learning rate (progan, stylegan2) is refused: its weights are rescaled at run time, so normalising the stored
    ones would not make the layers 1-Lipschitz, and the papers use neither with the other."""
    if any(isinstance(layer, EqualizedConv2d | EqualizedLinear) for layer in module.modules()):
        raise ConfigError(
            f"model.spectral_norm=true: {type(module).__name__} uses the equalized learning rate (weights rescaled "
            "at run time), which spectral normalisation does not combine with; its papers regularise D with R1 "
            "or the gradient penalty instead (loss.r1=..., loss=wgan_gp)."
        )
    for layer in list(module.modules()):
        if isinstance(layer, WEIGHTED) and not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)
    return module


def largest_singular_values(module: nn.Module) -> list[float]:
    """The exact largest singular value of each weighted layer's effective weight, flattened to a matrix as
    spectral normalisation sees it (out_channels x the rest)."""
    values = []
    for layer in module.modules():
        if isinstance(layer, WEIGHTED):
            weight = layer.weight.detach()
            matrix = weight.transpose(0, 1) if isinstance(layer, nn.ConvTranspose2d) else weight
            values.append(float(torch.linalg.matrix_norm(matrix.flatten(1), ord=2)))
    return values
