"""`data=super_resolution`: (low-res, high-res) pairs from any image source, for SRGAN (model=srresnet).

The high-res images are the source's (`data.source`: digits, mnist, fashion_mnist, cifar10, image_folder) at
`data.image_size`; the low-res input is made from each batch on the device, by bicubic downsampling with
antialiasing (ganlab/data/resize.py), as the SR literature makes its inputs with MATLAB's imresize.

A fixed share of an in-memory source (`data.heldout`, drawn by a generator of its own, the same for every run)
never trains: `ganlab eval` measures PSNR, SSIM and FID on it (ganlab/evaluation_tasks.py). A streaming folder
has no such split; its evaluation uses a fixed subset of the training images, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from ganlab.condition import Paired
from ganlab.data.base import InMemoryImages, close_source, memory_of, option_node, split_indices, to_model_range
from ganlab.data.resize import downsample_bicubic
from ganlab.errors import ConfigError

log = logging.getLogger("ganlab")

SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder")
SCALES = (2, 4, 8)


def source_node(source: str, image_size: int, options: Any) -> DictConfig:
    """The source's own config (conf/data/<source>.yaml) at `image_size`, with `data.source_options` merged in."""
    if source not in SOURCES:
        raise ConfigError(f"data.source={source!r}: super-resolution wraps one of {', '.join(SOURCES)}.")
    return option_node(source, image_size, options)


class SuperResolutionData:
    """High-res images of `source` and their `scale`-times smaller bicubic copies, as (target, condition)
    pairs (condition.Paired)."""

    task = "super_resolution"  # the metrics that fit (ganlab/evaluation_tasks.py)
    num_classes = None  # G is conditioned on the low-res image, not a class
    labels = None

    def __init__(
        self,
        source: str = "digits",
        scale: int = 4,
        image_size: int = 32,
        heldout: float = 0.2,
        source_options: Any = None,
        device: torch.device | str = "cpu",
    ) -> None:
        from ganlab.data.selection import build_data

        if scale not in SCALES:
            raise ConfigError(f"data.scale must be one of {', '.join(map(str, SCALES))}, got {scale}.")
        if image_size % scale or image_size // scale < 2:
            raise ConfigError(
                f"data.image_size={image_size} must be a multiple of data.scale={scale} with at least 2 low-res "
                "pixels a side."
            )
        if not 0 < heldout < 1:
            raise ConfigError(f"data.heldout is the share of images kept out of training, in (0, 1), got {heldout}.")
        self.scale = int(scale)
        self.source_config = source_node(source, image_size, source_options)
        inner = build_data(self.source_config, device, "data.source_options")
        self.shape = tuple(inner.shape)
        if len(self.shape) != 3:
            raise ConfigError(f"data.source={source} is not a source of images.")
        self._fingerprint = inner.fingerprint()
        memory = memory_of(inner)  # an in-memory set, or a cached image folder
        if memory is not None:
            images = memory.images
            train, held = split_indices(images.shape[0], heldout)
            self.train = InMemoryImages(images[train.to(images.device)], None, None, images.device)
            self.heldout_images: Tensor | None = images[held.to(images.device)]
            # The split copies are all of it: the source goes, or the set would sit in (GPU) memory twice,
            # where data.cache=auto planned for once.
            close_source(inner)
            self._inner = None
        else:  # a streaming folder: too large to split here
            self._inner = inner
            self.train = inner
            self.heldout_images = None

    @property
    def device_resident(self) -> bool:
        return bool(getattr(self.train, "device_resident", False))

    def __len__(self) -> int:
        return len(self.train)

    # --- what training draws ----------------------------------------------------------------------------------

    def sample(self, batch_size: int) -> Tensor:
        """High-res training images (what D sees as real)."""
        return self.train.sample(batch_size)

    def low_res(self, high_res: Tensor) -> Tensor:
        """The low-res input, clamped to the image range as a saved low-res image would be (bicubic overshoots
        at hard edges by a few percent)."""
        return downsample_bicubic(high_res, self.scale).clamp_(-1.0, 1.0)

    def sample_pair(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(high-res target, its low-res input)."""
        high = self.sample(batch_size)
        return high, self.low_res(high)

    def conditioning(self) -> Paired:
        return Paired()

    # --- what pictures and evaluation read ---------------------------------------------------------------------

    def evaluation_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """min(n, held-out) fixed high-res images that never trained, in batches; a streaming folder's fixed
        subset of training images instead."""
        if self.heldout_images is None:
            yield from self.train.reference_batches(n, batch_size)
            return
        for chunk in self.heldout_images[:n].split(batch_size):
            yield to_model_range(chunk)

    @property
    def evaluation_size(self) -> int:
        return len(self.heldout_images) if self.heldout_images is not None else len(self.train)

    @property
    def held_out(self) -> bool:
        return self.heldout_images is not None

    def picture_pairs(self, n: int) -> tuple[Tensor, Tensor]:
        """The first n evaluation images and their low-res inputs: the same at every step, no RNG moved."""
        high = torch.cat(list(self.evaluation_batches(n, n)))
        return high, self.low_res(high)

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        return self.train.reference_batches(n, batch_size)

    def fingerprint(self) -> str:
        return f"{self._fingerprint}-sr{self.scale}"

    def close(self) -> None:
        if self._inner is not None:
            close_source(self._inner)
