"""`ganlab sample run=<run dir or checkpoint> [n=64] [out=grid.png|samples.npz] [seed=0] [interpolate=true]`"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import MISSING
from torch import Tensor

from ganlab import samples
from ganlab.build import resolve_device
from ganlab.commands.options import check_count, check_seed, parse_options
from ganlab.commands.output import check_writable, write_atomically
from ganlab.errors import ConfigError
from ganlab.sampling import generate, latents, slerp
from ganlab.snapshot import Snapshot, load_snapshot

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg"}
REAL_POINTS = 2_500  # the backdrop of a 2-D scatter


@dataclass
class SampleOptions:
    run: str = MISSING  # run directory (its checkpoints/last.pt) or a checkpoint file
    n: int = 64  # samples; with interpolate=true, rows x steps rounded up to whole rows
    out: str | None = None  # .png/.jpg: a grid (2-D data: a scatter); .npz: raw outputs. Default <run>/sample.png
    seed: int = 0
    interpolate: bool = False  # rows that slerp between two random latents
    steps: int = 8  # images per interpolation row
    device: str = "auto"


def main(args: list[str]) -> None:
    opts = parse_options(SampleOptions, args, "sample")
    check_count("n", opts.n)
    check_seed(opts.seed)
    if opts.interpolate:
        check_count("steps", opts.steps, low=2, high=1000)
    device = resolve_device(opts.device, option="device")
    snap = load_snapshot(opts.run, device)
    out = Path(opts.out).expanduser() if opts.out else snap.folder / "sample.png"
    if out.suffix.lower() not in PICTURE_SUFFIXES | {".npz"}:
        raise ConfigError(f"out={out}: write a picture (.png, .jpg) or raw samples (.npz).")
    check_writable(out)

    if opts.interpolate:
        z, ncol = interpolation_latents(opts, snap.z_dim)
    else:
        z, ncol = latents(opts.n, snap.z_dim, opts.seed), None
    fake = torch.cat([generate(snap.G, chunk.to(device)).cpu() for chunk in z.split(500)])
    if out.suffix.lower() == ".npz":
        write_atomically(out, lambda tmp: _save_npz(tmp, samples=fake.float().numpy()))
    else:
        picture = picture_of(fake, snap, ncol, opts.seed)
        write_atomically(out, lambda tmp: samples.save_png(picture, tmp))
    print(f"wrote {len(fake)} samples of {snap.path} (step {snap.step}, {snap.generator}) to {out}")


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a name like "x.NPZ"
        np.savez(f, **arrays)


def interpolation_latents(opts: SampleOptions, z_dim: int) -> tuple[Tensor, int]:
    rows = math.ceil(opts.n / opts.steps)
    ends = latents(2 * rows, z_dim, opts.seed)
    path = slerp(ends[:rows], ends[rows:], torch.linspace(0, 1, opts.steps))  # (rows, steps, z_dim)
    return path.reshape(rows * opts.steps, z_dim), opts.steps


def picture_of(fake: Tensor, snap: Snapshot, ncol: int | None, seed: int) -> Tensor:
    if fake.dim() == 4:
        return samples.image_grid(fake, ncol=ncol)
    with torch.random.fork_rng(devices=[]):  # the real backdrop: reproducible for a seed
        torch.manual_seed(seed)
        real = snap.data(torch.device("cpu")).sample(REAL_POINTS)
    return samples.scatter(fake, real)
