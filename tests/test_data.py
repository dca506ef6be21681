"""Data sources: geometry of the toy mixtures, scaling of images, and clear errors for missing data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.data.cifar10 import CIFAR10Data
from ganlab.data.digits import DigitsData
from ganlab.data.fashion_mnist import FashionMNISTData
from ganlab.data.gaussians import GaussiansData
from ganlab.data.image_folder import ImageFolderData
from ganlab.data.mnist import MNISTData
from ganlab.errors import ConfigError
from tests.conftest import write_idx_mnist, write_png_folder


def test_ring8_geometry() -> None:
    data = GaussiansData(kind="ring8")
    assert data.shape == (2,) and data.std == 0.02
    assert torch.allclose(data.centres.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(data.centres[:, 1], data.centres[:, 0]).remainder(2 * math.pi).sort().values
    assert torch.allclose(angles, torch.arange(8) * math.pi / 4, atol=1e-6)
    torch.manual_seed(0)
    x = data.sample(20000)
    nearest = torch.cdist(x, data.centres).min(dim=1).values
    # radial distance to the nearest centre of a 2-D N(0, s^2): mean s * sqrt(pi / 2)
    assert nearest.mean().item() == pytest.approx(0.02 * math.sqrt(math.pi / 2), rel=0.03)


def test_grid25_geometry() -> None:
    data = GaussiansData(kind="grid25", spacing=2.0)
    assert data.std == 0.05
    assert sorted(set(data.centres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert data.centres.shape == (25, 2) and torch.allclose(data.centres.mean(0), torch.zeros(2))
    torch.manual_seed(0)
    counts = torch.cdist(data.sample(25000), data.centres).argmin(1).bincount(minlength=25)
    assert counts.min() > 800  # every mode is drawn, about uniformly (1000 each)


def test_gaussians_bad_values() -> None:
    with pytest.raises(ConfigError, match="ring8, grid25"):
        GaussiansData(kind="spiral")
    with pytest.raises(ConfigError, match="> 0"):
        GaussiansData(std=0.0)


def test_digits_scaled_and_resized() -> None:
    data = DigitsData(image_size=16)
    assert data.shape == (1, 16, 16) and len(data) == 1797 and data.num_classes == 10
    assert data.images.min() == -1.0 and data.images.max() == 1.0
    x = data.sample(32)
    assert x.shape == (32, 1, 16, 16) and x.dtype == torch.float32


def test_digits_read_from_the_bundled_csv_are_scikit_learns_load_digits() -> None:
    from sklearn.datasets import load_digits

    from ganlab.data.digits import read_bundled_digits

    pixels, labels = read_bundled_digits()
    reference = load_digits()
    assert np.array_equal(pixels, reference.images) and np.array_equal(labels, reference.target)
    assert labels.dtype == np.int64


@pytest.mark.parametrize("cls", [MNISTData, FashionMNISTData])
def test_torchvision_sets_from_files_on_disk(cls: type, mnist_root: Path) -> None:
    data = cls(root=str(mnist_root), download=False, image_size=32)
    assert data.shape == (1, 32, 32) and len(data) == 64
    assert data.images.dtype == torch.uint8  # held compactly, converted per batch
    x = data.sample(16)
    assert x.dtype == torch.float32 and x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.5


@pytest.mark.parametrize("cls", [MNISTData, FashionMNISTData, CIFAR10Data])
def test_missing_torchvision_files_give_a_clear_error(cls: type, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not under .*data.download=true"):
        cls(root=str(tmp_path / "nowhere"), download=False)


@pytest.mark.parametrize("cls", [MNISTData, FashionMNISTData])
def test_a_failed_download_leaves_nothing_behind(cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real download that fails (a mirror on a closed local port refuses the connection, with or without a
    network) leaves neither torchvision's empty <Name>/raw/ folder nor a partial archive, and what was there stays."""
    monkeypatch.setattr(cls.dataset_class(), "mirrors", ["http://127.0.0.1:9/"])
    (tmp_path / "data" / "mine").mkdir(parents=True)
    with pytest.raises(ConfigError, match="downloading them failed"):
        cls(root=str(tmp_path / "data"), download=True)
    assert [p.name for p in (tmp_path / "data").rglob("*")] == ["mine"]
    with pytest.raises(ConfigError, match="downloading them failed"):
        cls(root=str(tmp_path / "new"), download=True)
    assert not (tmp_path / "new").exists()


def test_image_folder_streams_resized_crops(tmp_path: Path) -> None:
    write_png_folder(tmp_path / "imgs", n=6, size=(40, 30))
    data = ImageFolderData(root=str(tmp_path / "imgs"), image_size=16, num_workers=0)
    assert len(data) == 6 and data.shape == (3, 16, 16)
    x = data.sample(4)
    assert x.shape == (4, 3, 16, 16) and x.min() >= -1.0 and x.max() <= 1.0
    assert data.sample(8).shape == (8, 3, 16, 16)  # a folder smaller than a batch is repeated
    grey = ImageFolderData(root=str(tmp_path / "imgs"), image_size=16, channels=1, num_workers=0)
    assert grey.sample(2).shape == (2, 1, 16, 16)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        ImageFolderData(root=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        ImageFolderData(root=str(tmp_path / "empty"))


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
@pytest.mark.parametrize("native", [True, False], ids=["uint8-kernel", "through-float"])
def test_mnist_format_files_on_disk_are_read_as_torchvision_reads_them(
    name: str, folder: str, native: bool, tmp_path: Path, monkeypatch
) -> None:
    """Read directly (no torchvision import at start-up): the same pixels and labels as torchvision's loader, and
    the same resize on both of its paths (uint8 on AVX2/AVX-512/ARM CPUs, through float32 elsewhere; torchvision
    0.23 and older also took float32 on AVX-512), each against torchvision making the same choice."""
    from torchvision import datasets
    from torchvision.transforms.v2 import functional as TF

    from ganlab.data import square_images
    from ganlab.data.torchvision_sets import read_idx_split, resize_uint8

    monkeypatch.setattr(square_images, "native_uint8_resize", lambda: native)
    monkeypatch.setattr(TF._geometry, "_do_native_uint8_resize_on_cpu", lambda interpolation: native)
    write_idx_mnist(tmp_path / folder / "raw", n=50)
    theirs = getattr(datasets, folder)(str(tmp_path), train=True, download=False)
    images, labels = read_idx_split(tmp_path / folder / "raw")
    assert torch.equal(images, theirs.data) and torch.equal(labels, theirs.targets)
    batch = images.unsqueeze(1)
    assert torch.equal(resize_uint8(batch, 32), TF.resize(batch, [32, 32], antialias=True))
    (tmp_path / folder / "raw" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")  # truncated
    assert read_idx_split(tmp_path / folder / "raw") is None  # left to torchvision, which says what is wrong
