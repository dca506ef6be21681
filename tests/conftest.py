"""Shared helpers: compose configs the way `ganlab train` does, with debug=fast and tmp_path outputs."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ganlab.config import CONF_DIR, CONFIG_NAME, register_schema

register_schema()
# One thread a test process when pytest-xdist runs several (each worker on a core of its own), else two.
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1)
torch.set_num_threads(THREADS)

REPO = Path(__file__).resolve().parents[1]


# What an image evaluation in the digits classifier's features reports (issue 20: the extractor in every name)
DIGITS_IMAGE_METRICS = {
    "fid_digits",
    "kid_digits",
    "kid_digits_std",
    "is_digits",
    "is_digits_std",
    "precision_digits",
    "recall_digits",
    "classes",
    "class_kl",
}


def compose_cfg(*overrides: str, fast: bool = True) -> DictConfig:
    """The config `ganlab train <overrides>` composes (with debug=fast unless `fast=False`). Composing costs about
    0.16 s and the suite asks for the same overrides hundreds of times, so each is composed once and every caller
    gets its own copy to change."""
    return copy.deepcopy(_composed(tuple(overrides), fast))


@functools.cache
def _composed(overrides: tuple[str, ...], fast: bool) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(CONFIG_NAME, overrides=[*(["debug=fast"] if fast else []), *overrides])


def options(group: str) -> list[str]:
    """Every option of a config group, so that a new YAML is tested by being added."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def ganlab_cli(*args: str, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("ganlab")
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def cli_exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`ganlab <argv>` in-process: (exit code, stderr)."""
    from ganlab.cli import main

    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    return code, capsys.readouterr().err


def exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `ganlab <argv>` in-process; it must exit 2 with a one-paragraph message (no traceback), returned."""
    from ganlab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and err.startswith("ganlab: error: ")
    return err


def write_idx_mnist(raw_dir: Path, n: int = 64, seed: int = 0) -> None:
    """Write a tiny dataset in MNIST's idx format where torchvision's MNIST/FashionMNIST look for it."""
    rng = np.random.default_rng(seed)
    raw_dir.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
    for prefix, count in (("train", n), ("t10k", n)):
        with open(raw_dir / f"{prefix}-images-idx3-ubyte", "wb") as f:
            f.write(struct.pack(">IIII", 2051, count, 28, 28) + images[:count].tobytes())
        with open(raw_dir / f"{prefix}-labels-idx1-ubyte", "wb") as f:
            f.write(struct.pack(">II", 2049, count) + labels[:count].tobytes())


def write_png_folder(root: Path, n: int = 6, size: tuple[int, int] = (40, 30)) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        sub = root / "a" if i % 2 else root / "b" / "nested"  # a tree, not one flat folder
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(sub / f"img{i}.png")


def write_paired_folder(root: Path, n: int = 8, size: int = 16) -> None:
    """pix2pix-style pairs: <root>/A/<name>.png (grey noise) and <root>/B/<name>.png (its negative)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = rng.integers(0, 256, size=(size, size), dtype=np.uint8)
        Image.fromarray(a).save(root / "A" / f"pair{i}.png")
        Image.fromarray(255 - a).save(root / "B" / f"pair{i}.png")


def image_conditioned(model: str, tmp_path: Path) -> list[str]:
    """The overrides that give an image-to-image model (srresnet, refiner, unet) its kind of data, small."""
    if model == "srresnet":
        return ["data=super_resolution", "data.image_size=16", "data.scale=4"]
    if model == "refiner":
        return ["data=unpaired", "+data.synthetic_options.n=100"]
    write_paired_folder(tmp_path / "pairs")
    return [
        "data=paired_folder", f"data.root={tmp_path / 'pairs'}", "data.image_size=16", "data.channels_a=1",
        "data.channels_b=1", "data.heldout=0.25",
    ]  # fmt: skip


IMAGE_TO_IMAGE = {"srresnet": "super_resolution", "refiner": "unpaired", "unet": "paired_folder"}  # model: data


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    """In-process runs let Hydra point the root logger at the test's captured streams, which pytest closes
    afterwards: put the handlers back so that a later test's log lines do not hit a closed stream."""
    import logging

    loggers = [logging.getLogger(), logging.getLogger("ganlab")]
    saved = [(lg, list(lg.handlers), lg.level) for lg in loggers]
    yield
    for lg, handlers, level in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)


