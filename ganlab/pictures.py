"""Pictures of a generator's output: an image grid, or for 2-D data the generated points over real ones."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganlab.atomic_write import atomic_write

# Drawn without torchvision: importing it costs about two seconds of start-up for every run.
REAL_COLOUR = torch.tensor([0.6, 0.6, 0.6])
FAKE_COLOUR = torch.tensor([0.85, 0.1, 0.1])
SEQUENCES_PICTURED = 8  # sequences over one another in a panel: more hide each other


def image_grid(images: Tensor, padding: int = 2, ncol: int | None = None) -> Tensor:
    """(N, C, H, W) in [-1, 1] -> (3, H', W') in [0, 1]: `ncol` tiles a row (default: about square),
    `padding` black pixels between tiles."""
    images = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, _, h, w = images.shape
    ncol = ncol or max(1, int(round(n**0.5)))
    nrow = -(-n // ncol)
    grid = torch.zeros(3, padding + nrow * (h + padding), padding + ncol * (w + padding))
    for i in range(n):
        top, left = padding + (i // ncol) * (h + padding), padding + (i % ncol) * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    return grid


def save_png(picture: Tensor, path: Path) -> None:
    """(3, H, W) in [0, 1] -> 8-bit RGB picture file, whole or not at all (a full disk: OSError(ENOSPC)). The
    format follows the suffix: .png, or .jpg as `ganlab sample out=` allows."""
    atomic_write(path, lambda f: write_picture(picture, f, Path(path).suffix))


READABLE_SIDE = 600  # pixels: a picture file's longer side is enlarged towards this by a whole factor


def readable_factor(size: tuple[int, int]) -> int:
    """The whole factor a picture of `size` (H, W) is enlarged by in a file: READABLE_SIDE // its longer side."""
    return max(1, READABLE_SIDE // max(int(size[0]), int(size[1]), 1))


def write_picture(picture: Tensor, f: BinaryIO, suffix: str = ".png") -> None:
    """(3, H, W) in [0, 1] -> 8-bit RGB, encoded as `suffix` says into the open file `f`; a small picture (a grid
    of 16-pixel digits is 146 pixels wide) is enlarged by a whole factor, each pixel a square block."""
    factor = readable_factor(picture.shape[-2:])
    pixels = picture.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    if factor > 1:
        pixels = pixels.repeat(factor, axis=0).repeat(factor, axis=1)
    image_format = Image.registered_extensions().get(suffix.lower(), "PNG")  # f has no name to guess it from
    Image.fromarray(np.ascontiguousarray(pixels)).save(f, format=image_format)


def scatter(fake: Tensor, real: Tensor, size: int = 320, extent: float | None = None) -> Tensor:
    """Rasterise 2-D points (3x3 pixel dots) onto a white canvas: real in grey, generated in red on top.

    `extent` is the half-width of the square view; by default 1.3 times the real points' largest coordinate,
    so the view stays the same across steps while the generator moves.
    """
    real, fake = real.detach().float().cpu(), fake.detach().float().cpu()
    half = extent if extent is not None else 1.3 * float(real.abs().max())
    canvas = torch.ones(3, size, size)
    for points, colour in ((real, REAL_COLOUR), (fake, FAKE_COLOUR)):
        pix = ((points / half + 1) * 0.5 * (size - 1)).round().long()
        col, row = pix[:, 0], (size - 1) - pix[:, 1]  # y grows upwards
        keep = (col >= 1) & (col < size - 1) & (row >= 1) & (row < size - 1)
        col, row = col[keep], row[keep]
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                canvas[:, row + dr, col + dc] = colour[:, None]
    return canvas


def triplets(inputs: Tensor, outputs: Tensor, targets: Tensor, per_row: int | None = None) -> Tensor:
    """Image-conditioned models: input | output | target side by side, `per_row` triplets a row (default: about
    square). Inputs smaller than the output (super-resolution) are shown enlarged by pixel repetition, so that
    their pixels are seen as G saw them; a grey input beside a colour output is shown in grey."""
    outputs = outputs.detach().float().cpu()
    inputs, targets = inputs.detach().float().cpu(), targets.detach().float().cpu()
    size = outputs.shape[-2:]
    if inputs.shape[-2:] != size:
        inputs = torch.nn.functional.interpolate(inputs, size=size, mode="nearest")
    channels = max(t.shape[1] for t in (inputs, outputs, targets))
    tiles = [t.expand(-1, channels, -1, -1) if t.shape[1] == 1 else t for t in (inputs, outputs, targets)]
    n = len(outputs)
    per_row = per_row or max(1, int(round((n / 3) ** 0.5)))
    interleaved = torch.stack(tiles, dim=1).reshape(3 * n, channels, *size)  # in0, out0, tgt0, in1, ...
    return image_grid(interleaved, ncol=3 * per_row)


def render(fake: Tensor, real: Tensor | None, ncol: int | None = None) -> Tensor:
    """The picture for `fake`: an image grid (`ncol` images a row) for images, a scatter over `real` for
    vector data (sequences: `sequences`)."""
    if fake.dim() == 4:
        return image_grid(fake, ncol=ncol)
    assert real is not None, "2-D samples are drawn over real points"
    return scatter(fake, real)


def sequences(fake: Tensor, real: Tensor, channel_names: list[str] | None = None) -> Tensor:
    """Up to SEQUENCES_PICTURED generated sequences plotted over as many real ones, a panel per channel: (3, H, W)
    in [0, 1]."""
    from ganlab.metrics.sequence import sequence_figure

    n = min(len(fake), SEQUENCES_PICTURED)
    pixels = sequence_figure(real.detach().float().cpu(), fake.detach().float().cpu(), channel_names, n=n)
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
