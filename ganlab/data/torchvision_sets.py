"""Shared loader for the torchvision datasets (mnist, fashion_mnist, cifar10): small enough to hold on the
device as uint8, so they are loaded once, resized once and sampled by index.

MNIST-format files already on disk are read here directly: importing torchvision costs about 2 s of every run's
start (its package pulls in torch._dynamo), a tenth of a CPU epoch of the MLP GAN. torchvision still downloads
(and reads) whatever is not there yet, and reads CIFAR-10."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from ganlab.data.base import InMemoryImages
from ganlab.data.square_images import resize_batch
from ganlab.errors import ConfigError


def load_torchvision_images(
    dataset_cls: type, name: str, root: str, download: bool, image_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split as uint8 (N, C, S, S) and int64 labels, with a clear error when files are missing."""
    root_path = Path(root).expanduser()
    before = _tree(root_path, dataset_cls.__name__)
    try:
        ds = dataset_cls(str(root_path), train=True, download=download)
    except (RuntimeError, OSError) as err:  # "Dataset not found", download errors, unwritable root
        # A failed download leaves no empty MNIST/raw/ or partial archive behind.
        _remove_new(root_path, dataset_cls.__name__, before)
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
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
    return resize_uint8(images, image_size), labels


def _tree(root: Path, dataset: str) -> set[Path]:
    """What a download may add to: `root` itself, its entries, and everything under root/<dataset> (torchvision's
    folder for MNIST and FashionMNIST). Not all of `root`, which may hold a large image folder."""
    if not root.exists():
        return set()
    own = root / dataset
    return {root, *root.iterdir(), *(own.rglob("*") if own.is_dir() else ())}


def _remove_new(root: Path, dataset: str, before: set[Path]) -> None:
    """Remove what a failed download added since `before` was listed, deepest first."""
    for path in sorted(_tree(root, dataset) - before, key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # new: nothing in it was there before
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass  # not ours to insist on


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C, size, size), bilinear with antialiasing: the calls torchvision's resize makes
    for uint8 tensors (the same pixels; in uint8 or through float32, as it chooses), in chunks to bound the memory."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images.contiguous()
    resized = [resize_batch(chunk, size, size) for chunk in images.split(4096)]
    return torch.cat(resized).contiguous()


def read_idx_split(raw: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The training split of an MNIST-format folder (`<root>/MNIST/raw`, `<root>/FashionMNIST/raw`, as
    torchvision lays it out): uint8 images (N, 28, 28) and int64 labels; None when the files are not there."""
    image_file, label_file = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    if not (image_file.is_file() and label_file.is_file()):
        return None
    images, labels = _read_idx(image_file, 2051), _read_idx(label_file, 2049)
    if images is None or labels is None or images.shape[0] != labels.shape[0]:
        return None  # not what torchvision would read either: let it say what is wrong
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _read_idx(path: Path, magic: int) -> np.ndarray | None:
    """An idx file of unsigned bytes (magic 2051: images, 2049: labels), or None if it is not one."""
    data = path.read_bytes()
    dims = magic - 2048  # 3 for images, 1 for labels
    header = 4 * (1 + dims)
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        return None
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    if len(data) != header + int(np.prod(shape)):
        return None
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


class TorchvisionImages(InMemoryImages):
    dataset_name: str
    idx_folder: str | None = None  # MNIST-format sets: the folder under data.root that holds raw/, read directly
    num_labels = 10

    def __init__(
        self, root: str = "data", download: bool = True, image_size: int = 32, device: torch.device | str = "cpu"
    ) -> None:
        if image_size < 4:
            raise ConfigError(f"data.image_size must be at least 4, got {image_size}.")
        local = read_idx_split(Path(root).expanduser() / self.idx_folder / "raw") if self.idx_folder else None
        if local is not None:
            images, labels = resize_uint8(local[0].unsqueeze(1), image_size), local[1]
        else:
            images, labels = load_torchvision_images(
                self.dataset_class(), self.dataset_name, root, download, image_size
            )
        super().__init__(images, labels, num_classes=self.num_labels, device=device)

    @staticmethod
    def dataset_class() -> type:
        raise NotImplementedError
