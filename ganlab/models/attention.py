"""Self-attention for convolutional GANs (SAGAN: Zhang et al. 2019, "Self-Attention Generative Adversarial
Networks", sec. 3).

A convolution only mixes neighbouring pixels, so a G or D made of them relates distant parts of an image only
after many layers. The attention block lets every position look at every other one in one step:

    q, k = 1x1 convs of x to C/8 channels;  v = 1x1 conv of x to C channels (SAGAN's original formulation)
    attn[j, i] = softmax_i(q_j . k_i)       (for each output position j, a distribution over positions i)
    o_j = sum_i attn[j, i] v_i
    out = x + gamma * o                     (gamma a learnable scalar starting at 0)

Starting at gamma = 0 makes the block the identity at initialisation: the network first learns local
structure with its convolutions and lets attention in gradually, as in the paper.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SelfAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 8, 1)  # SAGAN's C/8 for queries and keys; at least one for tiny test widths
        self.query = nn.Conv2d(channels, inner, 1, bias=False)
        self.key = nn.Conv2d(channels, inner, 1, bias=False)
        self.value = nn.Conv2d(channels, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))
        for conv in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (B, C/8, N) with N = H * W positions
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)  # (B, C, N)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N_out, N_in): each row sums to 1 over inputs
        o = (v @ attn.transpose(1, 2)).view(b, c, h, w)  # o[:, :, j] = sum_i attn[j, i] * v[:, :, i]
        return x + self.gamma * o
