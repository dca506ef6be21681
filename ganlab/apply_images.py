"""`ganlab sample run=<dir> input=<image or folder> out=<folder>`: a trained image-conditioned G applied to the
user's own images, one output picture per input.

What G is given: every image (one file, or every image under a folder, recursively, with the suffixes that
data=image_folder reads) is decoded as data=image_folder decodes it (PIL, converted to G's channels, L or RGB,
whatever the file's own; scaled to [-1, 1]) and turned upright as its EXIF orientation says. z is zeros: these
generators ignore it.

Super-resolution (data=super_resolution, model=srresnet): each image is upscaled by data.scale, whatever its size.
SRResNet is fully convolutional (stride-1 convs, pointwise layers, sub-pixel shuffles): it runs on any size, and
an image whose sides fit in `tile` low-res pixels goes through G whole. A larger one goes in tiles of `tile` x
`tile` low-res pixels (fewer along a side shorter than that), which overlap by 2 x `overlap`: each tile's output
keeps only its part farther than `overlap` pixels from the tile's edges, except at the image's own borders, and
these kept parts abut. The tiles step by `tile - 2 * overlap`; the last one along a side is moved back to end at
the image's border, so no padding is ever added and sizes need be multiples of nothing.

Why the seams do not show: an output pixel depends only on the low-res pixels within G's receptive radius
(`receptive_radius`: walking G's layers back from the output, each k x k conv adds (k - 1) / 2 pixels at its
resolution, each PixelShuffle(f) divides the reach by f, rounded up). Where `overlap` covers that radius, no kept
pixel sees a tile's zero padding, so the tiled output equals G's output on the whole image (to float rounding;
tests/test_apply_images.py checks it). The default `overlap` is that radius. For SRResNet it is 8 + 2 x
model.generator.blocks low-res pixels at every scale: 10 for blocks=1, 40 for the paper's 16 (4 for the 9x9 head
conv, 2 per residual block, 1 for the body's last conv, 3 for the tail: the 9x9 output conv and the 3x3 convs of
the sub-pixel stages, each rounded up to the coarser grid). A smaller overlap is faster and shows seams where it
falls short. The default `tile` is the largest of the trained low-res side, TILE_MIN (128) and 4 x overlap (so
at least half of every tile's side is kept). Tiles go through G in batches of about TILE_BATCH_PIXELS outputs.

Refinement (model=refiner) and translation (model=unet): G maps an image of its trained size to one of that size,
so each image is resized (PIL's antialiased bicubic, the aspect ratio not kept) to the trained input size, which
a printed line says, and the output is written at that size. model=unet keeps its dropout on (pix2pix's noise),
drawn from `seed`.

Outputs: one picture per input under `out`, under the same relative name (sub-folders of a folder input kept);
a .png, .jpg or .jpeg keeps its suffix and format, any other becomes .png (a name that would then clash with
another input's keeps its suffix before the .png: `a.bmp.png`). Every file is written atomically.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor, nn

from ganlab.commands.output import write_atomically
from ganlab.data.image_folder import IMAGE_SUFFIXES, find_images, named_if_unreadable, scan_modes, to_mode
from ganlab.errors import ConfigError

KEPT_SUFFIXES = {".png", ".jpg", ".jpeg"}  # written in their own format; any other input becomes .png
MAX_TILE = 2**16
TILE_MIN = 128  # the default tile's least side in low-res pixels (unless the trained side is larger)
FALLBACK_OVERLAP = 8  # the default overlap for a G whose receptive radius cannot be worked out from its layers
TILE_BATCH_PIXELS = 2**20  # high-res output pixels of the tiles that go through G together
IMAGE_BATCH = 16  # refined / translated images that go through G together
SAME_SIZE_GENERATORS = {"RefinerGenerator": "refined", "UNetGenerator": "translated"}
POINTWISE = (  # layers that mix no neighbouring pixels: they leave the receptive field as it is
    nn.BatchNorm2d, nn.PReLU, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.SiLU, nn.GELU, nn.ELU,
)  # fmt: skip


@dataclass(frozen=True)
class Task:
    """What G does to an image: upscale it by `scale` (super-resolution), or map it at G's trained `size`."""

    verb: str  # "upscaled", "refined", "translated"
    channels: int  # of the image G is given
    scale: int | None = None  # super-resolution's factor
    size: tuple[int, int] | None = None  # (H, W) of the image a refiner / U-Net is given


