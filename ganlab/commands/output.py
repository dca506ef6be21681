"""Writing a command's output file whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ganlab.atomic_write import atomic_write
from ganlab.errors import ConfigError


def check_writable(path: Path, option: str = "out") -> None:
    """Refuse an `out` that cannot be written before any work is done (the folder is made if missing)."""
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
