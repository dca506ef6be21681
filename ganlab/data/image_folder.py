"""`data=image_folder`: every image under `data.root` (recursively), made `image_size` square as `data.crop` says,
streamed through a DataLoader because such folders (CelebA, LSUN) need not fit in memory.

`data.crop` (center, the default, pad or resize) decides what happens to a non-square image: `center` resizes
the short side to `image_size` and crops the middle of the long side; `pad` resizes the long side to
`image_size`, keeping the aspect ratio, and pads the short side symmetrically with black (0, which is -1 in the
model's [-1, 1]); `resize` stretches the image to the square, ignoring the aspect ratio.

Images in other modes than RGB and L (RGBA, LA, palette, CMYK, 16-bit ...) are converted to `data.channels`, the
transparent ones composited on black rather than losing their alpha channel and showing whatever colour hides
under it. A pre-scan of the files' headers when the source is built counts them, and one INFO message per source
says how many there were and of which modes (one message whether the images are then cached or streamed by
worker processes).

`data.cache` (true, false or auto, the default) decides whether the folder is instead decoded once at start-up
into one uint8 tensor and then sampled by index on the device like the built-in sets (InMemoryImages): no
per-epoch decoding. `true` caches (refused when it would take more than half the available memory), `false`
streams, `auto` caches when the decoded folder takes at most AUTO_CACHE_FRACTION of the available memory (the
host's, and on CUDA also the device's free memory) and streams otherwise.

The stream never ends an epoch: one shuffled pass follows the other (EndlessBatches), so there is no reset
handshake and no drained pipeline between epochs. Its worker processes start in the constructor, before the
models and optimizers reach the device (see `_start_workers`), it reports how long its first batch and its
shutdown took (`timings()`, also logged at INFO on the "ganlab" logger), and `close()` stops the workers at
once instead of whenever the garbage collector or the interpreter's exit gets to them.

Class labels, as torchvision's ImageFolder: when every image lies inside a sub-folder of the root and there
are at least two, each top-level sub-folder is a class (sorted by name); otherwise the data is unlabelled."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ganlab.data.base import InMemoryImages, to_model_range
from ganlab.data.square_images import square_transform
from ganlab.errors import ConfigError, check_non_negative

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CROPS = ("center", "pad", "resize")  # data.crop: how a non-square image becomes image_size x image_size
PLAIN_MODES = ("RGB", "L")  # converted into each other as PIL does, without a message
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")  # composited on black (so is a palette with a transparent entry)
CACHE_MEMORY_FRACTION = 0.5  # data.cache=true may take at most this share of the host's available memory
AUTO_CACHE_FRACTION = 0.25  # data.cache=auto caches only what takes at most this share (host, and CUDA's free)
DECODE_BATCH = 64  # images per DataLoader batch while filling the cache
MAX_AUTO_WORKERS = 4  # data.num_workers=auto: this many decoding processes, or fewer where fewer CPUs are usable
# False: the training thread pins each batch (`pin_memory()`, from torch's caching host allocator) right before
# its asynchronous copy to the GPU. True: torch's pin-memory thread does, as DataLoader(pin_memory=True). That
# thread together with persistent workers is what pytorch/pytorch#81794 ("Dataloader hangs on exit", 5 s per
# worker) needs, and it sets a CUDA device in a thread of its own; pinning one batch here is a memcpy.
PIN_MEMORY_THREAD = False

log = logging.getLogger("ganlab")


def worker_count(num_workers: int | str) -> int:
    """data.num_workers as a number: `auto` is MAX_AUTO_WORKERS, or as many CPUs as this process may use where
    that is fewer (torch's DataLoader warns that more workers than usable CPUs may slow it down or freeze it)."""
    if num_workers == "auto":
        return max(1, min(MAX_AUTO_WORKERS, usable_cpus()))
    check_non_negative("data", num_workers=num_workers)  # 0: decoded in the training process
    return int(num_workers)


def check_start_method(start_method: object) -> str | None:
    """data.start_method's value (None: the platform's default), or a ConfigError naming those this platform has.

    How the decoding worker processes start. The default is fork on Linux up to Python 3.13: a worker starts in
    milliseconds and shares the file list without pickling it. The workers only decode images on the CPU and
    never touch CUDA, so a fork after CUDA is initialised is safe for them (torch raises "Cannot re-initialize
    CUDA in forked subprocess" rather than misbehave if one ever did); what a late fork costs is copying a large
    parent's page tables and the copy-on-write faults after it, which starting the workers in the constructor
    keeps small. forkserver (Python 3.14's default on Linux) and spawn start every worker from a fresh
    interpreter that imports torch again: seconds, in parallel with building the models. On a 2-core CPU a
    20-step streaming run's first draw waited no longer with forkserver than with fork (0.07 s), but the run took
    0.7-1.4 s more, the workers' imports competing with the models for the two cores. pytorch/pytorch#68383
    reports forked workers slower once CUDA is initialised; scripts/gpu_check.py times both on a GPU."""
    if start_method is None:
        return None
    methods = multiprocessing.get_all_start_methods()
    if start_method not in methods:
        raise ConfigError(
            f"data.start_method must be null (the platform's default) or one of {', '.join(methods)}, got "
            f"{start_method!r}: it decides how the processes that decode images start."
        )
    return str(start_method)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which a cluster job's allocation narrows)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def find_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def check_crop(crop: object) -> str:
    """data.crop's value, or a ConfigError naming the choices (raised before any image is decoded)."""
    if not isinstance(crop, str) or crop not in CROPS:
        raise ConfigError(
            f"data.crop={crop!r}: choose center (resize the short side to data.image_size and crop the middle of "
            "the long side), pad (resize the long side and pad the short side with black) or resize (stretch to "
            "the square, ignoring the aspect ratio)."
        )
    return crop


def is_transparent(img: Image.Image) -> bool:
    """Whether an image of a non-plain mode has an alpha channel or a transparent palette entry (the header says
    so: no decoding)."""
    return img.mode in ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)


