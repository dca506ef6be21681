"""`data.cache=true` for image folders: the cached pixels are the streamed ones, sampling goes through
InMemoryImages, the memory check refuses what does not fit, and a run trains from the cache."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data import image_folder
from ganlab.data.base import to_model_range
from ganlab.data.image_folder import ImageFiles, ImageFolderData
from ganlab.errors import ConfigError
from ganlab.train import train
from tests.conftest import compose_cfg

SIZES = [(40, 30), (17, 23), (64, 64), (9, 50), (33, 12), (20, 20)]  # varied, some smaller than image_size


def write_folder(root: Path, n: int = 12, classes: bool = True) -> None:
    """n PNGs of varied sizes and shapes; with `classes` half under cats/, half under dogs/ (one nested)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        if classes:
            sub = root / ("cats" if i % 2 else "dogs") / ("deep" if i % 3 == 0 else "")
        else:
            sub = root
        sub.mkdir(parents=True, exist_ok=True)
        w, h = SIZES[i % len(SIZES)]
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(sub / f"img{i:02d}.png")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_folder(tmp_path / "imgs")
    return tmp_path / "imgs"


@pytest.mark.parametrize("channels", [3, 1])
def test_cached_pixels_equal_the_streamed_ones(folder: Path, channels: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ganlab"):
        data = ImageFolderData(str(folder), image_size=16, channels=channels, num_workers=0, cache=True)
    assert data.memory is not None and any("cached 12 images" in r.getMessage() for r in caplog.records)
    cached = data.memory.images
    assert cached.dtype == torch.uint8 and cached.shape == (12, channels, 16, 16)
    streamed = ImageFiles(data.dataset.files, 16, channels, data.dataset.labels)
    for i in range(len(streamed)):
        image, label = streamed[i]
        assert torch.equal(image, to_model_range(cached[i])), data.dataset.files[i]
        assert label == data.memory.labels[i].item()


def test_decoding_through_worker_processes(folder: Path) -> None:
    serial = ImageFolderData(str(folder), image_size=16, num_workers=0, cache=True)
    parallel = ImageFolderData(str(folder), image_size=16, num_workers=2, cache=True)
    assert torch.equal(serial.memory.images, parallel.memory.images)  # the file order is kept


def test_sampling_shapes_range_and_labels(folder: Path) -> None:
    data = ImageFolderData(str(folder), image_size=16, num_workers=0, cache=True)
    assert len(data) == 12 and data.shape == (3, 16, 16)
    assert data.class_names == ["cats", "dogs"] and data.num_classes == 2
    x = data.sample(20)  # more than the folder holds
    assert x.shape == (20, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.5 and x.max() > 0.5
    images, labels = data.sample_labeled(32)
    assert images.shape == (32, 3, 16, 16) and images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.min() >= -1.0 and images.max() <= 1.0
    # each drawn image is one of its label's folder
    by_folder = {0: [], 1: []}
    for i, path in enumerate(data.dataset.files):
        by_folder[data.class_names.index(path.relative_to(folder).parts[0])].append(
            to_model_range(data.memory.images[i])
        )
    for image, label in zip(images, labels.tolist(), strict=True):
        assert any(torch.equal(image, known) for known in by_folder[label])


def test_unlabelled_folder(tmp_path: Path) -> None:
    write_folder(tmp_path / "flat", n=5, classes=False)
    data = ImageFolderData(str(tmp_path / "flat"), image_size=8, num_workers=0, cache=True)
    assert data.num_classes is None and data.class_names is None and data.memory.labels is None
    assert data.sample(3).shape == (3, 3, 8, 8)
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.sample_labeled(3)


def test_sampling_is_deterministic_under_a_seed(folder: Path) -> None:
    data = ImageFolderData(str(folder), image_size=16, num_workers=0, cache=True)
    torch.manual_seed(7)
    first = data.sample(8), *data.sample_labeled(8)
    torch.manual_seed(7)
    second = data.sample(8), *data.sample_labeled(8)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("n", [5, 12, 100])
def test_reference_batches(folder: Path, n: int) -> None:
    data = ImageFolderData(str(folder), image_size=16, num_workers=0, cache=True)
    batches = list(data.reference_batches(n, batch_size=4))
    assert sum(b.shape[0] for b in batches) == min(n, 12) and all(b.shape[0] <= 4 for b in batches)
    assert all(b.dtype == torch.float32 and b.shape[1:] == (3, 16, 16) for b in batches)
    again = list(data.reference_batches(n, batch_size=4))  # a fixed subset
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))


