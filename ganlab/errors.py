"""Errors the CLI reports as a message instead of a traceback."""


class ConfigError(ValueError):
    """A user mistake (bad option, bad value, missing data, bad checkpoint), not a bug. Exit code 2."""


class RunStopped(Exception):
    """Training stopped early on purpose (a signal) or by necessity (divergence); the message says where
    the last good checkpoint is. The CLI exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
