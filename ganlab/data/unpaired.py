"""`data=unpaired`: two image sources, a synthetic one and a real one, for SimGAN (model=refiner).

G refines synthetic images (`data.synthetic`, default rendered_digits) until D cannot tell them from real ones
(`data.real`, default digits). Nothing pairs a synthetic image with a real one: each D update draws a batch of
each. The synthetic source's labels are kept: SimGAN's test (ganlab/evaluators/refinement.py) trains a
classifier on refined synthetic images and scores it on real ones that never trained, a fixed `data.heldout`
share of the real source (drawn by a generator of its own, the same for every run).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from ganlab.condition import Paired
from ganlab.data.base import InMemoryImages, close_source, memory_of, option_node, split_indices, to_model_range
from ganlab.errors import ConfigError

SYNTHETIC_SOURCES = ("rendered_digits", "digits", "mnist", "fashion_mnist", "cifar10", "image_folder")
REAL_SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder")


def in_memory(
    source: str, option: str, image_size: int, options: Any, device: torch.device | str
) -> tuple[Any, DictConfig]:
    """An image source by its option name (conf/data/<source>.yaml at `image_size`, `options` merged in), with
    its images in memory (SimGAN's sets are small, and its test reads all of them), and its config node."""
    from ganlab.data.selection import build_data

    allowed = SYNTHETIC_SOURCES if option == "data.synthetic" else REAL_SOURCES
    if source not in allowed:
        raise ConfigError(f"{option}={source!r}: choose one of {', '.join(allowed)}.")
    node = option_node(source, image_size, options)
    data = memory_of(build_data(node, device, f"{option}_options"))  # in memory, or a cached image folder
    if data is None:
        raise ConfigError(f"{option}={source}: data=unpaired holds its sources in memory; use data.cache=true.")
    return data, node


class UnpairedData:
    """Real images (D's real batches) and synthetic ones (G's inputs), drawn independently (condition.Paired
    with the real batch as the 'target' that D compares G's output with)."""

    task = "refinement"  # the metrics that fit (ganlab/evaluators/refinement.py)
    num_classes = None  # G is conditioned on the synthetic image
    labels = None

    def __init__(
        self,
        synthetic: str = "rendered_digits",
        real: str = "digits",
        image_size: int = 16,
        heldout: float = 0.2,
        synthetic_options: Any = None,
        real_options: Any = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if not 0 < heldout < 1:
            raise ConfigError(
                f"data.heldout is the share of real images kept out of training, in (0, 1), got {heldout}."
            )
        self.synthetic, _ = in_memory(synthetic, "data.synthetic", image_size, synthetic_options, device)
        real_source, self.real_config = in_memory(real, "data.real", image_size, real_options, device)
        if tuple(self.synthetic.shape) != tuple(real_source.shape):
            raise ConfigError(
                f"data.synthetic={synthetic} gives images of {tuple(self.synthetic.shape)}, data.real={real} of "
                f"{tuple(real_source.shape)}: a refiner keeps the size and channels, so they must agree."
            )
        self.shape = tuple(real_source.shape)
        images, labels = real_source.images, real_source.labels
        train, held = split_indices(images.shape[0], heldout)
        train, held = train.to(images.device), held.to(images.device)
        self.real = InMemoryImages(images[train], None, None, images.device)
        self.heldout_images = images[held]
        self.heldout_labels = None if labels is None else labels[held]
        # The split copies are all of the real set: its source goes, or it would sit in (GPU) memory twice.
        self._real_fingerprint = real_source.fingerprint()
        close_source(real_source)

    @property
    def source_config(self) -> DictConfig:
        """The real source's config: the evaluation's features are the real data's own (digits: its classifier)."""
        return self.real_config

    device_resident = True  # both sources are device tensors

    def __len__(self) -> int:
        return len(self.real)

    def sample(self, batch_size: int) -> Tensor:
        """Real training images (what D sees as real)."""
        return self.real.sample(batch_size)

    def sample_pair(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(real images, synthetic images), drawn independently."""
        return self.sample(batch_size), self.synthetic.sample(batch_size)

    def conditioning(self) -> Paired:
        return Paired()

    def picture_pairs(self, n: int) -> tuple[Tensor, Tensor]:
        """The first n synthetic images (to be refined), beside the first n held-out real images for comparison."""
        n_real = min(n, len(self.heldout_images))
        real = to_model_range(self.heldout_images[:n_real])
        synthetic = to_model_range(self.synthetic.images[:n])
        if n_real < len(synthetic):  # fewer real than asked: repeat them
            real = real[torch.arange(len(synthetic), device=real.device) % n_real]
        return real, synthetic

    def synthetic_batches(self, n: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor | None]]:
        """The first min(n, len) synthetic images with their labels, in batches: what the evaluation refines."""
        labels = self.synthetic.labels
        for idx in torch.arange(min(n, len(self.synthetic))).split(batch_size):
            idx = idx.to(self.synthetic.images.device)
            yield to_model_range(self.synthetic.images[idx]), None if labels is None else labels[idx]

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        return self.real.reference_batches(n, batch_size)

    def fingerprint(self) -> str:
        return f"{self.synthetic.fingerprint()}-{self._real_fingerprint}"

    def close(self) -> None:
        close_source(self.synthetic)
