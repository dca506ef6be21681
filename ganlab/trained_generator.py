"""A trained generator read back from a checkpoint, for `ganlab sample` and `ganlab eval`.

The checkpoint holds the config it was trained with, so the generator (and, for evaluation, the data) are
rebuilt from it: no Hydra composition and no overrides needed. The EMA generator is used when there is one,
unless `generator=G` asks for the trained weights themselves (to see what the average buys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from ganlab.build import latent_size
from ganlab.checkpoint import load_checkpoint, resolve_checkpoint, run_dir_of
from ganlab.data.selection import build_data
from ganlab.errors import ConfigError, first_line
from ganlab.targets import instantiate_node, option_name


@dataclass
class Snapshot:
    path: Path
    folder: Path  # the run directory, or the checkpoint's folder when it lives outside one
    step: int
    config: dict[str, Any]
    G: nn.Module
    generator: str  # "G_ema" or "G": which weights G holds
    z_dim: int
    shape: tuple[int, ...]
    num_classes: int | None  # a conditional generator's classes, else None
    overrides: list[str] = field(default_factory=list)  # the command line it was trained with
    data_fingerprint: str | None = None  # of the data it was trained on (checkpoints since the export command)

    @property
    def model(self) -> str:
        """`model=<name>` as the run chose it, for messages."""
        return f"model={option_name(self.config['model']['generator']['_target_'])}"

    def data(self, device: torch.device) -> Any:
        try:
            return make_data(self.config, device)
        except ConfigError as err:
            root = self.config["data"].get("root")
            if root is None:
                raise
            raise ConfigError(
                f"{err} The run read its data from data.root={root}; if the data has moved, give its new place: "
                "data.root=<folder>."
            ) from err

    def relocate(self, moved: dict[str, Any]) -> None:
        """Read the data from where it lives now (`data.root=...` on the command line), not where it was."""
        if moved:
            self.config = {**self.config, "data": {**self.config["data"], **moved}}


def make_data(config: dict[str, Any], device: torch.device) -> Any:
    return build_data(config["data"], device)


GENERATORS = ("auto", "G", "G_ema")


def load_snapshot(run: str, device: torch.device, generator: str = "auto") -> Snapshot:
    """`generator`: auto (G_ema when the run kept one, else G), G, or G_ema."""
    if generator not in GENERATORS:
        raise ConfigError(f"generator={generator}: choose one of {', '.join(GENERATORS)}.")
    path = resolve_checkpoint(run, option="run")
    state = load_checkpoint(path, option="run")
    config = state["config"]
    # Checkpoints store the data's sample shape; older ones are asked of the data itself.
    shape = tuple(state["data_shape"]) if "data_shape" in state else tuple(make_data(config, torch.device("cpu")).shape)
    num_classes = state.get("num_classes")
    labels = {"num_classes": int(num_classes)} if num_classes else {}
    G = instantiate_node(OmegaConf.create(config["model"]["generator"]), out_shape=shape, **labels)
    kept_ema = state.get("G_ema") is not None
    if generator == "G_ema" and not kept_ema:
        raise ConfigError(f"generator=G_ema: {path} holds no EMA of G (the run trained with trainer.ema off).")
    if generator == "auto":
        generator = "G_ema" if kept_ema else "G"
    try:
        G.load_state_dict(state[generator])
    except RuntimeError as err:  # the config edited, or filled in with today's defaults where a key is gone
        details = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]  # after torch's heading
        raise ConfigError(
            f"run={path}: its {generator} weights do not fit the generator its config describes "
            f"({details[0] if details else first_line(err)}); was the checkpoint edited?"
        ) from err
    G.to(device).eval().requires_grad_(False)
    folder = run_dir_of(path) or path.parent
    z_dim = latent_size(G, config["model"]["z_dim"])
    return Snapshot(
        path,
        folder,
        int(state["step"]),
        config,
        G,
        generator,
        z_dim,
        shape,
        labels.get("num_classes"),
        list(state.get("overrides") or []),
        state.get("data_fingerprint"),
    )
