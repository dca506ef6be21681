"""Hydra command-line overrides read as ganlab needs them: `+trainer.steps=5` is the key `trainer.steps` with the
text `5`; `~model` deletes `model`. One reader for the CLI, the sweep checks and the HParams tab."""

from __future__ import annotations


def split_override(override: str) -> tuple[str, str | None]:
    """`+trainer.steps=5` -> ("trainer.steps", "5"); `~model` -> ("model", None)."""
    key, sep, value = override.partition("=")
    return key.lstrip("+~"), value if sep else None


def override_key(override: str) -> str:
    """`+trainer.steps=5` -> `trainer.steps`; `~model` -> `model`."""
    return split_override(override)[0]


def last_value(args: list[str], key: str) -> str | None:
    """The value the last override of `key` gives it (the one Hydra applies), or None; a quoted value
    (`resume='/runs/my run'`) without its quotes, as Hydra reads it."""
    values = [value for k, value in map(split_override, args) if k == key and value is not None]
    return unquoted(values[-1]) if values else None


def unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1].replace("\\" + value[0], value[0])
    return value


def quoted(value: str) -> str:
    """`value` as a quoted override value that Hydra's grammar reads back as it is (a path with spaces, `=`,
    quotes): in the quote it does not contain, else with its single quotes escaped."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "\\'") + "'"


def is_multirun(args: list[str]) -> bool:
    """-m, hydra.mode=MULTIRUN, or an hparams_search preset (each sets hydra.mode=MULTIRUN)."""
    return bool({"-m", "--multirun"} & set(args)) or any(
        (override_key(a) == "hparams_search" and not a.endswith("=null")) or a.lstrip("+") == "hydra.mode=MULTIRUN"
        for a in args
        if "=" in a
    )