def to_mode(img: Image.Image, mode: str) -> Image.Image:
    """The image in `mode` (RGB or L). RGB and L convert as PIL does (as before data.crop existed); transparent
    images are composited on black first, since PIL's plain convert drops the alpha channel and shows whatever
    colour the transparent pixels happen to hold (often noise or white)."""
    if img.mode in PLAIN_MODES or not is_transparent(img):
        return img.convert(mode)
    rgba = img.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), rgba).convert(mode)


READ_ERRORS = (OSError, ValueError, Image.DecompressionBombError)  # not an image, truncated, corrupt, too large
UNREADABLE_LISTED = 5  # the message names this many of the unreadable files


class UnreadableImage(ConfigError):
    """A file under data.root that PIL cannot open or decode. Raised in a DataLoader worker, it comes back to
    the training process with the worker's traceback around its message (torch re-raises `type(message)`):
    only the message's own last line is kept, so the command line prints one clean sentence."""

    def __init__(self, message: str) -> None:
        last = message.strip().splitlines()[-1] if "Original Traceback" in message else message
        super().__init__(last.removeprefix(f"{__name__}.{type(self).__qualname__}: "))


def unreadable_message(failures: list[tuple[Path, BaseException]], option: str | None = None) -> str:
    """Names the files; `option` is the setting that led to them (`data.root=...`, `input=...`)."""

    def reason(err: BaseException) -> str:
        return "not an image format PIL can identify" if isinstance(err, UnidentifiedImageError) else str(err)

    named = "; ".join(f"{path} ({reason(err)})" for path, err in failures[:UNREADABLE_LISTED])
    more = f" and {len(failures) - UNREADABLE_LISTED} more" if len(failures) > UNREADABLE_LISTED else ""
    count = "1 file" if len(failures) == 1 else f"{len(failures)} files"
    where = f" under {option}" if option is not None else ""
    return (
        f"{count}{where} cannot be read as an image (not an image, truncated or corrupt): {named}{more}. "
        f"Remove or replace {'it' if len(failures) == 1 else 'them'}."
    )


