"""The values a sweep's overrides expand to, checked before Hydra sets the sweep up.

Hydra expands `range()` and `glob()` only once its sweeper runs: a step of 0 ended in Python's ValueError and a
traceback, an empty range or a glob over a plain value launched 0 jobs and exited 0, and a batch size of 0 for
the basic sweeper failed one of Hydra's asserts.
"""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, RangeSweep
from hydra.errors import HydraException

from ganlab.config import GROUPS
from ganlab.errors import ConfigError
from ganlab.overrides import is_multirun, last_value, override_key
from ganlab.unknown_keys import OTHER_GROUPS


def check_sweep_values(args: list[str]) -> None:
    if not is_multirun(args):
        return
    parser = OverridesParser.create()
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            continue
        try:
            override = parser.parse_overrides([arg])[0]
        except HydraException:
            continue  # Hydra says what is wrong with it
        if not override.is_sweep_override():
            continue
        sweep = override.value()
        if isinstance(sweep, RangeSweep):
            _check_range(arg, override)
        elif isinstance(sweep, Glob) and not _is_group(override_key(arg).lstrip("+~")):
            raise ConfigError(
                f"{arg}: glob() picks options of a config group ({', '.join(GROUPS)}, ...); "
                f"{override.key_or_group} takes values: list them (a,b,c) or give a range(start, stop, step)."
            )
    _check_batch_size(args)


def _is_group(key: str) -> bool:
    return key in GROUPS or key in OTHER_GROUPS or "/" in key  # hydra/launcher=..., model/generator=...


def _check_range(arg: str, override: object) -> None:
    try:
        values = list(override.sweep_iterator())  # type: ignore[attr-defined]
    except ValueError as err:  # range(0, 1, 0): "range() arg 3 must not be zero"
        raise ConfigError(f"{arg}: {err}; give a step that is not 0.") from None
    if not values:
        raise ConfigError(
            f"{arg} selects no value: range(start, stop, step) counts from start towards stop, stop left out (a "
            "negative step counts down), so no job would run."
        )


def _check_batch_size(args: list[str]) -> None:
    """hydra.sweeper.max_batch_size: how many jobs the basic sweeper hands the launcher at once (null: all)."""
    given = last_value(args, "hydra.sweeper.max_batch_size")
    if given is None or given.strip() == "null":
        return
    try:
        size = int(given)
    except ValueError:
        return  # not a number: Hydra's schema refuses it in a sentence
    if size < 1:
        raise ConfigError(
            f"hydra.sweeper.max_batch_size={given}: give how many jobs to launch at once (1 or more), or null for "
            "all of them."
        )
