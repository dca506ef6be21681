"""`data=image_folder`: every image under `data.root` (recursively), resized and centre-cropped to
`image_size`, streamed through a DataLoader because such folders (CelebA, LSUN) need not fit in memory.

With `data.cache=true` the folder is decoded once at start-up into one uint8 tensor and then sampled by index
on the device like the built-in sets (InMemoryImages): no per-epoch JPEG decoding, for folders that fit.

Class labels, as torchvision's ImageFolder: when every image lies inside a sub-folder of the root and there
are at least two, each top-level sub-folder is a class (sorted by name); otherwise the data is unlabelled."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from ganlab.data.base import InMemoryImages
from ganlab.errors import ConfigError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CACHE_MEMORY_FRACTION = 0.5  # a cache may take at most this share of the host's available memory
DECODE_BATCH = 64  # images per DataLoader batch while filling the cache

log = logging.getLogger("ganlab")


def find_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def class_labels(root: Path, files: list[Path]) -> tuple[list[str], list[int]] | None:
    """(class names, one label per file) from the top-level sub-folders, or None when the folder is not
    organised by class (an image directly under the root, or fewer than two sub-folders)."""
    tops = [f.relative_to(root).parts for f in files]
    if any(len(parts) < 2 for parts in tops):
        return None
    names = sorted({parts[0] for parts in tops})
    if len(names) < 2:
        return None
    index = {name: i for i, name in enumerate(names)}
    return names, [index[parts[0]] for parts in tops]


def available_memory() -> int | None:
    """The host's available memory in bytes (MemAvailable of /proc/meminfo), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    return None


class ImageFiles(Dataset):
    """The images, resized and centre-cropped: float in [-1, 1] for streaming, or the uint8 crops (`uint8=True`)
    that the cache holds; the float path is the uint8 one followed by the conversion, so both agree."""

    def __init__(
        self,
        files: list[Path],
        image_size: int,
        channels: int,
        labels: list[int] | None = None,
        uint8: bool = False,
    ) -> None:
        self.files = files
        self.labels = labels
        self.mode = "RGB" if channels == 3 else "L"
        self.uint8 = uint8
        self.crop = v2.Compose([v2.PILToTensor(), v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)])
        self.to_float = v2.Compose(
            [
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize([0.5] * channels, [0.5] * channels),  # [0, 1] -> [-1, 1]
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor | tuple[Tensor, int]:
        with Image.open(self.files[index]) as img:
            image = self.crop(img.convert(self.mode))
        if not self.uint8:
            image = self.to_float(image)
        return image if self.labels is None else (image, self.labels[index])


class ImageFolderData:
    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        num_workers: int = 4,
        device: torch.device | str = "cpu",
        cache: bool = False,
    ) -> None:
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise ConfigError(f"data.root={root} is not a directory: point it at a folder of images.")
        files = find_images(root_path)
        if not files:
            raise ConfigError(
                f"data.root={root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}), searched recursively."
            )
        if channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {channels}.")
        self.root = root_path
        found = class_labels(root_path, files)
        self.class_names = found[0] if found else None
        self.num_classes = len(found[0]) if found else None
        self.dataset = ImageFiles(files, image_size, channels, found[1] if found else None)
        self.shape = (channels, image_size, image_size)
        self.num_workers = num_workers
        self.device = torch.device(device)
        self._batches: Iterator[Any] | None = None
        self._batch_size = 0
        # with the cache, every batch comes from here instead of the streaming DataLoader
        self.memory: InMemoryImages | None = self._decode_all() if cache else None

    def _decode_all(self) -> InMemoryImages:
        """Decode every image once (in parallel through DataLoader workers) into one uint8 (N, C, H, W) tensor,
        after checking that it fits in the host's memory with room to spare."""
        n, shape = len(self.dataset), self.shape
        size = n * shape[0] * shape[1] * shape[2]
        available = available_memory()
        if available is not None and size > available * CACHE_MEMORY_FRACTION:
            raise ConfigError(
                f"data.cache=true would hold {n} images of {shape} in {size / 1e9:.2f} GB, more than half of the "
                f"{available / 1e9:.2f} GB of memory available: use data.cache=false to stream them from disk."
            )
        crops = ImageFiles(self.dataset.files, shape[1], shape[0], uint8=True)
        images = torch.empty((n, *shape), dtype=torch.uint8)
        loader = DataLoader(crops, batch_size=DECODE_BATCH, num_workers=self.num_workers)  # in file order
        start = 0
        for batch in loader:
            images[start : start + batch.shape[0]] = batch
            start += batch.shape[0]
        labels = None if self.dataset.labels is None else torch.tensor(self.dataset.labels, dtype=torch.int64)
        log.info("cached %d images (%.1f MB) from %s", n, size / 1e6, self.root)
        return InMemoryImages(images, labels, self.num_classes, self.device)

    def __len__(self) -> int:
        return len(self.dataset)

    def _forever(self, batch_size: int) -> Iterator[Any]:
        loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=len(self.dataset) >= batch_size,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.num_workers > 0,
        )
        while True:
            yield from loader

    def sample(self, batch_size: int) -> Tensor:
        if self.memory is not None:
            return self.memory.sample(batch_size)
        return self._next(batch_size)[0]

    def sample_labeled(self, batch_size: int) -> tuple[Tensor, Tensor]:
        if self.num_classes is None:
            raise ValueError("this folder has no class sub-folders")
        if self.memory is not None:
            return self.memory.sample_labeled(batch_size)
        images, labels = self._next(batch_size)
        assert labels is not None
        return images, labels

    def _next(self, batch_size: int) -> tuple[Tensor, Tensor | None]:
        if self._batches is None or batch_size != self._batch_size:
            self._batches, self._batch_size = self._forever(batch_size), batch_size
        batch = next(self._batches)
        images, labels = batch if isinstance(batch, list | tuple) else (batch, None)
        if images.shape[0] < batch_size:  # a folder smaller than one batch: repeat it
            repeats = (batch_size + images.shape[0] - 1) // images.shape[0]
            images = images.repeat(repeats, 1, 1, 1)[:batch_size]
            labels = None if labels is None else labels.repeat(repeats)[:batch_size]
        labels = None if labels is None else labels.to(self.device, non_blocking=True)
        return images.to(self.device, non_blocking=True), labels

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """A fixed, seeded subset of min(n, len) images in batches: the real side of the metrics."""
        if self.memory is not None:
            yield from self.memory.reference_batches(n, batch_size)
            return
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:n].tolist()
        loader = DataLoader(Subset(self.dataset, order), batch_size=batch_size, num_workers=self.num_workers)
        for batch in loader:
            yield (batch[0] if isinstance(batch, list | tuple) else batch).to(self.device)

    def fingerprint(self) -> str:
        """A hash of the file list with sizes and modification times (reading every image would be slow). The
        same with and without the cache, which holds the same pixels: cached metric statistics stay valid."""
        h = hashlib.sha256()
        for path in self.dataset.files:
            stat = path.stat()
            h.update(f"{path.relative_to(self.root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        h.update(f"{self.shape}".encode())
        return h.hexdigest()[:16]
