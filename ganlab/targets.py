"""The `_target_` allow-list: which callables a config, an override or a checkpoint's stored config may name,
and instantiating a config node through it.

`_target_` names a callable that Hydra imports and calls: `os.system` would be code execution. Only the trusted
prefixes are called, plus any listed in $GANLAB_TRUSTED_TARGETS (comma-separated, e.g. "mylab.gan.") for a
researcher's own modules.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig

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


def instantiate_node(node: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate of a node whose targets are all trusted; a ConfigError raised by the target
    surfaces as itself, and a TypeError (an argument the target does not take, a value of the wrong type) as
    a ConfigError naming the target."""
    check_targets(node)
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
