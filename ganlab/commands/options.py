"""`key=value` options of `ganlab sample` / `ganlab eval`, typed by a dataclass through OmegaConf."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganlab.errors import ConfigError

T = TypeVar("T")


def parse_options(schema: type[T], args: list[str], command: str) -> T:
    """`["run=out/x", "n=16"]` -> schema(run="out/x", n=16); unknown keys, wrong types and missing required
    options become a ConfigError that lists the options."""
    known = ", ".join(f.name for f in fields(schema))  # type: ignore[arg-type]
    for arg in args:
        if "=" not in arg or arg.startswith("="):
            raise ConfigError(f"ganlab {command}: expected key=value, got {arg!r}. Options: {known}.")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.from_dotlist(args))
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(f"ganlab {command}: {missing[0]}= must be given. Options: {known}.")
        options: Any = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        detail = str(err).split("\n")[0]
        raise ConfigError(f"ganlab {command}: {detail}. Options: {known}.") from err
    return options
