"""`generator.json`: everything that rebuilds an exported G and says how to call it.

It holds G's config node (`model.generator`, whose `_target_` passes the same allow-list as a checkpoint's,
ganlab/targets.py), the sample shape, the latent size, the condition G takes, the value range of its output,
which weights were exported, and a SHA-256 of every file beside it, so that a changed or swapped file is
refused instead of loaded. JSON only: reading it runs no code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from torch import nn

import ganlab
from ganlab.errors import ConfigError
from ganlab.targets import instantiate_node

FORMAT = "ganlab-export-v1"
SPEC_FILE = "generator.json"
CONDITION_KINDS = ("none", "class", "tensor")


@dataclass
class GeneratorSpec:
    generator: dict[str, Any]  # the run's model.generator node: _target_ and arguments
    model: str  # `model=<name>` as the run chose it
    data: str  # `data=<name>`
    sample_shape: list[int]  # one sample: (C, H, W) images, (T, C) sequences, (2,) points
    latent_size: int  # the length of z, flat (a sequence G's is steps x z_dim)
    condition: dict[str, Any]  # {"kind": "none"} | {"kind": "class", "num_classes": K} | {"kind": "tensor", "shape"}
    value_range: list[float] | None  # what G writes: [-1, 1] images, [0, 1] sequences; None: points (unbounded)
    weights: str  # "G_ema" or "G"
    step: int
    w_space: bool  # G can truncate (model=stylegan2): sample(truncation=...) works
    units: dict[str, Any] | None = None  # sequences: channel names and the data's low/high per channel
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256, every file but this one
    ganlab_version: str = ganlab.__version__
    format: str = FORMAT

    @property
    def num_classes(self) -> int | None:
        return self.condition.get("num_classes") if self.condition["kind"] == "class" else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_spec(spec: GeneratorSpec, folder: Path) -> None:
    (folder / SPEC_FILE).write_text(json.dumps(dataclasses.asdict(spec), indent=2) + "\n")


def read_spec(folder: Path) -> GeneratorSpec:
    """The spec of an export folder, its format and files checked; a ConfigError says what is wrong."""
    path = folder / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"{folder}: no {SPEC_FILE}; is it a folder written by `ganlab export`?")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not readable JSON ({err}).") from err
    if not isinstance(raw, dict) or "format" not in raw:
        raise ConfigError(f"{path}: not a ganlab export description (no `format`).")
    if raw["format"] != FORMAT:
        made_by = raw.get("ganlab_version", "an unknown version")
        raise ConfigError(
            f"{folder}: exported as {raw['format']!r} by ganlab {made_by}; this ganlab ({ganlab.__version__}) reads "
            f"{FORMAT!r}. Export the run again with this version, or load it with the version that wrote it."
        )
    known = {f.name for f in dataclasses.fields(GeneratorSpec)}
    missing = sorted(f.name for f in dataclasses.fields(GeneratorSpec) if f.name not in raw and f.name != "units")
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}; the file is incomplete or was edited.")
    spec = GeneratorSpec(**{k: v for k, v in raw.items() if k in known})
    if spec.condition.get("kind") not in CONDITION_KINDS:
        raise ConfigError(f"{path}: unknown condition {spec.condition!r}.")
    for name, expected in spec.files.items():
        file = folder / name
        if Path(name).name != name or not file.is_file():
            raise ConfigError(f"{folder}: {name} is listed in {SPEC_FILE} but missing; the export is incomplete.")
        if sha256_of(file) != expected:
            raise ConfigError(
                f"{file}: its contents differ from what `ganlab export` wrote (SHA-256 mismatch); it was changed or "
                "replaced after the export. Export the run again."
            )
    return spec


def build_generator(spec: GeneratorSpec) -> nn.Module:
    """G as its config describes it, with freshly initialised weights (the caller loads them)."""
    labels = {"num_classes": spec.num_classes} if spec.num_classes else {}
    node = OmegaConf.create(spec.generator)
    return instantiate_node(node, out_shape=tuple(spec.sample_shape), **labels)
