"""The in-memory implementation most data sources share (the contract itself is ganlab/protocols.py).

A source knows its sample shape ((C, H, W) or (2,)) and number of classes (None when unlabelled) and hands
out batches already on the training device. Images are scaled to [-1, 1]. A set that fits in memory is one
device tensor sampled by index with the global torch RNG: no DataLoader workers, no host-device copies,
and a resumed run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor


class InMemoryImages:
    """Images held on the device as one tensor (uint8 to save memory, or float in [-1, 1])."""

    device_resident = True  # batches are drawn on the device, without the host: a CUDA graph can capture them

    def __init__(self, images: Tensor, labels: Tensor | None, num_classes: int | None, device: torch.device | str):
        if images.dim() != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
        self.images = images.to(device)
        self.labels = None if labels is None else labels.to(device)
        self.num_classes = num_classes
        self.shape = tuple(images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, batch_size: int) -> Tensor:
        idx = torch.randint(len(self), (batch_size,), device=self.images.device)
        return to_model_range(self.images[idx])

    def sample_labeled(self, batch_size: int) -> tuple[Tensor, Tensor]:
        if self.labels is None:
            raise ValueError("this dataset has no labels")
        idx = torch.randint(len(self), (batch_size,), device=self.images.device)
        return to_model_range(self.images[idx]), self.labels[idx]

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """A fixed subset of min(n, len) real images, in batches: the real side of the metrics. Its own
        seeded generator picks it, so the training RNG does not move."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:n]
        for idx in order.split(batch_size):
            yield to_model_range(self.images[idx.to(self.images.device)])

    def close(self) -> None:
        """Nothing to release: the images are one tensor (DataSource's optional close(), ganlab/protocols.py)."""

    def fingerprint(self) -> str:
        """A hash of the pixels and labels: cached statistics are reused only for exactly this data."""
        h = hashlib.sha256(self.images.cpu().contiguous().numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


SPLIT_SEED = 0  # held-out images are the same for every run of a data set, whatever the run's seed


def split_indices(n: int, heldout: float) -> tuple[Tensor, Tensor]:
    """(training, held-out) indices of n images (or pairs): a fixed random `heldout` share, at least one of each,
    drawn by a generator of its own (SPLIT_SEED), so the split is the same for every run."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_out = min(n - 1, max(1, round(heldout * n)))
    return order[n_out:].sort().values, order[:n_out].sort().values


def option_node(name: str, image_size: int, options: Any) -> Any:
    """A data option's own config (conf/data/<name>.yaml) at `image_size`, with `options` merged in: the source
    that a composite source (super_resolution, unpaired) wraps."""
    from omegaconf import OmegaConf

    from ganlab.config import CONF_DIR

    return OmegaConf.merge(
        OmegaConf.load(CONF_DIR / "data" / f"{name}.yaml"), {"image_size": image_size}, options or {}
    )


def memory_of(data: object) -> Any:
    """The in-memory images of a source (its own `images`, or a cached image folder's `memory`), else None."""
    if getattr(data, "images", None) is not None:
        return data
    memory = getattr(data, "memory", None)
    return memory if getattr(memory, "images", None) is not None else None


def metrics_images(data: object) -> object:
    """The source the metrics compare with: a data.limit source's whole set (its `reference`), else itself."""
    return getattr(data, "reference", data)


def close_source(data: object) -> None:
    """Call the source's optional `close()`, if it has one (DataSource in ganlab/protocols.py)."""
    close = getattr(data, "close", None)
    if callable(close):
        close()


def to_model_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the range of G's tanh output, bitwise what torchvision's
    ToDtype(scale=True) then Normalize(0.5, 0.5) give; float images are assumed to be there already."""
    if images.dtype == torch.uint8:
        return images.float().mul_(2.0 / 255.0).sub_(1.0)
    return images
