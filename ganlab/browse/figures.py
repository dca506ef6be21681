"""What a run's page shows that its files do not already hold, drawn from its checkpoint into <run>/browse/:
an interpolation strip, one row per class (a conditional G), and generated samples beside their nearest real
images (a quick look for memorisation). Images only: 2-D points and sequences have their own sample pictures.
An image-conditioned G (super-resolution, refiner, U-Net) maps images rather than noise: its figure is the final
weights applied to the data's fixed held-out inputs, beside the images they are compared with."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ganlab import pictures
from ganlab.condition import grid_labels
from ganlab.errors import ConfigError
from ganlab.generation import generate, held_out_inputs, interpolation_latents, latents
from ganlab.trained_generator import Snapshot

FOLDER = "browse"
INTERPOLATION_ROWS, INTERPOLATION_STEPS = 4, 8
CLASS_COLUMNS = 8
NEIGHBOUR_SAMPLES, NEIGHBOURS = 6, 3
NEIGHBOUR_POOL = 2_000  # real images searched (the training split's fixed reference subset)
HELD_OUT_INPUTS = 16  # an image-conditioned G's figure: this many input | output | target triplets
SEED = 0


@dataclass
class Figure:
    title: str
    path: str | None  # relative to the run directory; None: not drawn (the caption says why)
    caption: str


def draw_figures(snap: Snapshot, run_dir: Path) -> list[Figure]:
    if len(snap.shape) != 3:
        return [Figure("Interpolation", None, "Interpolation strips and neighbours are drawn for image generators.")]
    folder = run_dir / FOLDER
    folder.mkdir(exist_ok=True)
    if getattr(snap.G, "takes_image", False):  # no latent space to walk, nothing drawn from noise to compare
        return [held_out_outputs(snap, folder)]
    figures = [interpolation(snap, folder)]
    if snap.num_classes:
        figures.append(class_rows(snap, folder))
    figures.append(nearest_neighbours(snap, folder))
    return figures


def _save(picture: Tensor, folder: Path, name: str) -> str:
    pictures.save_png(picture, folder / name)
    return f"{FOLDER}/{name}"


def held_out_outputs(snap: Snapshot, folder: Path) -> Figure:
    """The final G on the data's fixed held-out inputs (those of the run's sample grids, so the grids over
    training lead up to this): input | output | target triplets."""
    title = "Held-out inputs, outputs and targets"
    try:
        fixed = held_out_inputs(snap, HELD_OUT_INPUTS, SEED)
    except ConfigError as err:
        return Figure(title, None, f"Not drawn: the run's data could not be read ({err})")
    with torch.no_grad():
        picture = fixed.picture(fixed.generate(snap.G))
    caption = (
        f"The final {snap.generator} on {len(fixed.noise)} held-out inputs, in triplets: the input, G's output, and "
        "the real image it is compared with (the input's own target; for a refiner, whose synthetic inputs have "
        "no real pair, a held-out real image)."
    )
    return Figure(title, _save(picture, folder, "held_out.png"), caption)


def interpolation(snap: Snapshot, folder: Path) -> Figure:
    z = interpolation_latents(INTERPOLATION_ROWS, INTERPOLATION_STEPS, snap.z_dim, SEED)  # as `ganlab sample` draws
    labels = None
    if snap.num_classes:  # row r stays in class r
        labels = torch.arange(INTERPOLATION_ROWS).repeat_interleave(INTERPOLATION_STEPS) % snap.num_classes
    images = generate(snap.G, z, labels)
    caption = (
        f"{INTERPOLATION_ROWS} rows, each a spherical interpolation (slerp) between two random latents in "
        f"{INTERPOLATION_STEPS} steps; smooth changes mean G maps nearby latents to nearby images."
    )
    name = _save(pictures.image_grid(images, ncol=INTERPOLATION_STEPS), folder, "interpolation.png")
    return Figure("Interpolation", name, caption)


def class_rows(snap: Snapshot, folder: Path) -> Figure:
    k = int(snap.num_classes or 0)
    z = latents(k * CLASS_COLUMNS, snap.z_dim, SEED)
    images = generate(snap.G, z, grid_labels(len(z), CLASS_COLUMNS, k))
    name = _save(pictures.image_grid(images, ncol=CLASS_COLUMNS), folder, "classes.png")
    return Figure("One row per class", name, f"Row r shows class r (0 to {k - 1}), {CLASS_COLUMNS} latents each.")


def nearest_neighbours(snap: Snapshot, folder: Path) -> Figure:
    try:
        data = snap.data(torch.device("cpu"))
    except ConfigError as err:
        return Figure("Nearest real neighbours", None, f"Not drawn: the run's data could not be read ({err})")
    # A run on data.limit images is compared with those it trained on: copying them is what to look for.
    batches = getattr(data, "training_batches", data.reference_batches)
    real = torch.cat(list(batches(min(NEIGHBOUR_POOL, len(data)), 500))).float().cpu()
    z = latents(NEIGHBOUR_SAMPLES, snap.z_dim, SEED + 1)
    labels = grid_labels(NEIGHBOUR_SAMPLES, 1, snap.num_classes) if snap.num_classes else None
    fake = generate(snap.G, z, labels).float().cpu()
    distance = torch.cdist(fake.flatten(1), real.flatten(1))  # pixels in [-1, 1]
    nearest = distance.topk(min(NEIGHBOURS, len(real)), largest=False)
    rows = [torch.cat([fake[i : i + 1], real[nearest.indices[i]]]) for i in range(len(fake))]
    per_pixel = nearest.values[:, 0] / math.sqrt(fake[0].numel())
    caption = (
        f"Each row: a generated image, then its {nearest.indices.shape[1]} nearest images (pixel L2) among "
        f"{len(real)} real ones. Root-mean-square pixel distance to the nearest: "
        f"{', '.join(f'{d:.3f}' for d in per_pixel.tolist())} (near 0 would be a copy)."
    )
    name = _save(pictures.image_grid(torch.cat(rows), ncol=1 + nearest.indices.shape[1]), folder, "neighbours.png")
    return Figure("Nearest real neighbours", name, caption)
