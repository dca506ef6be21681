"""The normalisations a network's layers may use: `model.generator.norm`, `model.discriminator.norm`, and the
`loss.d_norm` a loss declares for D. A name shared by models and losses, so that neither imports the other."""

from ganlab.errors import ConfigError

NORMS = ("batch", "layer", "none")


def check_norm(norm: str, where: str) -> None:
    if norm not in NORMS:
        raise ConfigError(f"{where}={norm!r} is not a normalisation ganlab knows; choose one of {', '.join(NORMS)}.")