@contextlib.contextmanager
def named_if_unreadable(path: Path) -> Iterator[None]:
    """Reading `path`'s image inside: a failure to open or decode it (not an image, truncated, corrupt, too
    large) becomes an UnreadableImage that names the file. ganlab's own ConfigErrors (ValueErrors too) pass."""
    try:
        yield
    except ConfigError:
        raise
    except READ_ERRORS as err:
        raise UnreadableImage(unreadable_message([(path, err)])) from err


def scan_modes(files: list[Path], option: str | None = None) -> tuple[Counter[str], int]:
    """(how many files of each non-plain mode, how many of those are transparent), from the headers alone
    (Image.open decodes no pixels). Files whose header cannot be read are refused here, all of them named in one
    message, before any worker starts; a file that fails later, in its pixels, is named when it is decoded."""
    modes: Counter[str] = Counter()
    transparent = 0
    failures: list[tuple[Path, BaseException]] = []
    for path in files:
        try:
            with Image.open(path) as img:
                if img.mode not in PLAIN_MODES:
                    modes[img.mode] += 1
                    transparent += is_transparent(img)
        except READ_ERRORS as err:
            failures.append((path, err))
    if failures:
        raise UnreadableImage(unreadable_message(failures, option))
    return modes, transparent


def conversion_message(modes: Counter[str], transparent: int, total: int, mode: str, where: Path) -> str | None:
    """The one line that reports the converted files, or None when there were none."""
    if not modes:
        return None
    counts = ", ".join(f"{m}: {n}" for m, n in sorted(modes.items(), key=lambda item: (-item[1], item[0])))
    message = f"{sum(modes.values())} of {total} images in {where} were converted to {mode} ({counts})"
    if transparent:
        message += f"; transparent pixels (in {transparent} of them) are composited on black"
    return message


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


def free_device_memory(device: torch.device) -> int | None:
    """Free memory on a CUDA device in bytes, or None for other devices (MPS shares the host's memory)."""
    if device.type != "cuda":
        return None
    try:
        return int(torch.cuda.mem_get_info(device)[0])
    except (RuntimeError, AssertionError):
        return None


