"""`data=image_folder`: every image under `data.root` (recursively), resized and centre-cropped to
`image_size`, streamed through a DataLoader because such folders (CelebA, LSUN) need not fit in memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from ganlab.errors import ConfigError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def find_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ImageFiles(Dataset):
    def __init__(self, files: list[Path], image_size: int, channels: int) -> None:
        self.files = files
        self.mode = "RGB" if channels == 3 else "L"
        self.transform = v2.Compose(
            [
                v2.PILToTensor(),
                v2.Resize(image_size, antialias=True),
                v2.CenterCrop(image_size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize([0.5] * channels, [0.5] * channels),  # [0, 1] -> [-1, 1]
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        with Image.open(self.files[index]) as img:
            return self.transform(img.convert(self.mode))


class ImageFolderData:
    num_classes = None

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        num_workers: int = 4,
        device: torch.device | str = "cpu",
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
        self.dataset = ImageFiles(files, image_size, channels)
        self.shape = (channels, image_size, image_size)
        self.num_workers = num_workers
        self.device = torch.device(device)
        self._batches: Iterator[Tensor] | None = None
        self._batch_size = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def _forever(self, batch_size: int) -> Iterator[Tensor]:
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
        if self._batches is None or batch_size != self._batch_size:
            self._batches, self._batch_size = self._forever(batch_size), batch_size
        batch = next(self._batches)
        if batch.shape[0] < batch_size:  # a folder smaller than one batch: repeat it
            batch = batch.repeat((batch_size + batch.shape[0] - 1) // batch.shape[0], 1, 1, 1)[:batch_size]
        return batch.to(self.device, non_blocking=True)

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """A fixed, seeded subset of min(n, len) images in batches: the real side of the metrics."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:n].tolist()
        loader = DataLoader(Subset(self.dataset, order), batch_size=batch_size, num_workers=self.num_workers)
        for batch in loader:
            yield batch.to(self.device)

    def fingerprint(self) -> str:
        """A hash of the file list with sizes and modification times (reading every image would be slow)."""
        h = hashlib.sha256()
        for path in self.dataset.files:
            stat = path.stat()
            h.update(f"{path.relative_to(self.root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        h.update(f"{self.shape}".encode())
        return h.hexdigest()[:16]
