"""Errors the CLI reports as a message instead of a traceback, and how such a message begins."""

import math
import os
from typing import Any


class ConfigError(ValueError):
    """A user mistake (bad option, bad value, missing data, bad checkpoint), not a bug. Exit code 2."""


class RunDirInUse(ConfigError):
    """The run directory is held by another live run (ganlab/jobs/run_lock.py). Exit code 2, and the directory is
    left as it is: it is the other run's."""


MAX_SIZE = 2**16  # widths, depths, latent sizes: a larger one is a typo that would exhaust memory


def check_positive(where: str, **values: int) -> None:
    """Widths, depths and sizes must be positive integers up to MAX_SIZE; say which one is not."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}.{name} must be a positive integer, got {value!r}.")
        if value > MAX_SIZE:
            raise ConfigError(f"{where}.{name}={value} is larger than ganlab builds (at most {MAX_SIZE}).")


def check_non_negative(where: str, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}.{name} must be an integer >= 0, got {value!r}.")


def check_number(
    option: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    meaning: str = "",
) -> float:
    """`value` as a float where it is a finite number within the bounds (each closed, or open where said);
    anything else, a string, null, a bool, inf or nan included, is refused naming the option and its range.
    `meaning` is said after the range, e.g. " (0: off)"."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    above = low is None or (number and (value > low if low_open else value >= low))
    below = high is None or (number and (value < high if high_open else value <= high))
    if not (number and above and below):
        raise ConfigError(f"{option} must be {_number_range(low, high, low_open, high_open)}{meaning}, got {value!r}.")
    return float(value)


def _number_range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def first_line(text: object, limit: int = 200) -> str:
    """The first line of an error's text, for one-paragraph messages; a long one is cut after its last whole
    sentence within `limit` (else its last whole word, with an ellipsis), never mid-word."""
    line = (str(text).strip().splitlines() or [""])[0]
    if len(line) <= limit:
        return line
    head = line[: limit + 1]
    sentence = head.rfind(". ")
    if sentence > 0:
        return head[: sentence + 1]
    return head[: head.rfind(" ")].rstrip(",;:") + "…" if " " in head else head[:limit] + "…"


class RunStopped(Exception):
    """Training diverged and was stopped before it overwrote the last good checkpoint. Exit code 1; the other
    jobs of a sweep still run."""

    exit_code = 1


class RunInterrupted(BaseException):
    """SIGTERM or Ctrl-C stopped the run at a step boundary after writing a checkpoint. Like
    KeyboardInterrupt it is not an Exception, so it ends a whole sweep too. Exit code 128 + signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message, signum)  # both in args: the exception pickles across processes (joblib, submitit)
        self.message, self.signum, self.exit_code = message, signum, 128 + signum

    def __str__(self) -> str:
        return self.message


def is_rank_zero() -> bool:
    """Rank 0 of a torchrun (its RANK), or a plain process: the one that writes and speaks for all."""
    return int(os.environ.get("RANK", "0")) == 0


def message_prefix() -> str:
    """`ganlab`, or `ganlab[rank N]` on the other processes of a torchrun: every rank may have its say."""
    rank = int(os.environ.get("RANK", "0"))
    return f"ganlab[rank {rank}]" if rank and int(os.environ.get("WORLD_SIZE", "1")) > 1 else "ganlab"


# What running out of memory says where torch's allocators do not raise OutOfMemoryError themselves: the CPU
# allocator for a tensor larger than RAM; CUDA itself (a context or a kernel's own allocation: "CUDA error: out
# of memory"); cuBLAS and cuDNN allocating their workspaces (CUBLAS_STATUS_ALLOC_FAILED, CUDNN_STATUS_ALLOC_FAILED)
OUT_OF_MEMORY_TEXTS = ("can't allocate memory", "not enough memory", "out of memory", "_STATUS_ALLOC_FAILED")


def out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or another RuntimeError that says memory ran out (OUT_OF_MEMORY_TEXTS)."""
    import torch  # loaded already wherever a tensor was allocated

    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and any(text in str(err) for text in OUT_OF_MEMORY_TEXTS)
