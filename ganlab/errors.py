"""User-facing errors: the CLI prints these as one paragraph and exits with code 2."""


class ConfigError(ValueError):
    """A user mistake (bad option, bad value, missing data, bad checkpoint), not a bug."""
