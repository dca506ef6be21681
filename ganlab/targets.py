"""The `_target_` allow-list: which callables a config, an override or a checkpoint's stored config may name,
and instantiating a config node through it.

`_target_` names a callable that Hydra imports and calls: `os.system` would be code execution. Only the trusted
prefixes are called, plus any listed in $GANLAB_TRUSTED_TARGETS (comma-separated, e.g. "mylab.gan.") for a
researcher's own modules.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Sequence
from typing import Any, Union

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from ganlab.errors import ConfigError

TRUSTED_TARGETS = ("ganlab.", "torch.optim.")


def trusted_target_prefixes() -> tuple[str, ...]:
    extra = os.environ.get("GANLAB_TRUSTED_TARGETS", "")
    return TRUSTED_TARGETS + tuple(p.strip() for p in extra.split(",") if p.strip())


def check_targets(node: Any, where: str = "config") -> None:
    """Refuse any `_target_` in `node` (recursively) outside the trusted prefixes."""
    if isinstance(node, DictConfig | dict):
        for key, value in node.items():
            if key == "_target_" and not str(value).startswith(trusted_target_prefixes()):
                raise ConfigError(
                    f"{where}: _target_={value} is not a ganlab or torch.optim class, and ganlab calls nothing "
                    "else that a config, an override or a checkpoint names. To use your own module, list its "
                    "prefix in GANLAB_TRUSTED_TARGETS (e.g. GANLAB_TRUSTED_TARGETS=mylab.)."
                )
            check_targets(value, f"{where}.{key}" if key != "_target_" else where)
    elif isinstance(node, ListConfig | list | tuple):
        for i, value in enumerate(node):
            check_targets(value, f"{where}[{i}]")


def instantiate_node(node: Any, where: str | None = None, **kwargs: Any) -> Any:
    """hydra.utils.instantiate of a node whose targets are all trusted; a ConfigError raised by the target
    surfaces as itself, and a TypeError (an argument the target does not take, a value of the wrong type) as
    a ConfigError naming the target. A value that a ganlab class's annotations refuse (`data.image_size=abc`,
    `data.seed=1.5`) is named first, as `where`.<key> (`where`: the node's place in the config, e.g. "data")."""
    check_targets(node)
    check_argument_types(node, where)
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        if isinstance(cause, TypeError):
            raise ConfigError(f"{node.get('_target_')}: {cause}. Check the overrides of its config node.") from err
        raise


def option_name(target: str) -> str:
    """The config option a `_target_` belongs to, by the naming rule that conf/<group>/<name>.yaml targets a class
    of ganlab/<group>/<name>.py: `ganlab.losses.hinge.HingeLoss` -> `hinge`, `ganlab.data.mnist.MNISTData` ->
    `mnist`; torch's optimizers by their class (`torch.optim.Adam` -> `adam`); a class from elsewhere by its full
    path. tests/test_config.py holds every option of every group to the rule."""
    module, _, name = target.rpartition(".")
    if module.startswith("ganlab."):
        return module.rpartition(".")[2]
    if module.startswith("torch.optim"):
        return name.lower()
    return target


def check_argument_types(node: Any, where: str | None = None) -> None:
    """Each value of a ganlab class's node against the annotation of the argument it goes to, where that is
    made of int, float, bool, str, None and lists of them (others are left to the class): the value's key and
    what it must be are named, not a comparison of a str with an int deep inside the class."""
    if not isinstance(node, DictConfig | dict):
        return
    target = node.get("_target_")
    if not isinstance(target, str) or not target.startswith("ganlab."):
        return
    from hydra.utils import get_object

    try:
        cls = get_object(target)
        hints = typing.get_type_hints(cls.__init__ if inspect.isclass(cls) else cls)
    except Exception:  # noqa: BLE001  an unresolvable annotation: the class checks its own values
        return
    for key, value in node.items():
        if not isinstance(key, str) or key.startswith("_") or key not in hints:
            continue
        value = value if not isinstance(value, DictConfig | ListConfig) else OmegaConf.to_container(value)
        if _fits(hints[key], value) is False:
            raise ConfigError(f"{where or target}.{key} must be {_described(hints[key])}, got {value!r}.")


def _fits(hint: Any, value: Any) -> bool | None:
    """Whether `value` fits the annotation `hint`; None where the annotation is not one this checks."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        fits = [_fits(arg, value) for arg in args]
        return True if True in fits else (None if None in fits else False)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (list, tuple) or origin in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            return False
        item = args[0] if args and (origin is not tuple or len(args) == 1 or args[1] is Ellipsis) else None
        return None if item is None else (False if any(_fits(item, v) is False for v in value) else True)
    return None


def _described(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_described(arg) for arg in args)
    names = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if args:
        return f"a list of {_described(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return "a list"
