"""`ganlab sample run=<run dir or checkpoint> [n=64] [out=grid.png|samples.npz] [seed=0] [interpolate=true]
[class=K] [truncation=0.7]`. A conditional generator draws one row per class, or only class K; a generator with a
w space (model=stylegan2) can draw truncated (ganlab/truncation.py). A sequence generator (data=sines, csv)
also writes out=*.csv, and its .csv and .npz hold the data's own units (ganlab/commands/sequence_files.py); a
prefix-conditioned one continues the data's fixed real prefixes.

`ganlab sample run=<dir> input=<image or folder> out=<folder> [tile=N] [overlap=N] [seed=0]`: an image-conditioned
generator (super-resolution, refiner, U-Net) applied to the user's own images, one output per input
(ganlab/apply_images.py); n, interpolate, steps, class and truncation do not go with it. Without input=, such a
generator is applied to the first n of its data's held-out inputs (those of the run's sample grids): a picture of
input | output | target triplets, or an .npz of the inputs, outputs and targets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganlab import pictures
from ganlab.build import resolve_device
from ganlab.commands import sequence_files
from ganlab.commands.options import check_count, check_seed, parse_options, split_data_overrides
from ganlab.commands.output import check_writable, output_file, write_atomically
from ganlab.commands.schemas import SampleOptions
from ganlab.condition import grid_labels
from ganlab.errors import ConfigError
from ganlab.generation import generate, held_out_inputs, interpolation_latents, latents
from ganlab.trained_generator import Snapshot, load_snapshot
from ganlab.truncation import truncated

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg"}
REAL_POINTS = 2_500  # the backdrop of a 2-D scatter


NOISE_OPTIONS = ("n", "interpolate", "steps", "class", "truncation")  # what input= has no use for


def main(args: list[str]) -> None:
    args, moved_data = split_data_overrides(args, "sample")
    opts = parse_options(SampleOptions, args, "sample")
    keys = {arg.split("=", 1)[0] for arg in args}
    if "input" in keys:
        given = [key for key in NOISE_OPTIONS if key in keys]
        if given:
            raise ConfigError(
                f"ganlab sample: {given[0]}= draws from noise and does not go with input=, which applies the "
                "generator to your images; leave it out."
            )
        check_seed(opts.seed)
        from ganlab.apply_images import apply_to_images  # only the image-to-image path needs it

        apply_to_images(
            opts.run, opts.input or "", opts.out, opts.device, opts.tile, opts.overlap, opts.seed, opts.generator
        )
        return
    if opts.tile is not None or opts.overlap is not None:
        raise ConfigError("ganlab sample: tile= and overlap= split the images of input= into tiles; give input= too.")
    check_count("n", opts.n)
    check_seed(opts.seed)
    if opts.interpolate:
        check_count("steps", opts.steps, low=2, high=1000)
    elif "steps" in keys:
        raise ConfigError("ganlab sample: steps= is the images per row of interpolate=true; give that too.")
    device = resolve_device(opts.device, option="device")
    snap = load_snapshot(opts.run, device, opts.generator)
    snap.relocate(moved_data)
    G = truncated(snap.G, opts.truncation, snap.model)
    out = output_file(opts.out) if opts.out else unused_name(snap.folder / "sample.png")
    sequences = len(snap.shape) == 2
    raw_suffixes = {".npz", ".csv"} if sequences else {".npz"}
    if out.suffix.lower() not in PICTURE_SUFFIXES | raw_suffixes:
        kinds = "raw samples (.npz) or a table (.csv)" if sequences else "raw samples (.npz)"
        raise ConfigError(f"out={out}: write a picture (.png, .jpg) or {kinds}.")
    check_writable(out)
    replacing = out.exists()  # only ever an out= the user named: the default picks a new name
    if getattr(snap.G, "takes_image", False):
        noise_only = [key for key in NOISE_OPTIONS if key in keys and key != "n"]
        if noise_only:
            raise ConfigError(
                f"ganlab sample: {noise_only[0]}= draws from noise, and {snap.model} maps images: leave it out "
                "(without input=, the generator is applied to its data's held-out inputs)."
            )
        sample_held_out(snap, opts.n, opts.seed, device, out, replacing)
        return

    check_class(opts.class_, snap.num_classes)

    if opts.interpolate:
        z, ncol = interpolation_latents(math.ceil(opts.n / opts.steps), opts.steps, snap.z_dim, opts.seed), opts.steps
    elif snap.num_classes and opts.class_ is None:  # one row per class, n rounded up to whole rows
        ncol = math.ceil(opts.n / snap.num_classes)
        z = latents(ncol * snap.num_classes, snap.z_dim, opts.seed)
    else:
        z, ncol = latents(opts.n, snap.z_dim, opts.seed), None
    labels = requested_labels(len(z), ncol, opts.class_, snap.num_classes)
    data = snap.data(torch.device("cpu")) if sequences else None
    conditions = labels if data is None else sequence_files.conditions(data, len(z), labels)
    batches = [(z[i : i + 500], None if conditions is None else conditions[i : i + 500]) for i in range(0, len(z), 500)]
    fake = torch.cat([generate(G, zb.to(device), yb if yb is None else yb.to(device)).cpu() for zb, yb in batches])
    if data is not None:
        sequence_files.write(out, fake, data, labels)
    elif out.suffix.lower() == ".npz":
        arrays = {"samples": fake.float().numpy()} | ({} if labels is None else {"labels": labels.numpy()})
        # np.savez into a file object: given a name such as "x.NPZ" it would append ".npz"
        write_atomically(out, lambda f: np.savez(f, **arrays))
    else:
        picture = picture_of(fake, snap, ncol, opts.seed)
        write_atomically(out, lambda f: pictures.write_picture(picture, f, out.suffix))
    psi = f", truncation {opts.truncation:g}" if opts.truncation != 1 else ""
    if replacing:
        print(f"replaced the earlier {out}")
    print(f"wrote {len(fake)} samples of {snap.path} (step {snap.step}, {snap.generator}{psi}) to {out}")


def sample_held_out(snap: Snapshot, n: int, seed: int, device: torch.device, out: Path, replacing: bool) -> None:
    """An image-conditioned G on the first n held-out inputs of the run's data (fewer where it holds fewer)."""
    fixed = held_out_inputs(snap, n, seed)
    inputs, targets = fixed.labels, fixed.targets
    assert inputs is not None and targets is not None  # a paired source's pictures come with both
    with torch.random.fork_rng(devices=[]):  # model=unet's dropout: the same outputs for a seed
        torch.manual_seed(seed)
        outputs = torch.cat(
            [
                generate(snap.G, z.to(device), x.to(device)).cpu()
                for z, x in zip(fixed.noise.split(500), inputs.split(500), strict=True)
            ]
        )
    if out.suffix.lower() == ".npz":
        arrays = {
            name: t.float().cpu().numpy()
            for name, t in (("samples", outputs), ("inputs", inputs), ("targets", targets))
        }
        write_atomically(out, lambda f: np.savez(f, **arrays))
    else:
        picture = fixed.picture(outputs)
        write_atomically(out, lambda f: pictures.write_picture(picture, f, out.suffix))
    if replacing:
        print(f"replaced the earlier {out}")
    print(
        f"wrote {snap.model}'s outputs for {len(outputs)} held-out inputs of its data (by {snap.path}, step "
        f"{snap.step}, {snap.generator}) to {out}"
    )


