"""`augment.*`: what D sees is perturbed the same way for real and generated samples.

DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout applied to every batch D
scores, real and fake alike, so that G is trained through the augmentation and D cannot memorise a small
dataset. Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise added to D's inputs,
making the real and fake distributions overlap; annealed linearly to zero over `instance_noise_steps`.

ADA (augment.ada, ganlab/stabilizers/ada.py) runs first, when on. Augmentation draws from the global torch RNG
on D's device, so a resumed run sees the same draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.errors import ConfigError, check_number

TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the side (the DiffAugment paper's setting)
CUTOUT_RATIO = 0.5  # erase a square half the side


def color(x: Tensor) -> Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per sample, on [-1, 1] images."""
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: Tensor, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each image by whole pixels, up to `ratio` of its side in each direction, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy + sh).expand(b, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx + sw).expand(b, h, w)
    padded = F.pad(x, [sw, sw, sh, sh]).permute(0, 2, 3, 1)  # (B, H', W', C): index pixels, keep channels
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Zero a square of `ratio` times the side at a random centre in each image (clipped at the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    erased = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~erased).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, Callable[[Tensor], Tensor]] = {"color": color, "translation": translation, "cutout": cutout}


def check_policy(policy: Sequence[str], shape: tuple[int, ...]) -> list[str]:
    policy = list(policy)
    unknown = [p for p in policy if p not in POLICIES]
    if unknown:
        raise ConfigError(
            f"augment.diffaugment: {', '.join(unknown)} not known; choose from {', '.join(POLICIES)} "
            "(e.g. augment.diffaugment=[color,translation,cutout])."
        )
    if policy and len(shape) != 3:
        raise ConfigError(f"augment.diffaugment works on images (C, H, W); this data has samples of shape {shape}.")
    return policy


class AugmentedDiscriminator:
    """D behind the augmentations: calling it perturbs the batch, then scores it with D. The losses receive
    this in D's place, so penalties (R1, gradient penalty) see the same D that the objectives do."""

    def __init__(
        self,
        D: nn.Module,
        diffaugment: Sequence[str],
        instance_noise: float,
        instance_noise_steps: int | None,
        shape: tuple[int, ...],
        ada: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        """`ada`: the adaptive augmentation pipeline (augment.ada, ganlab/stabilizers/ada.py), applied first."""
        instance_noise = check_number("augment.instance_noise", instance_noise, 0, meaning=" (a std)")
        if instance_noise_steps is not None and instance_noise_steps < 1:
            raise ConfigError(f"augment.instance_noise_steps must be >= 1 or null, got {instance_noise_steps}.")
        self.D = D
        self.policy = [POLICIES[name] for name in check_policy(diffaugment, shape)]
        if ada is not None:
            self.policy.insert(0, ada)
        self.noise_std0 = float(instance_noise)
        self.noise_steps = instance_noise_steps
        # The current std on D's device: a captured CUDA graph reads it, so the annealing reaches the graph by a
        # fill. Noise is drawn whenever it was asked for at all, so eager and captured steps draw alike.
        param = next(D.parameters(), None) if isinstance(D, nn.Module) else None
        self.noise_std = torch.full((), self.noise_std0, device=param.device if param is not None else "cpu")
        self._std_now = self.noise_std0

    def set_step(self, step: int) -> None:
        """Anneal the instance noise for the G step `step` (1-based) linearly from its start to zero."""
        if self.noise_steps is not None:
            std = self.noise_std0 * max(0.0, 1.0 - (step - 1) / self.noise_steps)
            if std != self._std_now:
                self.noise_std.fill_(std)
                self._std_now = std

    def augment(self, x: Tensor) -> Tensor:
        for transform in self.policy:
            x = transform(x)
        if self.noise_std0 > 0:
            x = x + self.noise_std * torch.randn_like(x)  # a 0-d float32 keeps a bfloat16 batch bfloat16
        return x

    def __call__(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """D's scores for `x` after augmentation; `y`: class labels for a conditional D."""
        return self.D(self.augment(x)) if y is None else self.D(self.augment(x), y)

    def through(self, net: Callable[..., Tensor]) -> Callable[..., Tensor]:
        """This view with D called as `net` (D wrapped in DistributedDataParallel, or compiled): the same
        augmentations and annealed noise, so that the training step and the plain view never drift apart."""

        def critic(x: Tensor, y: Tensor | None = None) -> Tensor:
            x = self.augment(x)
            return net(x) if y is None else net(x, y)

        return critic
