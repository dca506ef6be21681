"""ganlab: config-driven GAN experiments.

The public API: `ganlab.load_generator(path)` (ganlab/loaded_generator.py) and `ganlab.ConfigError`."""

from __future__ import annotations

from typing import Any

from ganlab.errors import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "__version__", "load_generator"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import ganlab` (and so every CLI command) stays free of torch until it needs it.
    if name == "load_generator":
        from ganlab.loaded_generator import load_generator

        return load_generator
    raise AttributeError(f"module 'ganlab' has no attribute {name!r}")