def task_of(snap: Any) -> Task:
    """The task of an image-conditioned G from its checkpoint's config; a ConfigError for any other G."""
    data_target = str(snap.config["data"]["_target_"])
    generator = str(snap.config["model"]["generator"]["_target_"]).rsplit(".", 1)[-1]
    if data_target.endswith("SuperResolutionData"):
        return Task("upscaled", snap.shape[0], scale=int(snap.config["data"]["scale"]))
    if generator in SAME_SIZE_GENERATORS:
        channels = int(getattr(snap.G, "in_channels", None) or snap.shape[0])
        return Task(SAME_SIZE_GENERATORS[generator], channels, size=(snap.shape[1], snap.shape[2]))
    raise ConfigError(
        f"input=: {snap.path} holds a generator of images from noise ({snap.model}), not one that takes an image; "
        "input= applies image-conditioned generators (model=srresnet with data=super_resolution, model=refiner, "
        "model=unet). Draw samples from this one with n= instead."
    )


# --- the files ---------------------------------------------------------------------------------------------------


def find_inputs(given: str) -> tuple[Path, list[Path]]:
    """(the folder the outputs' relative names start from, the image files): one file, or every image under a
    folder (recursively)."""
    if not given:
        raise ConfigError("input= is empty: name an image file or a folder of images.")
    path = Path(given).expanduser()
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ConfigError(f"input={given}: not an image file ({suffixes}).")
        return path.parent, [path]
    if path.is_dir():
        files = find_images(path)
        if not files:
            raise ConfigError(f"input={given} holds no images ({suffixes}), searched recursively.")
        return path, files
    raise ConfigError(f"input={given}: no such image file or folder.")


def output_names(relative: list[Path]) -> list[Path]:
    """The outputs' relative names: a .png/.jpg/.jpeg name as it is, any other with .png for its suffix, or with
    .png added where that would clash with another input's output (`a.bmp` beside `a.png` -> `a.bmp.png`)."""

    def converted(rel: Path) -> Path:
        return rel if rel.suffix.lower() in KEPT_SUFFIXES else rel.with_suffix(".png")

    counts = Counter(converted(rel) for rel in relative)
    names = [
        converted(rel) if counts[converted(rel)] == 1 or converted(rel) == rel else rel.with_name(rel.name + ".png")
        for rel in relative
    ]
    clashes = [name for name, count in Counter(names).items() if count > 1]
    if clashes:
        raise ConfigError(f"input=: several inputs would be written as {clashes[0]}; rename one of them.")
    return names


def first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None: the folder exists)."""
    missing = None
    for path in (folder.absolute(), *folder.absolute().parents):
        if path.exists():
            return missing
        missing = path
    return missing


def prepare_out(out: str | None, inputs: list[Path], names: list[Path]) -> list[Path]:
    """The output files under the folder `out` (made if missing); refused: no out=, an existing file, a folder
    that cannot be written, or an output that would overwrite one of the inputs."""
    if not out:
        raise ConfigError("input= needs out=<folder>: the folder the processed images are written to.")
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"out={out} is a file; with input=, out= names a folder for the output images.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out={out}: cannot make the folder ({err.strerror or err}).") from err
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"out={out}: the folder is not writable.")
    targets = [folder / name for name in names]
    sources = {p.resolve() for p in inputs}
    for target in targets:
        if target.resolve() in sources:
            raise ConfigError(
                f"out={out} would overwrite the input image {target}: write the outputs to another folder."
            )
    return targets


def read_image(path: Path, channels: int) -> Tensor:
    """(channels, H, W) float in [-1, 1], decoded as data=image_folder decodes (PIL, converted to L or RGB,
    transparent pixels on black), upright as the file's EXIF orientation says."""
    with named_if_unreadable(path), Image.open(path) as img:
        pixels = np.asarray(to_mode(ImageOps.exif_transpose(img), "RGB" if channels == 3 else "L"))
    image = torch.from_numpy(pixels.copy()).float()
    image = image.permute(2, 0, 1) if image.dim() == 3 else image[None]
    return image.div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1], as ToDtype(scale=True) + Normalize(0.5, 0.5)


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """(C, h, w) in [-1, 1] -> (C, H, W): PIL's antialiased bicubic on the 8-bit image, as a file resized would be."""
    pixels = to_pixels(image)
    resized = [
        np.asarray(Image.fromarray(channel).resize((size[1], size[0]), Image.Resampling.BICUBIC)) for channel in pixels
    ]
    return torch.from_numpy(np.stack(resized)).float().div_(127.5).sub_(1.0)


