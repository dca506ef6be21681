"""`data=paired_folder`: (A, B) image pairs for image-to-image translation, pix2pix's data (model=unet).

Layout: the input images in `<root>/<a>/` and their targets in `<root>/<b>/` (`data.a`, `data.b`: "A" and "B"
by default), searched recursively; an image of A and one of B form a pair when their paths relative to their
folder, without the suffix, are the same (`A/city/0001.jpg` pairs with `B/city/0001.png`). Files that pair with
nothing are skipped with a warning that counts them; when nothing pairs, a ConfigError shows a few of each side.

Alignment: both images of a pair go through the same resize (the shorter side to `image_size`, antialiased) and
the same centre crop (ganlab/data/image_folder.py's ImageFiles), so a pixel of A and the pixel of B at the same
place stay together. That holds when A and B have the same aspect ratio (pix2pix's sets have the same size);
a pair whose aspect ratios differ is refused, naming it.

Splits: a fixed share of the pairs (`data.heldout`, drawn by a generator of its own seeded with 0, so the same
for every run and every seed) never trains; `ganlab eval` measures L1 and FID on it (ganlab/evaluators/
translation.py), and the run's pictures show its first pairs. A dataset that ships its own split is used as it
is instead, and `data.heldout` is then ignored: either `<root>/train/<a>`, `<root>/train/<b>` with
`<root>/val/...` (or `<root>/test/...` when there is no val), or `<root>/<a>/train`, `<root>/<b>/train` with
`<a>/val`, `<b>/val` (or test), the layout pix2pix's datasets/combine_A_and_B.py reads. (The archives pix2pix
downloads hold A and B side by side in one image; split them into two folders first.)

`data.direction=BtoA` swaps the roles: B's images become G's input and A's the targets (`channels_a` and
`channels_b` stay those of the folders `a` and `b`).

The pairs are decoded once, at start-up, into uint8 tensors on the training device (translation sets are small:
facades has 400 training pairs) and drawn by index with the global torch RNG, one index for both images.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor

from ganlab.condition import Paired
from ganlab.data.base import SPLIT_SEED, split_indices, to_model_range
from ganlab.data.image_folder import (
    CACHE_MEMORY_FRACTION,
    IMAGE_SUFFIXES,
    ImageFiles,
    available_memory,
    find_images,
    named_if_unreadable,
)
from ganlab.errors import ConfigError

log = logging.getLogger("ganlab")

DIRECTIONS = ("AtoB", "BtoA")
TRAIN_SPLIT = "train"
HELD_OUT_SPLITS = ("val", "test")  # the first one present is the held-out split
EXAMPLES = 3  # unpaired files named in a message
ASPECT_TOLERANCE = 0.01  # relative difference of the aspect ratios of a pair's images (rounding of odd sizes)


def pair_key(path: Path, folder: Path) -> str:
    """What pairs an image with its counterpart: its path relative to its folder, without the suffix."""
    return path.relative_to(folder).with_suffix("").as_posix()


def keyed_images(folder: Path, option: str) -> dict[str, Path]:
    """The images under `folder` by pair key; two images with one key (x.png and x.jpg) are ambiguous."""
    images: dict[str, Path] = {}
    for path in find_images(folder):
        key = pair_key(path, folder)
        if key in images:
            raise ConfigError(
                f"{option}: {images[key]} and {path} have the same name without their suffix, so it is unclear "
                "which one pairs with the other folder's image; remove one."
            )
        images[key] = path
    return images


def match_pairs(folder_a: Path, folder_b: Path, option_a: str, option_b: str) -> tuple[list[Path], list[Path]]:
    """(A files, B files) of the pairs, sorted by key. Unpaired files: skipped with a warning, or a ConfigError
    when nothing pairs."""
    images_a, images_b = keyed_images(folder_a, option_a), keyed_images(folder_b, option_b)
    keys = sorted(images_a.keys() & images_b.keys())
    only_a = sorted(images_a.keys() - images_b.keys())
    only_b = sorted(images_b.keys() - images_a.keys())

    def examples(keys: list[str], images: dict[str, Path], folder: Path) -> str:
        shown = ", ".join(str(images[k].relative_to(folder)) for k in keys[:EXAMPLES])
        return shown + (", ..." if len(keys) > EXAMPLES else "") if keys else "none"

    if not keys:
        if not images_a or not images_b:
            empty = folder_a if not images_a else folder_b
            raise ConfigError(
                f"{empty} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}), searched recursively: "
                "data=paired_folder needs the input images in data.root/data.a and their targets in "
                "data.root/data.b."
            )
        raise ConfigError(
            f"no image of {folder_a} ({len(images_a)} images, e.g. {examples(sorted(images_a), images_a, folder_a)}) "
            f"has a counterpart of the same name in {folder_b} ({len(images_b)} images, e.g. "
            f"{examples(sorted(images_b), images_b, folder_b)}): a pair is two images with the same path relative "
            "to their folder, whatever their suffix."
        )
    if only_a or only_b:
        log.warning(
            "data=paired_folder: skipped %d images that pair with nothing: %d in %s (%s) and %d in %s (%s); "
            "using %d pairs",
            len(only_a) + len(only_b),
            len(only_a), folder_a, examples(only_a, images_a, folder_a),
            len(only_b), folder_b, examples(only_b, images_b, folder_b),
            len(keys),
        )  # fmt: skip
    return [images_a[k] for k in keys], [images_b[k] for k in keys]


def split_folders(root: Path, a: str, b: str) -> tuple[tuple[Path, Path], tuple[Path, Path], str] | None:
    """((train A, train B), (held-out A, held-out B), held-out split name) when the dataset ships its split
    (see the module's docstring), else None."""
    layouts = (
        lambda split: (root / split / a, root / split / b),  # <root>/train/A
        lambda split: (root / a / split, root / b / split),  # <root>/A/train
    )
    for folders in layouts:
        train = folders(TRAIN_SPLIT)
        if not all(f.is_dir() for f in train):
            continue
        for split in HELD_OUT_SPLITS:
            held = folders(split)
            if all(f.is_dir() for f in held):
                return train, held, split
    return None


def same_aspect(size_a: tuple[int, int], size_b: tuple[int, int]) -> bool:
    (wa, ha), (wb, hb) = size_a, size_b
    return abs(wa * hb - wb * ha) <= ASPECT_TOLERANCE * max(wa * hb, wb * ha)


def decode_pairs(
    files_a: list[Path], files_b: list[Path], image_size: int, channels_a: int, channels_b: int
) -> tuple[Tensor, Tensor]:
    """Both sides as uint8 (N, C, image_size, image_size), each pair resized and cropped alike."""
    crops_a = ImageFiles(files_a, image_size, channels_a, uint8=True)
    crops_b = ImageFiles(files_b, image_size, channels_b, uint8=True)
    images_a = torch.empty((len(files_a), channels_a, image_size, image_size), dtype=torch.uint8)
    images_b = torch.empty((len(files_b), channels_b, image_size, image_size), dtype=torch.uint8)
    for i, (path_a, path_b) in enumerate(zip(files_a, files_b, strict=True)):
        # The open of each file names it when it fails; the decodes in the body name their own file.
        with named_if_unreadable(path_a), Image.open(path_a) as img_a:
            with named_if_unreadable(path_b), Image.open(path_b) as img_b:
                if not same_aspect(img_a.size, img_b.size):
                    raise ConfigError(
                        f"{path_a} ({img_a.size[0]}x{img_a.size[1]}) and {path_b} ({img_b.size[0]}x{img_b.size[1]}) "
                        "are a pair of different aspect ratios: cropped alike, their pixels would not correspond. "
                        "Give both images of a pair the same shape."
                    )
                with named_if_unreadable(path_a):
                    images_a[i] = crops_a.crop(img_a.convert(crops_a.mode))
                with named_if_unreadable(path_b):
                    images_b[i] = crops_b.crop(img_b.convert(crops_b.mode))
    return images_a, images_b


class PairedFolderData:
    """Paired images as (target, condition) pairs (condition.Paired): B and its input A, or the other way
    round with direction=BtoA."""

    task = "translation"  # the metrics that fit (ganlab/evaluators/translation.py)
    num_classes = None  # G is conditioned on an image, not a class
    labels = None
    device_resident = True  # drawn on the device by index: a CUDA graph can capture the step
    held_out = True  # evaluation reads pairs that never trained

    def __init__(
        self,
        root: str,
        a: str = "A",
        b: str = "B",
        image_size: int = 64,
        channels_a: int = 3,
        channels_b: int = 3,
        direction: str = "AtoB",
        heldout: float = 0.1,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, channels in (("channels_a", channels_a), ("channels_b", channels_b)):
            if channels not in (1, 3):
                raise ConfigError(f"data.{name} must be 1 or 3, got {channels}.")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ConfigError(f"data.image_size must be a positive integer, got {image_size!r}.")
        if direction not in DIRECTIONS:
            raise ConfigError(f"data.direction must be AtoB or BtoA, got {direction!r}.")
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise ConfigError(f"data.root={root} is not a directory: point it at a folder holding {a}/ and {b}/.")
        self.root, self.direction = root_path, direction
        self.source_config: DictConfig = OmegaConf.create(
            {
                "_target_": f"{__name__}.{type(self).__name__}",
                "root": str(root),
                "a": a,
                "b": b,
                "image_size": image_size,
                "channels_a": channels_a,
                "channels_b": channels_b,
                "direction": direction,
                "heldout": heldout,
            }
        )  # the data node, as the metrics' default features read it (inception: no classifier of its own)

        start = time.perf_counter()
        shipped = split_folders(root_path, a, b)
        if shipped is not None:
            (train_a, train_b), (held_a, held_b), split = shipped
            files_train = match_pairs(train_a, train_b, "data.a", "data.b")
            files_held = match_pairs(held_a, held_b, "data.a", "data.b")
            self.split = f"{TRAIN_SPLIT}/{split} folders"
            n_train, n_held = len(files_train[0]), len(files_held[0])
            files_a, files_b = files_train[0] + files_held[0], files_train[1] + files_held[1]
            train, held = torch.arange(n_train), torch.arange(n_train, n_train + n_held)
            log.info("data=paired_folder: using the %s split of %s (data.heldout is not used)", split, root_path)
        else:
            folder_a, folder_b = root_path / a, root_path / b
            for folder, option in ((folder_a, "a"), (folder_b, "b")):
                if not folder.is_dir():
                    raise ConfigError(
                        f"data.root={root} has no folder {folder.name}/ (data.{option}={folder.name}): "
                        f"data=paired_folder reads the input images from {folder_a} and their targets from "
                        f"{folder_b}, or from {TRAIN_SPLIT}/ and {'/'.join(HELD_OUT_SPLITS)}/ sub-folders each "
                        f"holding {a}/ and {b}/."
                    )
            if isinstance(heldout, bool) or not isinstance(heldout, int | float) or not 0 < heldout < 1:
                raise ConfigError(f"data.heldout is the share of pairs kept out of training, in (0, 1), got {heldout}.")
            files_a, files_b = match_pairs(folder_a, folder_b, "data.a", "data.b")
            if len(files_a) < 2:
                raise ConfigError(
                    f"data=paired_folder found {len(files_a)} pair in {root}: it needs at least 2, one to train "
                    "on and one held out."
                )
            train, held = split_indices(len(files_a), float(heldout))
            self.split = f"held-out share {heldout} (seed {SPLIT_SEED})"

        size = sum(len(files_a) * c * image_size**2 for c in (channels_a, channels_b))
        available = available_memory()
        if available is not None and size > available * CACHE_MEMORY_FRACTION:
            raise ConfigError(
                f"data=paired_folder would hold {len(files_a)} pairs at {image_size}x{image_size} in "
                f"{size / 1e9:.2f} GB, more than half of the {available / 1e9:.2f} GB of memory available: "
                "lower data.image_size."
            )
        images_a, images_b = decode_pairs(files_a, files_b, image_size, channels_a, channels_b)
        log.info(
            "data=paired_folder: decoded %d pairs (%d training, %d held out; %s) from %s in %.1f s",
            len(files_a), len(train), len(held), self.split, root_path, time.perf_counter() - start,
        )  # fmt: skip
        targets, conditions = (images_b, images_a) if direction == "AtoB" else (images_a, images_b)
        self.device = torch.device(device)
        self.train_targets = targets[train].to(self.device)
        self.train_conditions = conditions[train].to(self.device)
        self.heldout_targets = targets[held].to(self.device)
        self.heldout_conditions = conditions[held].to(self.device)
        self.shape = tuple(targets.shape[1:])
        self.condition_shape = tuple(conditions.shape[1:])

    def __len__(self) -> int:
        """The training pairs."""
        return self.train_targets.shape[0]

    # --- what training draws ----------------------------------------------------------------------------------

    def sample(self, batch_size: int) -> Tensor:
        """Training targets (what D sees as real)."""
        idx = torch.randint(len(self), (batch_size,), device=self.device)
        return to_model_range(self.train_targets[idx])

    def sample_pair(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(target, its condition) for random training pairs: one index draw for both, in [-1, 1]."""
        idx = torch.randint(len(self), (batch_size,), device=self.device)
        return to_model_range(self.train_targets[idx]), to_model_range(self.train_conditions[idx])

    def conditioning(self) -> Paired:
        return Paired()

    # --- what pictures and evaluation read ---------------------------------------------------------------------

    @property
    def evaluation_size(self) -> int:
        return self.heldout_targets.shape[0]

    def evaluation_batches(self, n: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """The first min(n, held-out) held-out (target, condition) pairs, in a fixed order, in batches."""
        n = min(n, self.evaluation_size)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield to_model_range(self.heldout_targets[start:stop]), to_model_range(self.heldout_conditions[start:stop])

    def picture_pairs(self, n: int) -> tuple[Tensor, Tensor]:
        """The first min(n, held-out) held-out pairs: the same at every step, no RNG moved."""
        n = min(n, self.evaluation_size)
        return to_model_range(self.heldout_targets[:n]), to_model_range(self.heldout_conditions[:n])

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """A fixed, seeded subset of min(n, len) training targets in batches (ImageSource, ganlab/protocols.py)."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:n]
        for idx in order.split(batch_size):
            yield to_model_range(self.train_targets[idx.to(self.device)])

    def fingerprint(self) -> str:
        """A hash of the pixels of both sides, split and direction included."""
        h = hashlib.sha256()
        for images in (self.train_targets, self.train_conditions, self.heldout_targets, self.heldout_conditions):
            h.update(f"{tuple(images.shape)};".encode())
            h.update(images.cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def close(self) -> None:
        """Nothing to release: the pairs are tensors (DataSource's optional close(), ganlab/protocols.py)."""