def unused_name(path: Path) -> Path:
    """`path`, or the first of path_2, path_3, ... that does not exist: a plain `ganlab sample` never replaces
    the picture an earlier one wrote."""
    candidate, k = path, 1
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}_{k}{path.suffix}")
    return candidate


def check_class(requested: int | None, num_classes: int | None) -> None:
    if requested is None:
        return
    if not num_classes:
        raise ConfigError("class=: this generator is unconditional (model.conditional=true trains one with classes).")
    if not 0 <= requested < num_classes:
        raise ConfigError(f"class={requested}: the generator knows classes 0 to {num_classes - 1}.")


def requested_labels(n: int, ncol: int | None, requested: int | None, num_classes: int | None) -> Tensor | None:
    """The class of each sample: all `requested`, or row r of the grid (of `ncol` columns) showing class r mod K
    (for a conditional generator); None for an unconditional one."""
    if not num_classes:
        return None
    if requested is not None:
        return torch.full((n,), requested, dtype=torch.long)
    return grid_labels(n, ncol or n, num_classes)


def picture_of(fake: Tensor, snap: Snapshot, ncol: int | None, seed: int) -> Tensor:
    if fake.dim() == 4:
        return pictures.image_grid(fake, ncol=ncol)
    with torch.random.fork_rng(devices=[]):  # the real backdrop: reproducible for a seed
        torch.manual_seed(seed)
        real = snap.data(torch.device("cpu")).sample(REAL_POINTS)
    return pictures.scatter(fake, real)