def to_pixels(image: Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> uint8 (C, H, W), rounded as ganlab.pictures writes pictures."""
    unit = image.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    return unit.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).numpy()


def write_image(image: Tensor, f: BinaryIO, suffix: str) -> None:
    """(1 or 3, H, W) in [-1, 1] -> an 8-bit grey or RGB picture in the format the suffix says."""
    pixels = to_pixels(image)
    picture = Image.fromarray(pixels[0] if len(pixels) == 1 else np.ascontiguousarray(pixels.transpose(1, 2, 0)))
    image_format = Image.registered_extensions().get(suffix.lower(), "PNG")
    picture.save(f, format=image_format, **({"quality": 95} if image_format == "JPEG" else {}))


# --- super-resolution in tiles -------------------------------------------------------------------------------------


def receptive_radius(G: nn.Module) -> int | None:
    """How many input (low-res) pixels beyond its own one output pixel can depend on, on any side; None when G
    holds layers this cannot account for (a strided or off-centre conv, pooling, interpolation).

    Walks G's leaf layers back from the output, in the order they were registered (SRResNet's forward order; a
    residual skip is a shorter path than the one through its block, so it adds nothing): a k x k conv of dilation
    d adds d * (k - 1) / 2 pixels at its resolution, a PixelShuffle(f) divides the reach by f, rounded up (the
    worst case over where in its f x f block an output pixel lies), pointwise layers add nothing."""
    reach = 0
    for layer in reversed([m for m in G.modules() if not list(m.children())]):
        if type(layer) is nn.Conv2d:
            halves = [d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation, strict=True)]
            padding = layer.padding if isinstance(layer.padding, tuple) else tuple(h // 2 for h in halves)
            centred = layer.padding != "valid" and all(
                h % 2 == 0 and p == h // 2 for h, p in zip(halves, padding, strict=True)
            )
            if layer.stride != (1, 1) or not centred:
                return None
            reach += max(halves) // 2
        elif isinstance(layer, nn.PixelShuffle):
            reach = math.ceil(reach / layer.upscale_factor)
        elif not isinstance(layer, POINTWISE):
            return None
    return reach


def at_size(G: nn.Module, height: int, width: int) -> nn.Module:
    """SRResNet for low-res inputs of height x width. Its forward refuses any size but the trained one (there,
    a wrong size means misconfigured data), yet every layer is convolutional: a shallow copy (the same layers
    and weights) whose expected sizes are these runs the same forward on them."""
    channels = G.in_shape[0]  # type: ignore[index]
    if tuple(G.in_shape) == (channels, height, width):  # type: ignore[arg-type]
        return G
    sized = copy.copy(G)
    sized.in_shape = (channels, height, width)
    sized.out_shape = (G.out_shape[0], height * G.scale, width * G.scale)  # type: ignore[index, operator]
    return sized


def tile_spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """Along one side of `size` pixels: (start, keep_from, keep_to) of each tile of min(tile, size) pixels. The
    tiles step by tile - 2 * overlap, the last moved back to end at `size`; each keeps [keep_from, keep_to), at
    least `overlap` pixels inside its own edges except at the image's, and the kept parts abut."""
    if size <= tile:
        return [(0, 0, size)]
    starts, start = [], 0
    while start + tile < size:
        starts.append(start)
        start += tile - 2 * overlap
    starts.append(size - tile)
    spans: list[tuple[int, int, int]] = []
    for i, start in enumerate(starts):
        keep_from = spans[-1][2] if spans else 0
        keep_to = size if i == len(starts) - 1 else start + tile - overlap
        spans.append((start, keep_from, keep_to))
    return spans


