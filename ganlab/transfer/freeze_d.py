"""FreezeD (Mo et al. 2020): while fine-tuning, D's first k blocks (from its input) keep the weights they came
with, and only the rest of D learns. `model.discriminator.freeze=k` (0: nothing frozen).

A block is what the model builds as one stage: in the Sequential models (mlp, dcgan) a linear or convolutional
layer with the normalisation and activation after it; in resnet each residual block; in stylegan2 the from-RGB
layer, then each resolution's block. The frozen parameters get no gradients and are left out of D's optimizer,
so training leaves them bitwise as they were (their BatchNorm statistics, buffers, still follow the batches).
"""

from __future__ import annotations

from torch import nn

from ganlab.errors import ConfigError

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


def sequential_blocks(layers: nn.Sequential) -> list[nn.Module]:
    """Split a Sequential at each linear or convolutional layer: each block is one such layer and what follows it."""
    blocks: list[list[nn.Module]] = []
    for layer in layers:
        if isinstance(layer, WEIGHT_LAYERS) or not blocks:
            blocks.append([])
        blocks[-1].append(layer)
    return [nn.ModuleList(block) for block in blocks]


def discriminator_blocks(D: nn.Module) -> list[nn.Module]:
    """D's blocks from its input on, or a ConfigError for a D whose blocks ganlab does not know."""
    if hasattr(D, "from_rgb") and isinstance(getattr(D, "blocks", None), nn.ModuleList) and hasattr(D, "epilogue"):
        return [D.from_rgb, *D.blocks]  # stylegan2: blocks run from the image's resolution down
    if isinstance(getattr(D, "blocks", None), nn.Sequential):
        return list(D.blocks)  # resnet
    if isinstance(getattr(D, "net", None), nn.Sequential):
        return sequential_blocks(D.net)  # mlp, dcgan
    raise ConfigError(
        f"model.discriminator.freeze: ganlab does not know the blocks of {type(D).__name__}; FreezeD works with "
        "model=mlp, dcgan, resnet and stylegan2."
    )


def freeze_blocks(D: nn.Module, k: int) -> list[nn.Parameter]:
    """Stop D's first `k` blocks from learning (requires_grad off); returns the parameters frozen."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise ConfigError(f"model.discriminator.freeze must be a whole number of D's first blocks, got {k!r}.")
    if k == 0:
        return []
    blocks = discriminator_blocks(D)
    if not 0 <= k < len(blocks):
        raise ConfigError(
            f"model.discriminator.freeze={k}: {type(D).__name__} here has {len(blocks)} blocks; freeze 0 to "
            f"{len(blocks) - 1} of them (at least the last must learn)."
        )
    frozen = [param for block in blocks[:k] for param in block.parameters()]
    for param in frozen:
        param.requires_grad_(False)
    return frozen