class ImageFiles(Dataset):
    """The images, made square as `crop` says: float in [-1, 1] for streaming, or the uint8 squares (`uint8=True`)
    that the cache holds; the float path is the uint8 one followed by the conversion, so both agree.

    `crop` (the transform) and `mode` are also what data=paired_folder applies to its pairs itself."""

    def __init__(
        self,
        files: list[Path],
        image_size: int,
        channels: int,
        labels: list[int] | None = None,
        uint8: bool = False,
        crop: str = "center",
    ) -> None:
        self.files = files
        self.labels = labels
        self.mode = "RGB" if channels == 3 else "L"
        self.uint8 = uint8
        self.crop = square_transform(check_crop(crop), image_size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor | tuple[Tensor, int]:
        path = self.files[index]
        with named_if_unreadable(path), Image.open(path) as img:  # e.g. a truncated file, whose header read well
            image = self.crop(to_mode(img, self.mode))
        if not self.uint8:
            image = to_model_range(image)
        return image if self.labels is None else (image, self.labels[index])


class EndlessBatches(Sampler[list[int]]):
    """Batches of indices, forever: one pass in a random order after another, from a generator of its own, a
    batch running on from one pass into the next (so every batch is full, even from a folder smaller than it).

    Until `start` it yields nothing: a DataLoader iterator created before then starts its workers and sends
    them no work. After `start`, a new `iter(loader)` (with persistent workers: the same processes, which first
    drop what they were doing) streams batches of the given size in the order that the seed decides."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.batch_size = 0
        self.generator: torch.Generator | None = None

    def start(self, batch_size: int, seed: int) -> None:
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def stop(self) -> None:
        self.batch_size, self.generator = 0, None

    def __iter__(self) -> Iterator[list[int]]:
        generator, batch_size = self.generator, self.batch_size
        if generator is None:
            return
        batch: list[int] = []
        while True:
            for i in torch.randperm(self.n, generator=generator).tolist():
                batch.append(i)
                if len(batch) == batch_size:
                    yield batch
                    batch = []


class ImageFolderData:
    """An image folder as a data source: cached in memory or streamed (see the module's docstring).

    The stream's timings, in seconds (None until they happen): `start_s` to start the worker processes,
    `first_batch_s` from then until the first batch was in hand, `first_wait_s` how long the first draw waited
    (what the early start did not hide), `wait_s` all draws' waiting, over `batches` batches, and `shutdown_s`
    for `close()`. `timings()` returns them as a dict."""

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        num_workers: int | str = "auto",
        device: torch.device | str = "cpu",
        cache: bool | str = False,
        crop: str = "center",
        start_method: str | None = None,
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
        if not (isinstance(cache, bool) or cache == "auto"):
            raise ConfigError(
                f"data.cache must be true, false or auto, got {cache!r}: true decodes the folder into memory once, "
                "false streams it from disk, auto caches it when it fits easily in memory."
            )
        self.crop = check_crop(crop)
        self.start_method = check_start_method(start_method)
        num_workers = worker_count(num_workers)
        self.root = root_path
        found = class_labels(root_path, files)
        self.class_names = found[0] if found else None
        self.num_classes = len(found[0]) if found else None
        self.dataset = ImageFiles(files, image_size, channels, found[1] if found else None, crop=self.crop)
        self.composited = self._report_conversions()
        self.shape = (channels, image_size, image_size)
        self.num_workers = num_workers
        self.device = torch.device(device)
        self._sampler = EndlessBatches(len(files))
        self._loader: DataLoader | None = None
        self._iterator: Iterator[Any] | None = None
        self._started_at = 0.0
        self.start_s: float | None = None
        self.first_batch_s: float | None = None
        self.first_wait_s: float | None = None
        self.wait_s = 0.0
        self.batches = 0
        self.shutdown_s: float | None = None
        # with the cache, every batch comes from here instead of the streaming DataLoader
        self.memory: InMemoryImages | None = self._decode_all() if self._should_cache(cache) else None
        if self.memory is None and num_workers > 0:
            self._start_workers()

    def _report_conversions(self) -> int:
        """Log once, for this source, how many files are not RGB or L and get converted (counted from their
        headers here, since streaming decodes them in worker processes); return how many were transparent."""
        start = time.perf_counter()
        modes, transparent = scan_modes(self.dataset.files, f"data.root={self.root}")
        log.debug("image_folder: read %d headers in %.3f s", len(self.dataset), time.perf_counter() - start)
        message = conversion_message(modes, transparent, len(self.dataset), self.dataset.mode, self.root)
        if message is not None:
            log.info("image_folder: %s", message)
        return transparent

    def _cache_bytes(self) -> int:
        c, h, w = self.shape
        return len(self.dataset) * c * h * w

    def _should_cache(self, cache: bool | str) -> bool:
        """data.cache=true: cache, refused when it would take more than half the available memory. false:
        stream. auto: cache when it takes at most AUTO_CACHE_FRACTION of the host's available memory and, on
        CUDA, of the device's free memory (the cache lives there); stream otherwise, or where memory is
        unknown."""
        n, size = len(self.dataset), self._cache_bytes()
        available = available_memory()
        if cache is True:
            if available is not None and size > available * CACHE_MEMORY_FRACTION:
                raise ConfigError(
                    f"data.cache=true would hold {n} images of {self.shape} in {size / 1e9:.2f} GB, more than half "
                    f"of the {available / 1e9:.2f} GB of memory available: use data.cache=false (or auto) to stream "
                    "them from disk."
                )
            return True
        if cache is False:
            return False
        if available is None:
            log.info("data.cache=auto: streaming %s (the host's available memory is unknown)", self.root)
            return False
        limits = {"host memory available": available, "device memory free": free_device_memory(self.device)}
        for what, amount in limits.items():
            if amount is not None and size > amount * AUTO_CACHE_FRACTION:
                log.info(
                    "data.cache=auto: streaming %d images from %s: decoded they would take %.2f GB, more than "
                    "%g of the %.2f GB of %s",
                    n, self.root, size / 1e9, AUTO_CACHE_FRACTION, amount / 1e9, what,
                )  # fmt: skip
                return False
        log.info("data.cache=auto: caching %d images (%.1f MB) from %s", n, size / 1e6, self.root)
        return True

    def _decode_all(self) -> InMemoryImages:
        """Decode every image once (in parallel through DataLoader workers) into one uint8 (N, C, H, W) tensor."""
        n, shape, size = len(self.dataset), self.shape, self._cache_bytes()
        start = time.perf_counter()
        crops = ImageFiles(self.dataset.files, shape[1], shape[0], uint8=True, crop=self.crop)
        images = torch.empty((n, *shape), dtype=torch.uint8)
        loader = DataLoader(  # in file order
            crops, batch_size=DECODE_BATCH, num_workers=self.num_workers, multiprocessing_context=self._context()
        )
        first = 0
        for batch in loader:
            images[first : first + batch.shape[0]] = batch
            first += batch.shape[0]
        labels = None if self.dataset.labels is None else torch.tensor(self.dataset.labels, dtype=torch.int64)
        log.info("cached %d images (%.1f MB) from %s in %.1f s", n, size / 1e6, self.root, time.perf_counter() - start)
        return InMemoryImages(images, labels, self.num_classes, self.device)

    def __len__(self) -> int:
        return len(self.dataset)

    # --- the stream -------------------------------------------------------------------------------------------

    def _context(self) -> str | None:
        return self.start_method if self.num_workers > 0 else None  # DataLoader refuses one without workers

    def _make_loader(self) -> DataLoader:
        workers = self.num_workers > 0
        return DataLoader(
            self.dataset,
            batch_sampler=self._sampler,
            num_workers=self.num_workers,
            pin_memory=PIN_MEMORY_THREAD and self.device.type == "cuda",
            persistent_workers=workers,
            multiprocessing_context=self._context(),
            # only the workers' base seed (the decoding draws no random numbers); drawing it from the global
            # RNG would move the training's random numbers, as creating the loader here would be a new draw
            generator=torch.Generator().manual_seed(0),
        )

    def _start_workers(self) -> None:
        """Start the worker processes now, with no work yet (EndlessBatches yields nothing before `start`).

        build() instantiates the data right after resolving the device and before the models, optimizers and
        compiled steps reach it, so forking here copies a small parent: no model, optimizer state or compiled
        code yet, though on CUDA the context already exists (build() sets the device first; pytorch/pytorch#68383
        reports forked workers slower once CUDA is initialised, which scripts/gpu_check.py's stream row measures).
        The workers start while the models are built instead of inside the first training step, and they never
        touch CUDA (pinning is the parent's)."""
        self._loader = self._make_loader()
        self._started_at = time.perf_counter()
        self._iterator = iter(self._loader)
        self.start_s = time.perf_counter() - self._started_at
        log.debug("image_folder: started %d workers in %.3f s", self.num_workers, self.start_s)

    def _next(self, batch_size: int) -> tuple[Tensor, Tensor | None]:
        first = self._sampler.batch_size != batch_size  # the first draw, or a new batch size
        start = time.perf_counter()
        if first:
            if self._loader is None:  # no workers (num_workers=0), or drawing again after close()
                self._loader = self._make_loader()
                self._started_at = start
            # The order's seed comes from the global RNG at the first draw, as a shuffling DataLoader's would:
            # after the resume's RNG state is restored, and per rank under torchrun.
            self._sampler.start(batch_size, int(torch.empty((), dtype=torch.int64).random_().item()))
            self._iterator = iter(self._loader)  # persistent workers: the same processes, now given work
        assert self._iterator is not None
        batch = next(self._iterator)
        now = time.perf_counter()
        self.wait_s += now - start
        self.batches += 1
        if first and self.first_batch_s is None:
            self.first_batch_s, self.first_wait_s = now - self._started_at, now - start
            log.info(
                "image_folder: first batch %.3f s after starting %d workers (started in %.3f s); the first draw "
                "waited %.3f s",
                self.first_batch_s, self.num_workers, self.start_s or 0.0, self.first_wait_s,
            )  # fmt: skip
        images, labels = batch if isinstance(batch, list | tuple) else (batch, None)
        if self.device.type == "cuda" and not PIN_MEMORY_THREAD:
            # pinned, the copy below is asynchronous and never waits for the GPU's queued work
            images = images.pin_memory()
            labels = None if labels is None else labels.pin_memory()
        labels = None if labels is None else labels.to(self.device, non_blocking=True)
        return images.to(self.device, non_blocking=True), labels

    @property
    def device_resident(self) -> bool:
        """Whether batches are drawn on the device without the host (cached): a CUDA graph can capture them."""
        return self.memory is not None

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """The process ids of the stream's live workers (none when cached, with num_workers=0, or closed)."""
        workers = getattr(self._iterator, "_workers", ())
        return tuple(w.pid for w in workers if w.is_alive())

    def timings(self) -> dict[str, float | int | None]:
        return {
            "start_s": self.start_s,
            "first_batch_s": self.first_batch_s,
            "first_wait_s": self.first_wait_s,
            "wait_s": self.wait_s,
            "batches": self.batches,
            "shutdown_s": self.shutdown_s,
        }

    def close(self) -> None:
        """Stop the stream: its worker processes (joined, or killed when they do not exit) and, with
        PIN_MEMORY_THREAD, torch's pin-memory thread, now. Idempotent; a later draw starts a new stream."""
        iterator, self._iterator, self._loader = self._iterator, None, None
        self._sampler.stop()
        if iterator is None:
            return
        start = time.perf_counter()
        workers = list(getattr(iterator, "_workers", ()))
        shutdown = getattr(iterator, "_shutdown_workers", None)  # what the iterator's __del__ calls
        if shutdown is not None:
            shutdown()  # the pin thread first, then each worker: told to stop, joined, terminated if need be
        for worker in workers:  # e.g. during the interpreter's exit, where torch's shutdown does nothing
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=1.0)
        self.shutdown_s = time.perf_counter() - start
        log.info(
            "image_folder: stopped %d workers in %.3f s; the loop waited %.3f s for %d batches",
            len(workers), self.shutdown_s, self.wait_s, self.batches,
        )  # fmt: skip

    # --- the ImageSource protocol (ganlab/protocols.py) ---------------------------------------------------------------

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

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """A fixed, seeded subset of min(n, len) images in batches: the real side of the metrics."""
        if self.memory is not None:
            yield from self.memory.reference_batches(n, batch_size)
            return
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:n].tolist()
        loader = DataLoader(
            Subset(self.dataset, order),
            batch_size=batch_size,
            num_workers=self.num_workers,
            multiprocessing_context=self._context(),
        )
        for batch in loader:
            yield (batch[0] if isinstance(batch, list | tuple) else batch).to(self.device)

    def fingerprint(self) -> str:
        """A hash of the file list with sizes and modification times (reading every image would be slow). The
        same with and without the cache, which holds the same pixels: cached metric statistics stay valid.
        With data.crop=center and no transparent image it is what it was before data.crop and the compositing
        on black existed; otherwise the pixels differ from what an older statistic was computed on."""
        h = hashlib.sha256()
        for path in self.dataset.files:
            stat = path.stat()
            h.update(f"{path.relative_to(self.root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        h.update(f"{self.shape}".encode())
        if self.crop != "center":
            h.update(f"crop={self.crop};".encode())
        if self.composited:
            h.update(b"transparent composited on black;")
        return h.hexdigest()[:16]
