"""Small pieces shared by the architectures."""

from torch import nn

from ganlab.errors import ConfigError
from ganlab.models.conditional import ConditionalBatchNorm2d

NORMS = ("batch", "layer", "none")


def check_norm(norm: str, where: str) -> None:
    if norm not in NORMS:
        raise ConfigError(f"{where}={norm!r} is not a normalisation ganlab knows; choose one of {', '.join(NORMS)}.")


def conv_norm(norm: str, channels: int) -> nn.Module:
    """BatchNorm, LayerNorm over (C, H, W) (GroupNorm with one group), or nothing."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) weights for convolutions and linear layers, N(1, 0.02) scales for BatchNorm (Radford et al.),
    conditional or not."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, ConditionalBatchNorm2d):  # per class: classes differ from the start
        nn.init.normal_(module.scale.weight, 1.0, 0.02)
        nn.init.zeros_(module.shift.weight)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
