"""Small pieces shared by the architectures."""

from collections.abc import Callable

from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.models.conditional import ConditionalBatchNorm2d


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def check_image_shape(
    shape: tuple[int, ...], model: str, sizes: str, allowed: tuple[int, ...], who: str
) -> tuple[int, int]:
    """(channels, side) of square 1- or 3-channel images whose side is in `allowed`; a ConfigError naming
    `model`, the `sizes` it supports (in words) and what the `who` (generator or discriminator) was given."""
    if len(shape) != 3:
        raise ConfigError(
            f"model={model} needs image data (C, H, W) but the data has samples of shape {tuple(shape)}; "
            "use model=mlp for 2-D or vector data."
        )
    channels, height, width = shape
    if height != width or height not in allowed or channels not in (1, 3):
        raise ConfigError(
            f"model={model} supports {sizes} with 1 or 3 channels; the {who} was given {tuple(shape)}. "
            f"Set data.image_size to {' or '.join(map(str, allowed))}."
        )
    return channels, height


def image_dims(shape: tuple[int, ...], model: str, who: str) -> tuple[int, int, int]:
    """(C, H, W) of an image-to-image model's data, any size; a ConfigError naming `model` and `who` (the
    generator or the discriminator) otherwise."""
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ConfigError(f"model={model} needs image data (C, H, W) but {who} was given samples of shape {shape}.")
    return shape[0], shape[1], shape[2]


def refuse_classes(num_classes: int | None, model: str, given: str, where: str) -> None:
    """An image-to-image model is conditioned on an image (`given` says which), not on class labels."""
    if num_classes is not None:
        raise ConfigError(
            f"{where}: model={model} is conditioned on images, not classes ({given}); set model.conditional=false."
        )


def check_condition(condition: Tensor | None, expected: tuple[int, ...], needs: Callable[[], str]) -> None:
    """Refuse a missing condition image, or one whose (C, H, W) is not `expected`; `needs()` words the message
    (made only then: this runs in every forward pass)."""
    if condition is None or tuple(condition.shape[1:]) != expected:
        got = None if condition is None else tuple(condition.shape[1:])
        raise ConfigError(f"{needs()}, got {got}.")


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
    elif isinstance(module, ConditionalBatchNorm2d):  # its own init, not the N(0, 0.02) of its linear layers
        module.reset_parameters()
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
