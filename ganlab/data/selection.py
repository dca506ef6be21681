"""Which of a source's images a run trains on: `data.classes`, `data.limit` and `data.xflip`, for any image source.

- `data.classes=[5,6,7,8,9]`: only those classes (labels kept as they are), for the images and for the metrics.
- `data.limit=N`: a fixed subset of N images, the same for every run whatever its seed (LIMIT_SEED), balanced
  over the classes where the data is labelled. This is how limited-data results are reported (Karras et al.
  2020): the metrics still compare with the whole set (after `classes`), not with the N images.
- `data.xflip=true`: every image also appears mirrored. Each drawn image is mirrored with probability 1/2, which
  draws from the doubled set exactly as often as sampling it would, without holding a second copy.

The keys are taken off the data node before the source is built, so that no source needs to know them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from ganlab.data.base import InMemoryImages, close_source, memory_of
from ganlab.errors import ConfigError
from ganlab.targets import instantiate_node

SELECTION_KEYS = ("classes", "limit", "xflip")
LIMIT_SEED = 0  # the subset of data.limit=N is the same for every run of a data set


def build_data(node: Any, device: torch.device | str, where: str = "data") -> Any:
    """The data source of a data node (`_target_` and its options), with data.classes/limit/xflip applied.
    `where` names the node's options in messages (data.source_options of a source inside another)."""
    resolved = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    classes, limit, xflip = checked_selection(resolved, where)
    data = instantiate_node(without_selection(resolved), where, device=device)
    return select(data, classes, limit, xflip)


def checked_selection(node: dict[str, Any], where: str = "data") -> tuple[list[int] | None, int | None, bool]:
    """data.classes (a list of class indices), data.limit (a count) and data.xflip (true or false) as their
    types, or a message: `data.xflip=no` must not mirror the images, nor `data.limit=2.5` train on 2."""
    classes, limit, xflip = node.get("classes"), node.get("limit"), node.get("xflip")
    if xflip is None:
        xflip = False
    if not isinstance(xflip, bool):
        raise ConfigError(f"{where}.xflip must be true or false, got {xflip!r}.")
    if classes is not None and not (
        isinstance(classes, list | tuple) and all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
    ):
        raise ConfigError(f"{where}.classes must be a list of class indices such as [5,6,7], got {classes!r}.")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise ConfigError(f"{where}.limit must be a whole number of images (or null: all), got {limit!r}.")
    return None if classes is None else list(classes), limit, xflip


def without_selection(node: Any) -> DictConfig:
    """The data node as its source takes it: the whole data set, without data.classes/limit/xflip (what the
    metrics' classifiers train on)."""
    resolved = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    return OmegaConf.create({key: value for key, value in resolved.items() if key not in SELECTION_KEYS})


def select(data: Any, classes: Sequence[int] | None, limit: int | None, xflip: bool) -> Any:
    if classes is None and limit is None and not xflip:
        return data
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) != 3:
        raise ConfigError(
            f"data.classes, data.limit and data.xflip select images (C, H, W); this data has samples of shape {shape}."
        )
    if classes is not None:
        data = only_classes(data, list(classes))
    if limit is not None:
        data = LimitedImages(data, int(limit))
    return Mirrored(data) if xflip else data


def in_memory(data: Any, option: str) -> InMemoryImages:
    memory = memory_of(data)
    if memory is None:
        raise ConfigError(
            f"{option} picks images from a set held in memory, and this folder is streamed from disk: add "
            "data.cache=true."
        )
    return memory


def only_classes(data: Any, classes: list[int]) -> InMemoryImages:
    memory = in_memory(data, "data.classes")
    if memory.labels is None:
        raise ConfigError("data.classes needs labelled data (digits, mnist, a folder with one sub-folder per class).")
    bad = [c for c in classes if not 0 <= int(c) < int(memory.num_classes or 0)]
    if bad or not classes:
        raise ConfigError(
            f"data.classes={classes}: the data's classes are 0..{int(memory.num_classes or 0) - 1}; name at least one."
        )
    keep = torch.isin(memory.labels.cpu(), torch.tensor(classes)).nonzero().squeeze(1)
    images, labels = memory.images[keep.to(memory.images.device)], memory.labels[keep.to(memory.labels.device)]
    return InMemoryImages(images, labels, memory.num_classes, images.device)


def limited_indices(n: int, limit: int, labels: Tensor | None) -> Tensor:
    """`limit` of n indices, by LIMIT_SEED; with labels, taken in turn from each class (balanced up to one)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(LIMIT_SEED))
    if labels is None:
        return order[:limit].sort().values
    ordered_labels = labels.cpu()[order]
    # Each image's rank among its class's images in the seeded order: taking ranks 0, 1, ... balances the classes.
    rank = torch.zeros(n, dtype=torch.long)
    for c in ordered_labels.unique():
        members = (ordered_labels == c).nonzero().squeeze(1)
        rank[members] = torch.arange(len(members))
    by_rank = torch.argsort(rank * (int(ordered_labels.max()) + 1) + ordered_labels, stable=True)
    return order[by_rank[:limit]].sort().values


class LimitedImages(InMemoryImages):
    """`limit` images of `data` to train on; the metrics' real side (`reference`) stays the whole of `data`."""

    def __init__(self, data: Any, limit: int) -> None:
        memory = in_memory(data, "data.limit")
        if not 1 <= limit <= len(memory):
            raise ConfigError(f"data.limit={limit}: the data holds {len(memory)} images; choose 1..{len(memory)}.")
        idx = limited_indices(len(memory), limit, memory.labels)
        labels = None if memory.labels is None else memory.labels[idx.to(memory.labels.device)]
        super().__init__(memory.images[idx.to(memory.images.device)], labels, memory.num_classes, memory.images.device)
        self.reference = data

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        return self.reference.reference_batches(n, batch_size)

    def training_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """min(n, limit) of the images it trains on (ganlab browse looks for copies among them)."""
        return super().reference_batches(n, batch_size)

    def fingerprint(self) -> str:
        return self.reference.fingerprint()  # keys the cached real features, which are the whole set's

    def close(self) -> None:
        close_source(self.reference)


class Mirrored:
    """`data` with every drawn image mirrored left-right with probability 1/2 (data.xflip=true). The metrics'
    real side is `data`'s own, unmirrored. Everything else is `data`'s."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __getattr__(self, name: str) -> Any:  # shape, num_classes, labels, reference_batches, close, ...
        return getattr(self.data, name)

    def __len__(self) -> int:
        return len(self.data)

    def sample(self, batch_size: int) -> Tensor:
        return mirror_half(self.data.sample(batch_size))

    def sample_labeled(self, batch_size: int) -> tuple[Tensor, Tensor]:
        images, labels = self.data.sample_labeled(batch_size)
        return mirror_half(images), labels


def mirror_half(images: Tensor) -> Tensor:
    """Each image mirrored (width reversed) with probability 1/2, drawn on the images' device."""
    flip = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < 0.5
    return torch.where(flip, images.flip(-1), images)
