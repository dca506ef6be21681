"""The options of the key=value commands (`ganlab sample`, `eval`, `export`, `report`), typed for
ganlab/commands/options.py. Kept free of torch: the CLI checks a command's options (and answers `--help`'s
option list) before the command's own module, and torch with it, is imported."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class SampleOptions:
    run: str = MISSING  # run directory (its checkpoints/last.pt) or a checkpoint file
    n: int = 64  # samples; with interpolate=true, rows x steps rounded up to whole rows
    out: str | None = None  # .png/.jpg: a grid (2-D: a scatter); .npz: raw. Default <run>/sample.png (then _2, ...)
    seed: int = 0
    interpolate: bool = False  # rows that slerp between two random latents
    steps: int = 8  # images per interpolation row
    device: str = "auto"
    class_: int | None = None  # `class=3`: a conditional generator draws only that class
    truncation: float = 1.0  # psi < 1 pulls w towards its average: less variety, more typical samples
    input: str | None = None  # an image or a folder of images for an image-conditioned G; out= is then a folder
    tile: int | None = None  # with input= for super-resolution: tile side in low-res pixels (apply_images.py)
    overlap: int | None = None  # low-res pixels cropped off each tile's inner edges; default G's receptive radius
    generator: str = "auto"  # auto: G_ema when the run kept an EMA of G, else G; G or G_ema to choose


@dataclass
class EvalOptions:
    run: str = MISSING  # run directory (its checkpoints/last.pt) or a checkpoint file
    features: str = "auto"  # auto: the data's own classifier (digits, mnist, fashion_mnist), else inception
    n: int | None = None  # generated samples; default 10000 for images, 2500 for 2-D data
    seed: int = 0
    batch_size: int = 250
    device: str = "auto"
    out: str | None = None  # default <run dir>/metrics.json
    truncation: float = 1.0  # psi for a generator with a w space (model=stylegan2); recorded in metrics.json
    repeats: int | None = None  # sequences: post-hoc classifier/predictor trainings per score (default 5)
    post_hoc_steps: int | None = None  # sequences: their training steps (default TimeGAN's 2000 and 5000)
    generator: str = "auto"  # auto: G_ema when the run kept an EMA of G, else G; G or G_ema to choose


@dataclass
class ExportOptions:
    run: str = MISSING  # run directory (its checkpoints/last.pt) or a checkpoint file
    out: str = MISSING  # a new (or empty) folder
    format: str = "safetensors"  # comma-separated: safetensors (always written), pt2, onnx


@dataclass
class ReportOptions:
    out: str | None = None  # folder for the report files; default: the given directory (several: their common one)
    metric: str | None = None  # rank by this metric instead of the one the runs monitor (trainer.monitor)


@dataclass
class BrowseOptions:
    run: str = MISSING  # a run directory, or a sweep's (a page per run and an index)
    out: str | None = None  # the page (an index for a sweep); default <dir>/browse.html
