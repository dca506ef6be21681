"""Writing a command's output file whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ganlab.atomic_write import atomic_write
from ganlab.errors import ConfigError


def output_file(given: str, option: str = "out") -> Path:
    """`out=` of a command that writes one file: a path ending in / names a folder, which Path would drop
    silently (out=metrics/ wrote a file called metrics)."""
    if given.endswith(("/", os.sep)):
        raise ConfigError(f"{option}={given} names a folder; give the file to write in it ({option}={given}<name>).")
    return Path(given).expanduser()


def check_parent_folders(path: Path, option: str = "out") -> None:
    """The nearest existing parent of `path` must be a folder: mkdir under a file says "File exists", which
    reads as if the output itself were there."""
    existing = next((folder for folder in path.parents if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"{option}={path}: {existing} is a file, not a folder to write in.")


def check_writable(path: Path, option: str = "out") -> None:
    """Refuse an `out` that cannot be written before any work is done (the folder is made if missing)."""
    check_parent_folders(path, option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{option}={path}: cannot write there ({err.strerror or err}).") from err
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{option}={path}: cannot write there (a directory, or a folder not writable).")


def write_atomically(path: Path, write: Callable[[BinaryIO], object], option: str = "out") -> None:
    """`write(f)` through `atomic_write`: a failure leaves any old file as it was, and becomes a ConfigError
    that names the option (a full disk: the folder and the space the file needs)."""
    try:
        atomic_write(path, write)
    except OSError as err:
        raise ConfigError(f"{option}={path}: cannot write there ({err.strerror or err}).") from err
