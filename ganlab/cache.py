"""Where ganlab keeps what it computes once and reuses: feature classifiers and real-data features."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """`$GANLAB_CACHE`, else `$XDG_CACHE_HOME/ganlab`, else `~/.cache/ganlab`."""
    if os.environ.get("GANLAB_CACHE"):
        return Path(os.environ["GANLAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "ganlab"


def digest(key: Any, length: int = 12) -> str:
    """A short stable hash of a JSON-able key (dict order does not matter)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:length]
