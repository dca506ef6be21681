"""ganlab: config-driven GAN experiments."""

from ganlab.errors import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "__version__"]
