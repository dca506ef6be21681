"""`trainer.ema`: an exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019).

After every G step, p_ema <- beta p_ema + (1 - beta) p. The average sits in the middle of the oscillation
that adversarial training leaves in G's weights, so its samples are steadier and usually score better; ganlab
uses it for sample grids, evaluation, `ganlab sample` and `ganlab eval`. Buffers (BatchNorm's running
statistics) are copied, not averaged, as in StyleGAN2-ADA's training loop.

The decay warms up as in TensorFlow's ExponentialMovingAverage: beta_t = min(beta, (1 + t) / (10 + t)) for
the t-th averaged step, so that a long average does not drag the untrained initial weights along for
thousands of steps (with beta = 0.999 they would still weigh 13 % after 2000 steps).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ganlab.errors import ConfigError


def ema_beta(decay: float | None, half_life_images: float | None, batch_size: int) -> float | None:
    """The per-step weight of the old average: `decay` as given, or from a half-life counted in images
    (StyleGAN's ema_kimg): after `half_life_images` images the old weights count half. None: no EMA."""
    if half_life_images is not None:
        if not half_life_images > 0:
            raise ConfigError(f"trainer.ema_half_life must be > 0 images, got {half_life_images}.")
        return 0.5 ** (batch_size / half_life_images)
    if decay is None:
        return None
    if not 0.0 < decay < 1.0:
        raise ConfigError(f"trainer.ema must be a decay in (0, 1) such as 0.999, got {decay}.")
    return float(decay)


class EMA:
    """A frozen copy of G whose weights follow G's with weight `beta` on the past. Before step `start` the
    copy simply tracks G (an average of the first, poor weights helps nobody)."""

    def __init__(self, G: nn.Module, beta: float, start: int = 0) -> None:
        self.beta = beta
        self.start = start
        self.model = copy.deepcopy(G).eval().requires_grad_(False)
        for module in self.model.modules():
            if isinstance(module, nn.RNNBase):
                # a deep copy clones each weight on its own: cuDNN would warn at every forward of the copy that
                # they are "not part of single contiguous chunk" and compact them each time (a no-op on the CPU)
                module.flatten_parameters()
        # 1 - beta of the coming update, on the device: a captured CUDA graph reads it at every replay, so the
        # warm-up's changing decay reaches the graph by a fill, not by a constant frozen into it.
        self.weight = torch.zeros((), device=next(iter(G.parameters())).device)
        self._weight_now: float | None = None

    def beta_at(self, step: int) -> float:
        """The weight of the old average in the update after G step `step` (1-based)."""
        averaged = step - self.start  # 1 for the first averaged step
        if averaged <= 0:
            return 0.0
        return min(self.beta, averaged / (9.0 + averaged))

    def set_step(self, step: int) -> None:
        """Before G step `step`'s update (outside any graph): the device-side weight, filled only when it moves."""
        weight = 1.0 - self.beta_at(step)
        if weight != self._weight_now:
            self.weight.fill_(weight)
            self._weight_now = weight

    @torch.no_grad()
    def update(self, G: nn.Module) -> None:
        """p_ema <- p_ema + (1 - beta) (p - p_ema), over all parameters at once, and a copy of the buffers, with
        the weight `set_step` left (the update may run inside a captured graph, which reads it from the device)."""
        ema_params, params = list(self.model.parameters()), list(G.parameters())
        # p_ema += (1 - beta) (p - p_ema): three foreach operations that stay on CUDA's fast path with a 0-d
        # tensor weight (a foreach lerp with tensor weights falls back to one kernel per parameter)
        step_towards = torch._foreach_sub(params, ema_params)
        torch._foreach_mul_(step_towards, self.weight)
        torch._foreach_add_(ema_params, step_towards)
        buffers = list(self.model.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(G.buffers()))