def check_range(tile: int | None, overlap: int | None) -> None:
    if tile is not None and not 1 <= tile <= MAX_TILE:
        raise ConfigError(f"tile={tile}: the tiles' side in low-res pixels, 1 to {MAX_TILE}.")
    if overlap is not None and not 0 <= overlap <= MAX_TILE:
        raise ConfigError(
            f"overlap={overlap}: the low-res pixels cropped off each tile's inner edges, 0 to {MAX_TILE}."
        )


def check_tiling(tile: int, overlap: int) -> None:
    check_range(tile, overlap)
    if tile <= 2 * overlap:
        raise ConfigError(
            f"tile={tile} must be larger than 2 x overlap={overlap}: a tile keeps its part farther than overlap "
            "pixels from its edges, and nothing would be left."
        )


@torch.no_grad()
def upscale_tiled(G: nn.Module, image: Tensor, tile: int, overlap: int, z_dim: int) -> Tensor:
    """(C, h, w) low-res image in [-1, 1] on G's device -> (C, h * scale, w * scale) on the CPU: G on tiles of
    `tile` pixels that overlap by 2 * `overlap`, stitched from the tiles' kept parts (see `tile_spans`). A tile
    larger than the image is G on the whole image."""
    check_tiling(tile, overlap)
    s = int(G.scale)  # type: ignore[arg-type]
    _, height, width = image.shape
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    net = at_size(G, th, tw)
    out = torch.empty(G.out_shape[0], height * s, width * s)  # type: ignore[index]
    jobs = [(row, col) for row in rows for col in cols]
    per_batch = max(1, TILE_BATCH_PIXELS // (th * tw * s * s))
    for first in range(0, len(jobs), per_batch):
        chunk = jobs[first : first + per_batch]
        tiles = torch.stack([image[:, y : y + th, x : x + tw] for (y, _, _), (x, _, _) in chunk])
        upscaled = net(torch.zeros(len(chunk), z_dim, device=image.device), tiles).float().cpu()
        for ((y, y0, y1), (x, x0, x1)), result in zip(chunk, upscaled, strict=True):
            top, left = (y0 - y) * s, (x0 - x) * s  # the kept part's corner inside the tile's output
            kept = result[:, top : top + (y1 - y0) * s, left : left + (x1 - x0) * s]
            out[:, y0 * s : y1 * s, x0 * s : x1 * s] = kept
    return out


def tiling(G: nn.Module, trained_side: int, tile: int | None, overlap: int | None) -> tuple[int, int, int | None]:
    """(tile, overlap, G's receptive radius or None): the given ones, or the defaults (module docstring)."""
    radius = receptive_radius(G)
    if overlap is None:
        overlap = radius if radius is not None else FALLBACK_OVERLAP
    if tile is None:
        tile = max(trained_side, TILE_MIN, 4 * overlap)
    check_tiling(tile, overlap)
    return tile, overlap, radius


# --- refinement and translation ------------------------------------------------------------------------------------


@torch.no_grad()
def map_same_size(G: nn.Module, images: Tensor, z_dim: int) -> Tensor:
    """(B, C, H, W) at G's trained input size, on its device -> G's outputs on the CPU."""
    return G(torch.zeros(len(images), z_dim, device=images.device), images).float().cpu()


# --- the command ---------------------------------------------------------------------------------------------------


def apply_to_images(
    run: str,
    source: str,
    out: str | None,
    device_option: str = "auto",
    tile: int | None = None,
    overlap: int | None = None,
    seed: int = 0,
    generator: str = "auto",
) -> list[Path]:
    """`ganlab sample run= input= out=`: every input image through the run's G (`generator`: auto, G or G_ema, as
    load_snapshot takes it), written under `out`; returns the files written."""
    from ganlab.build import resolve_device
    from ganlab.trained_generator import load_snapshot

    check_range(tile, overlap)
    if not out:
        raise ConfigError("input= needs out=<folder>: the folder the processed images are written to.")
    root, files = find_inputs(source)
    names = output_names([f.relative_to(root) for f in files])
    device = resolve_device(device_option, option="device")
    snap = load_snapshot(run, device, generator)
    task = task_of(snap)
    if task.scale is not None:
        plan = tiling(snap.G, snap.shape[-1] // task.scale, tile, overlap)
    elif tile is not None or overlap is not None:
        raise ConfigError(
            f"tile= and overlap= split super-resolution's inputs into tiles; this generator ({snap.model}) "
            "maps images of its trained size, to which every input is resized."
        )
    scan_modes(files, f"input={source}")  # every header read before out= is made: a file that is no image
    made = first_missing(Path(out).expanduser())  # what prepare_out makes, and a failure removes
    targets = prepare_out(out, files, names)
    try:
        with torch.random.fork_rng(devices=[]):  # model=unet's dropout: the same outputs for a seed
            torch.manual_seed(seed)
            if task.scale is not None:
                summary = _upscale_all(snap, task, files, targets, device, *plan)
            else:
                summary = _map_all(snap, task, files, targets, device)
    except BaseException:  # e.g. an image whose pixels are truncated: no folder of some outputs is left behind
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
    by = f"{snap.path} (step {snap.step}, {snap.generator})"
    count = f"{len(targets)} image{'s' if len(targets) != 1 else ''}"
    print(f"wrote {count} {task.verb} by {by} to {out}{summary}")
    return targets


def _upscale_all(
    snap: Any,
    task: Task,
    files: list[Path],
    targets: list[Path],
    device: torch.device,
    tile: int,
    overlap: int,
    radius: int | None,
) -> str:
    tiled = 0
    for path, target in zip(files, targets, strict=True):
        image = read_image(path, task.channels).to(device)
        if max(image.shape[1:]) > tile:
            if not tiled and radius is not None and overlap < radius:
                print(f"overlap={overlap} is less than G's receptive radius ({radius} low-res pixels): seams may show.")
            tiled += 1
        result = upscale_tiled(snap.G, image, tile, overlap, snap.z_dim)
        write_atomically(target, lambda f, r=result, t=target: write_image(r, f, t.suffix))
    if not tiled:
        return f" (x{task.scale})"
    exact = "" if radius is None else f"; G's receptive radius is {radius}"
    how = f"in tiles of {tile} overlapping by 2 x {overlap}{exact}"
    return f" (x{task.scale}; {tiled} larger than {tile} low-res pixels went {how})"


def _map_all(snap: Any, task: Task, files: list[Path], targets: list[Path], device: torch.device) -> str:
    assert task.size is not None
    height, width = task.size
    resized = 0
    for first in range(0, len(files), IMAGE_BATCH):
        batch = []
        for path in files[first : first + IMAGE_BATCH]:
            image = read_image(path, task.channels)
            if tuple(image.shape[1:]) != task.size:
                if not resized:
                    print(
                        f"resizing inputs to {width}x{height}, the size G was trained on ({snap.model}), e.g. {path} "
                        f"({image.shape[2]}x{image.shape[1]}); the outputs are {width}x{height}"
                    )
                resized += 1
                image = resize(image, task.size)
            batch.append(image)
        outputs = map_same_size(snap.G, torch.stack(batch).to(device), snap.z_dim)
        for result, target in zip(outputs, targets[first : first + IMAGE_BATCH], strict=True):
            write_atomically(target, lambda f, r=result, t=target: write_image(r, f, t.suffix))
    return f" ({resized} resized to {width}x{height})" if resized else ""
