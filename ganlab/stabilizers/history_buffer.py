"""`trainer.history_buffer.size=N`: SimGAN's history of refined images (Shrivastava et al. 2017, sec. 2.3,
Algorithm 2). A `ratio` share of each D update's fake batch is drawn from a buffer of G's earlier outputs instead
of its current ones, and as many of the current ones take random places in the buffer. D then keeps rejecting
the artefacts of G's past, so that G cannot win by reintroducing an artefact D has forgotten.

Everything stays on the device without host syncs (the D update may be a captured CUDA graph): how full the
buffer is lives in a device tensor, and until it is full the history share falls back to current images. The
buffer is part of the checkpoint, so that a resumed run draws exactly what an uninterrupted one would. It
suits a D that judges the image alone (SimGAN's); a D that also reads the condition (pix2pix) would see old
outputs beside new conditions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganlab.errors import ConfigError


class HistoryBuffer:
    def __init__(self, size: int, ratio: float, shape: tuple[int, ...], device: torch.device) -> None:
        if size < 1:
            raise ConfigError(f"trainer.history_buffer.size must be >= 1 (0: off), got {size}.")
        if not 0 < ratio <= 1:
            raise ConfigError(f"trainer.history_buffer.ratio must be in (0, 1] (SimGAN: 0.5), got {ratio}.")
        self.size, self.ratio = int(size), float(ratio)
        self.images = torch.zeros(self.size, *shape, device=device)
        self.filled = torch.zeros((), dtype=torch.long, device=device)  # entries written so far, at most size

    def mix(self, fake: Tensor) -> Tensor:
        """The D update's fake batch: its first `ratio` share replaced by random earlier outputs (where the buffer
        has them); then those current outputs are stored, appended until the buffer is full, then over random
        entries."""
        fake = fake.detach()
        k = min(len(fake), max(1, round(self.ratio * len(fake))))
        picks = torch.randint(self.size, (k,), device=fake.device)
        earlier = self.images[picks].to(fake.dtype)
        valid = (picks < self.filled).view(-1, *([1] * (fake.dim() - 1)))
        mixed = torch.cat([torch.where(valid, earlier, fake[:k]), fake[k:]])
        self._store(fake[: min(k, self.size)])
        return mixed

    def _store(self, new: Tensor) -> None:
        """Append `new` while there is room, then overwrite distinct random entries of those already written:
        two outputs written to one place would leave CUDA's index_copy_ to choose (nondeterministically) what
        stays, and would keep fewer of G's outputs."""
        n, device = len(new), new.device
        offsets = self.filled + torch.arange(n, device=device)
        # the written entries in a random order (the unwritten ones after them): the overflow takes the first
        ranks = torch.rand(self.size, device=device).masked_fill(
            torch.arange(self.size, device=device) >= self.filled, 2.0
        )
        order = ranks.argsort(stable=True)
        places = torch.where(offsets < self.size, offsets, order[(offsets - self.size).clamp(0, self.size - 1)])
        self.images.index_copy_(0, places, new.to(self.images.dtype))
        self.filled.copy_(torch.clamp(self.filled + n, max=self.size))

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images.cpu(), "filled": self.filled.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["images"].shape) != tuple(self.images.shape):
            raise ConfigError(
                f"the checkpoint's history buffer holds {tuple(state['images'].shape)}, this run's "
                f"{tuple(self.images.shape)}: keep trainer.history_buffer.size as it was to resume."
            )
        self.images.copy_(state["images"])
        self.filled.copy_(state["filled"])


def history_buffer(node: Any, shape: tuple[int, ...], device: torch.device) -> HistoryBuffer | None:
    """trainer.history_buffer as built: None when its size is 0."""
    if not node.size:
        return None
    return HistoryBuffer(int(node.size), float(node.ratio), shape, device)