@pytest.fixture(autouse=True)
def own_working_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in a folder of its own: an in-process `ganlab train` without hydra.run.dir goes to
    outputs/<date>/<time> of the working directory, and two pytest-xdist workers starting one in the same second
    collided there ("is in use by another run"). Not tmp_path itself: a refused run removes the run directory it
    made, and tests that train into tmp_path would remove the working directory with it."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Classifiers and real-data features go to a cache of the test session, never the user's; torch's hub
    cache (Inception weights) points at an empty folder, as on a machine that never fetched them."""
    root = tmp_path_factory.getbasetemp() / "caches"
    monkeypatch.setenv("GANLAB_CACHE", str(root / "ganlab"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    return root


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    root = tmp_path / "torchvision"
    write_idx_mnist(root / "MNIST" / "raw")
    write_idx_mnist(root / "FashionMNIST" / "raw", seed=1)
    return root


def read_events(run_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[int]]]:
    """Scalars {tag: [(step, value)]} and images {tag: [step]} from a run's TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import (
        IMAGES,
        SCALARS,
        EventAccumulator,
    )

    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0, IMAGES: 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    images = {tag: [e.step for e in acc.Images(tag)] for tag in tags["images"]}
    return scalars, images


def straight_and_resumed_from_step_4(overrides: list[str], tmp_path: Path) -> tuple[dict, dict]:
    """The last checkpoints of a 10-step run and of the same run resumed from its step-4 checkpoint (same
    schedule, so that a linear rate or annealing means the same at every step), for bitwise comparisons."""
    from ganlab.checkpoint import load_checkpoint
    from ganlab.train import train

    common = [*overrides, "trainer.steps=10", "trainer.keep_every=4"]
    train(compose_cfg(*common), tmp_path / "straight")
    middle = tmp_path / "straight" / "checkpoints" / "step_0000004.pt"
    train(compose_cfg(*common, f"resume={middle}"), tmp_path / "resumed")
    return tuple(load_checkpoint(tmp_path / name / "checkpoints" / "last.pt") for name in ("straight", "resumed"))


def assert_same_networks(a: dict, b: dict, nets: tuple[str, ...] = ("G", "D", "G_ema")) -> None:
    for net in nets:
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), f"{net}.{key}"


SMALL_DISK_BYTES = 4 * 2**20  # room for a few debug=fast checkpoints (about 120 kB each) and a filler


def _mount_tmpfs(mount_point: Path, scratch: Path) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_BYTES}", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
        text=True,
    )


def _mount_loop_image(mount_point: Path, scratch: Path) -> None:
    """An ext4 image on a loop device: for machines where tmpfs cannot be mounted but loop devices work.
    No blocks reserved for root (-m 0): the tests run as root wherever mounting works at all."""
    image = scratch / "disk.img"
    with open(image, "wb") as f:
        f.truncate(2 * SMALL_DISK_BYTES)  # ext4's own metadata takes part of it
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True, text=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], check=True, capture_output=True, text=True)


SMALL_DISK_MOUNTS = (_mount_tmpfs, _mount_loop_image)


@pytest.fixture
def small_disk(tmp_path: Path) -> object:
    """A real filesystem of a few MB, mounted for the test and unmounted after it: a tmpfs, else a loop-mounted
    ext4 image, else the test is skipped (mounting needs root, or CAP_SYS_ADMIN in a container)."""
    import logging

    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    reasons = []
    for mount in SMALL_DISK_MOUNTS:
        try:
            mount(mount_point, tmp_path)
            break
        except (OSError, subprocess.CalledProcessError) as err:
            detail = err.stderr.strip() if isinstance(err, subprocess.CalledProcessError) else err
            reasons.append(f"{mount.__name__[1:]}: {detail or err}")
    else:
        pytest.skip("needs a small real filesystem, and none could be mounted here (" + "; ".join(reasons) + ")")
    try:
        yield mount_point
    finally:
        try:
            # In-process runs leave Hydra's log file (<run dir>/train.log) open: a busy filesystem does not
            # unmount. Closing flushes what the full disk refused: make room first, and let a refusal pass.
            (mount_point / "filler").unlink(missing_ok=True)
            for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
                for handler in list(getattr(logger, "handlers", [])):
                    if isinstance(handler, logging.FileHandler) and handler.baseFilename.startswith(str(mount_point)):
                        with contextlib.suppress(OSError):
                            handler.close()
        finally:
            if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", str(mount_point)], check=True)  # gone once its files close


def fill_disk(mount_point: Path, leave: int = 0) -> None:
    """Write a filler file until at most `leave` bytes are free on the filesystem of `mount_point` (leave=0: until
    a write of one small block fails: ext4 refuses a large write whole while it still has room for less)."""
    fd = os.open(mount_point / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # unbuffered: nothing at close
    chunk = 2**20
    try:
        while (free := shutil.disk_usage(mount_point).free) > leave or not leave:
            try:
                os.write(fd, b"\0" * min(max(free - leave, 1024), chunk))
            except OSError:  # full, or full for this much
                if chunk == 1024:
                    break
                chunk = 1024
    finally:
        os.close(fd)
