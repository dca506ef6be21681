"""`ganlab export run=<run dir or checkpoint> out=<folder> [format=safetensors,pt2,onnx]`: a trained generator
(the EMA weights where the run kept them) in files that leave ganlab (ganlab/export/).

The folder is written whole or not at all: everything goes into a hidden folder beside `out`, every file is
checked against G's own output (ganlab/export/check.py), and only then is it renamed to `out`. A failure of any
kind removes it. An `out` that exists and is not empty is refused, not overwritten."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import torch

from ganlab.atomic_write import SPACE_ERRNOS
from ganlab.commands.options import parse_options
from ganlab.commands.output import check_parent_folders
from ganlab.commands.schemas import ExportOptions
from ganlab.errors import ConfigError
from ganlab.export import check, onnx, pt2, safetensors
from ganlab.export.card import write_card
from ganlab.export.describe import describe
from ganlab.export.spec import read_spec, sha256_of, write_spec
from ganlab.trained_generator import load_snapshot

UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, *SPACE_ERRNOS)  # the place, not ganlab, is at fault
FORMATS = {"safetensors": safetensors, "pt2": pt2, "onnx": onnx}  # format= name -> its module


def main(args: list[str]) -> None:
    opts = parse_options(ExportOptions, args, "export")
    formats = parse_formats(opts.format)
    if "onnx" in formats:
        onnx.check_available()
    out = Path(opts.out).expanduser()
    check_out(out)
    snap = load_snapshot(opts.run, torch.device("cpu"))
    spec, inputs = describe(snap)
    expected = check.reference(snap.G, inputs.args)  # before tracing: G's lazily made constants exist by then
    if "onnx" in formats:
        onnx.check_deterministic(snap.G, inputs.args, snap.model)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        partial.mkdir()
        for name in formats:  # bytes first, then a plain write: a full disk is an OSError whatever the format
            module = FORMATS[name]
            (partial / module.FILE).write_bytes(module.to_bytes(snap.G, inputs.args))
            spec.files[module.FILE] = sha256_of(partial / module.FILE)
        card = write_card(partial, spec, snap)
        spec.files[card] = sha256_of(partial / card)
        write_spec(spec, partial)
        differences = {}
        checked = read_spec(partial)  # as a reader finds it: the hashes, the format
        for name in formats:
            run = FORMATS[name].runner(partial, checked)
            differences[name] = check.check_file(f"format={name}", run, inputs.args, expected)
        if out.is_dir():
            out.rmdir()  # empty (check_out): the rename below needs it gone
        os.rename(partial, out)
    except BaseException as err:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in UNWRITABLE:
            raise ConfigError(f"out={out}: cannot write there ({err.strerror or err}); nothing was written.") from err
        if isinstance(err, check.ExportCheckFailed):
            raise check.ExportCheckFailed(f"ganlab export: {err} Nothing was written to {out}.") from err
        raise
    report = ", ".join(f"{name} (max difference {d:.1g})" for name, d in differences.items())
    print(f"exported {snap.path} (step {snap.step}, {snap.generator}) to {out}: {report}")


def parse_formats(given: str) -> list[str]:
    names = [name.strip().lower() for name in str(given).split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ConfigError(
            f"format={given}: choose from {', '.join(FORMATS)} (comma-separated, e.g. format=safetensors,pt2)."
        )
    return ["safetensors", *dict.fromkeys(n for n in names if n != "safetensors")]  # the weights always


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"out={out}: already exists and is not an empty folder; choose a new folder or remove it.")
    check_parent_folders(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out={out}: cannot write there ({err.strerror or err}).") from err
