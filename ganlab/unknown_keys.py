"""Overrides naming keys that nothing reads: refused with the nearest valid key or group, never passed on.

Hydra's own answer to an unknown key (`los=hinge`) is "To append to your config use +los=hinge", and `+los=hinge`
then trains with the default loss and exits 0. Here:
- an unknown key Hydra refused gets a message that suggests the group or key meant (`loss=hinge`,
  `optimizer.lr_d`), or names the data option that has a data key (`data.kind` is data=gaussians');
- a `+key` is refused where nothing would read it: an unknown top-level key, an unknown run knob (trainer.*,
  augment.*), or a key beside a group's nodes (`+optimizer.lr_x`). Keys added inside a node that names its class
  (`+model.generator.dropout=0.5`, `+loss.x`, `+data.synthetic_options.n`) go to that class, which refuses what it
  does not take.

The index of known keys is read from the YAML files of ganlab/conf and the typed schema, without composing.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf import OmegaConf

from ganlab.config import CONF_DIR, GROUPS, TrainSchema
from ganlab.errors import ConfigError
from ganlab.overrides import split_override

OTHER_GROUPS = ("debug", "debug_model", "experiment", "hparams_search", "stabilizers", "content", "hydra")
NODES_WITH_CLASSES = ("model", "optimizer", "stabilizers")  # their classes sit one level down: model.generator
NODES_NAMING_CLASSES = ("loss", "data", "content")  # a _target_ at their top
SCHEMA_NODES = ("trainer", "augment")  # typed by ganlab/config.py: their keys are known without composing
COULD_NOT_OVERRIDE = re.compile(r"Could not override '([^']+)'")


def _schema_keys(schema: type, prefix: str = "") -> set[str]:
    keys = set()
    for f in fields(schema):
        key = f"{prefix}{f.name}"
        keys.add(key)
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default):
            keys |= _schema_keys(type(default), f"{key}.")
    return keys


def _flatten(node: Any, prefix: str) -> set[str]:
    keys = {prefix}
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and not key.startswith("_") and key != "defaults":
                keys |= _flatten(value, f"{prefix}.{key}")
    return keys


@functools.cache
def known_keys() -> dict[str, set[str]]:
    """Every dotted key ganlab reads -> the options that define it (empty for the run knobs, which always exist)."""
    index: dict[str, set[str]] = {key: set() for key in _schema_keys(TrainSchema)}
    for group in GROUPS:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            for key in _flatten(node, group) - {group}:
                index.setdefault(key, set()).add(f"{group}={path.stem}")
    return index


def suggestion(key: str) -> str:
    """' Did you mean ...?' for an unknown key, or ''."""
    index = known_keys()
    tops = sorted({*GROUPS, *OTHER_GROUPS, *(k for k in index if "." not in k)})
    if "." not in key:
        close = difflib.get_close_matches(key, tops, n=1, cutoff=0.6)
        if close and close[0] in GROUPS:
            return f" Did you mean the group `{close[0]}=<option>`?"
        if close:
            return f" Did you mean `{close[0]}`?"
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = sorted(k for k in index if k.rsplit(".", 1)[-1] == leaf and k != key)
    if same_leaf and key.split(".")[0] not in GROUPS:
        return f" Did you mean `{'` or `'.join(same_leaf[:3])}`?"
    owners = index.get(key)
    if owners:
        options = sorted(owners)
        group = key.split(".")[0]
        return (
            f" `{key}` belongs to {', '.join(options[:4])}{' and others' if len(options) > 4 else ''}: choose one, "
            f"e.g. `{options[0]} {key}=...`; the {group} chosen now has no such key."
        )
    close = difflib.get_close_matches(key, sorted(index), n=1, cutoff=0.75)
    return f" Did you mean `{close[0]}`?" if close else ""


def rewrite_hydra_message(message: str) -> str | None:
    """Hydra's "Could not override 'x'. To append to your config use +x=..." as ganlab's own message."""
    found = COULD_NOT_OVERRIDE.search(message)
    if not found or "To append to your config use" not in message:
        return None
    return unknown_key_message(found.group(1))


def unknown_key_message(key: str) -> str:
    return f"{key}: the configuration has no such key, so nothing would read it.{suggestion(key)}"


def check_keys(args: list[str]) -> None:
    """Refuse `+key=value` where nothing reads the key (see the module's docstring), and an unknown top-level
    `key=value` before Hydra starts."""
    schema = _schema_keys(TrainSchema)
    tops = {*GROUPS, *OTHER_GROUPS, *(k for k in schema if "." not in k)}
    for arg in args:
        if arg.startswith("~"):
            check_deletion(arg, schema)
            continue
        if arg.startswith("-") or "=" not in arg:
            continue
        key = split_override(arg)[0]
        if arg.startswith("++") and (key in schema or key in known_keys()):
            continue  # `++`: set where the key is, added where not; a key ganlab has is set (as without the ++)
        if "/" in key:  # a config group by its path (hydra/launcher=joblib): Hydra knows its options
            continue
        if not arg.startswith(("+", "~")):
            # Answered before Hydra starts (a second, not five): unknown top-level keys and run knobs. Keys inside
            # the groups depend on the options chosen: Hydra checks those (rewrite_hydra_message words it).
            top = key.split(".")[0]
            if top not in tops or (top in SCHEMA_NODES and key not in schema):
                raise ConfigError(unknown_key_message(key))
            continue
        parts = key.split(".")
        top = parts[0]
        if top == "hydra" or top in NODES_NAMING_CLASSES:
            continue  # loss, data, content name their class at their top: it refuses what it does not take
        if top in NODES_WITH_CLASSES and len(parts) >= 3:
            continue  # model.generator.<key>: the generator's class takes it or refuses it
        if key in schema:
            raise ConfigError(f"{arg}: {key} exists already; set it without the +: {arg.lstrip('+')}.")
        raise ConfigError(f"{arg}: nothing reads {key}, so it would be ignored.{suggestion(key)}")


def check_deletion(arg: str, schema: set[str]) -> None:
    """`~key`: Hydra deletes it, and what reads it then fails with OmegaConf's traceback. Deleting is left to
    the defaults list (`~stabilizers`, `~hydra/...`) and to the keys a class takes (`~loss.label_smoothing`,
    `~model.generator.dropout`: the class's default); ganlab's own keys are set, not deleted."""
    key = split_override(arg)[0]
    parts = key.split(".")
    top = parts[0]
    if top == "hydra" or "/" in key or key in OTHER_GROUPS:  # an entry of the defaults list
        return
    if (top in NODES_NAMING_CLASSES and len(parts) >= 2) or (top in NODES_WITH_CLASSES and len(parts) >= 3):
        return
    if key in GROUPS:
        raise ConfigError(f"{arg}: every run needs a {key}; choose one with {key}=<option> instead of deleting it.")
    if key in schema or key in known_keys():
        raise ConfigError(f"{arg}: {key} is read by the run, so it cannot be deleted; set it instead ({key}=...).")
    raise ConfigError(unknown_key_message(key))
