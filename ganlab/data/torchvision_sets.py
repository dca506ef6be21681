"""Shared loader for the torchvision datasets (mnist, fashion_mnist, cifar10): small enough to hold on the
device as uint8, so they are loaded once, resized once and sampled by index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from ganlab.data.base import InMemoryImages
from ganlab.errors import ConfigError


def load_torchvision_images(
    dataset_cls: type, name: str, root: str, download: bool, image_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split as uint8 (N, C, S, S) and int64 labels, with a clear error when files are missing."""
    root_path = Path(root).expanduser()
    try:
        ds = dataset_cls(str(root_path), train=True, download=download)
    except (RuntimeError, OSError) as err:  # "Dataset not found", download errors, unwritable root
        files = f"torchvision's {dataset_cls.__name__} files"
        detail = " ".join(str(err).split())  # torchvision's messages span lines
        if download:
            advice = f"downloading them failed ({detail}). Without network,"
        else:
            advice = f"download is off ({detail}). Set data.download=true where the network allows, or"
        raise ConfigError(
            f"data={name}: the dataset files are not under {root_path.resolve()} and {advice} put {files} in a "
            "folder and run with data.root=<that folder> data.download=false."
        ) from err
    images = ds.data
    images = torch.from_numpy(images) if isinstance(images, np.ndarray) else images
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)  # -> N, C, H, W
    if images.shape[-1] != image_size:
        images = torch.cat([TF.resize(chunk, [image_size, image_size], antialias=True) for chunk in images.split(4096)])
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
    return images.contiguous(), labels


class TorchvisionImages(InMemoryImages):
    dataset_name: str
    num_labels = 10

    def __init__(
        self, root: str = "data", download: bool = True, image_size: int = 32, device: torch.device | str = "cpu"
    ) -> None:
        if image_size < 4:
            raise ConfigError(f"data.image_size must be at least 4, got {image_size}.")
        images, labels = load_torchvision_images(self.dataset_class(), self.dataset_name, root, download, image_size)
        super().__init__(images, labels, num_classes=self.num_labels, device=device)

    @staticmethod
    def dataset_class() -> type:
        raise NotImplementedError