def test_a_cache_larger_than_memory_is_refused(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_folder, "available_memory", lambda: 1000)
    with pytest.raises(ConfigError, match=r"data\.cache=false") as err:
        ImageFolderData(str(folder), image_size=16, num_workers=0, cache=True)
    assert "GB" in str(err.value)
    ImageFolderData(str(folder), image_size=16, num_workers=0)  # streaming needs no such memory
    monkeypatch.setattr(image_folder, "available_memory", lambda: None)  # unknown: no check
    assert ImageFolderData(str(folder), image_size=16, num_workers=0, cache=True).memory is not None


def test_available_memory_reads_the_host() -> None:
    available = image_folder.available_memory()
    if Path("/proc/meminfo").exists():
        assert available is not None and available > 0
    else:
        assert available is None


def test_fingerprint_is_the_same_with_and_without_the_cache(folder: Path) -> None:
    streamed = ImageFolderData(str(folder), image_size=16, num_workers=0)
    cached = ImageFolderData(str(folder), image_size=16, num_workers=0, cache=True)
    assert streamed.fingerprint() == cached.fingerprint()


def test_real_features_are_computed_once_whether_the_folder_is_cached_or_streamed(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data.cache and data.start_method change how the pixels arrive, not which: the metrics' real features
    cached on disk by one run serve the next, whatever the other chose (data.cache=auto may choose differently
    on another machine)."""
    from omegaconf import OmegaConf

    from ganlab.evaluation import Evaluator

    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))
    options = {"_target_": "ganlab.data.image_folder.ImageFolderData", "root": str(folder), "image_size": 16}
    options |= {"channels": 1, "num_workers": 0}
    first = None
    for cache, start_method in ((True, None), (False, None), (False, "spawn")):
        cfg = OmegaConf.create({**options, "cache": cache, "start_method": start_method})
        data = ImageFolderData(str(folder), image_size=16, channels=1, num_workers=0, cache=cache)
        evaluator = Evaluator(data, cfg, "digits", n=12)
        first = evaluator.reference.features if first is None else first
        assert torch.allclose(evaluator.reference.features, first, atol=1e-5)  # the same pixels
    assert len(list((tmp_path / "cache" / "reference").glob("*.pt"))) == 1


def test_a_run_trains_from_the_cache(folder: Path, tmp_path: Path) -> None:
    cfg = compose_cfg(
        "model=dcgan",
        "data=image_folder",
        f"data.root={folder}",
        "data.cache=true",
        "data.image_size=16",
        "data.num_workers=0",
        "trainer.batch_size=4",
    )
    assert cfg.data.cache is True
    train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_cache_defaults_to_auto() -> None:
    cfg = compose_cfg("data=image_folder", "data.root=/somewhere")
    assert cfg.data.cache == "auto"


def test_auto_workers_never_outnumber_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """data.num_workers=auto: 4 decoding processes, fewer on a machine (or a job's CPU allocation) with fewer CPUs,
    where torch's DataLoader warns that so many workers may slow it down."""
    monkeypatch.setattr(image_folder.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert image_folder.worker_count("auto") == 2
    monkeypatch.setattr(image_folder.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert image_folder.worker_count("auto") == 4
    assert image_folder.worker_count(0) == 0 and image_folder.worker_count(7) == 7  # a number is taken as given
    for bad in (-1, "four", 2.5, True):
        with pytest.raises(ConfigError, match="data.num_workers"):
            image_folder.worker_count(bad)


def test_the_default_folder_starts_no_more_workers_than_cpus(folder: Path) -> None:
    """The streamed default on this machine: no DataLoader warning about the worker count, and as many workers."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the DataLoader's "suggested max number of worker" warning would raise
        data = ImageFolderData(str(folder), image_size=16, cache=False)
        try:
            data.sample(4)
            assert len(data.worker_pids) == min(4, image_folder.usable_cpus())
        finally:
            data.close()
