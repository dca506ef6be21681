"""`key=value` options of `ganlab sample` / `ganlab eval`, typed by a dataclass through OmegaConf."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganlab.errors import ConfigError

T = TypeVar("T")


MAX_SAMPLES = 10_000_000  # 10^7 images of 64x64x3 are 490 GB: a larger n is a typo
SEED_RANGE = (0, 2**63 - 1)  # what torch.Generator.manual_seed accepts


def check_count(name: str, value: int, low: int = 1, high: int = MAX_SAMPLES) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high:,}, got {value}.")


def check_seed(value: int) -> None:
    if not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise ConfigError(f"seed must be between 0 and 2**63 - 1, got {value}.")


def parse_options(schema: type[T], args: list[str], command: str) -> T:
    """`["run=out/x", "n=16"]` -> schema(run="out/x", n=16); unknown keys, wrong types and missing required
    options become a ConfigError that lists the options. A field named like a Python keyword with a trailing
    underscore (`class_`) is the option without it (`class=3`)."""
    escaped = {f.name.rstrip("_"): f.name for f in fields(schema) if f.name.endswith("_")}  # type: ignore[arg-type]
    known = ", ".join(f.name.rstrip("_") for f in fields(schema))  # type: ignore[arg-type]
    for arg in args:
        if "=" not in arg or arg.startswith("="):
            raise ConfigError(f"ganlab {command}: expected key=value, got {arg!r}. Options: {known}.")
    pairs = [arg.split("=", 1) for arg in args]
    args = [f"{escaped.get(key, key)}={value}" for key, value in pairs]
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.from_dotlist(args))
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(f"ganlab {command}: {missing[0]}= must be given. Options: {known}.")
        options: Any = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        detail = str(err).split("\n")[0]
        key = getattr(err, "full_key", None)  # the option whose value was refused (n=abc), where OmegaConf knows
        where = f"{key.rstrip('_')}={dict(pairs).get(key.rstrip('_'), '')}: " if key else ""
        raise ConfigError(f"ganlab {command}: {where}{detail}. Options: {known}.") from err
    return options


def split_data_overrides(args: list[str], command: str) -> tuple[list[str], dict[str, str]]:
    """`data.root=<new place>` (and the other keys that say where data lives, not what it is) taken out of a
    command's options: a run whose data moved is evaluated or sampled from where the data is now. Other data keys
    would change the data itself and are refused."""
    from ganlab.config import RELOCATABLE_DATA_KEYS

    rest, moved = [], {}
    for arg in args:
        key, _, value = arg.partition("=")
        if not key.startswith("data."):
            rest.append(arg)
            continue
        name = key.removeprefix("data.")
        if name not in RELOCATABLE_DATA_KEYS:
            allowed = ", ".join(f"data.{k}" for k in sorted(RELOCATABLE_DATA_KEYS))
            raise ConfigError(
                f"ganlab {command}: {key}= would change the data the run was trained on; only where it lives can "
                f"change ({allowed})."
            )
        moved[name] = OmegaConf.from_dotlist([f"v={value}"]).v
    return rest, moved
