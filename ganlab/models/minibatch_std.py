"""Minibatch standard deviation (Karras et al. 2018, sec. 3): D sees how varied the batch is.

The layer splits the batch into groups of `group_size`, takes each feature's standard deviation across a
group, averages it into one number per group and appends it to every sample of the group as an extra
feature (an extra channel for feature maps). A collapsed G produces batches with little variation, which D
can then spot, pushing G to spread out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError


class MinibatchStd(nn.Module):
    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if group_size < 2:
            raise ConfigError(f"model.discriminator.minibatch_std is a group size >= 2 (or 0: off), got {group_size}.")
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        g = min(self.group_size, b)
        if b % g:  # a batch that does not split evenly falls back to one group per batch
            g = b
        grouped = x.reshape(g, b // g, *x.shape[1:])  # sample i belongs to group i % (b // g), as in StyleGAN
        std = torch.sqrt(grouped.var(dim=0, unbiased=False) + 1e-8)  # (b // g, features...)
        stat = std.reshape(b // g, -1).mean(dim=1)  # one number per group
        stat = stat.repeat(g)  # back to one per sample, in the grouping's order
        extra = stat.view(b, *([1] * (x.dim() - 1))).expand(b, 1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)
