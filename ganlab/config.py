"""Typed schema for the top-level knobs, registered in Hydra's ConfigStore.

The groups (model, loss, optimizer, data) stay free-form `_target_` nodes: each option carries its own
hyperparameters. The run knobs below are typed so that `trainer.steps=abc` fails at composition.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# Configs live inside the package so that a plain (non-editable) install finds them.
CONF_DIR = Path(__file__).resolve().parent / "conf"
CONFIG_NAME = "train"
GROUPS = ("model", "loss", "optimizer", "data")


@dataclass
class TrainerSchema:
    steps: int = 2000
    batch_size: int = 64
    n_critic: int | None = None  # None: the loss's own default
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    log_every: int = 50
    sample_every: int = 250
    checkpoint_every: int = 500
    keep_every: int | None = None  # also keep checkpoints/step_XXXXXXX.pt every this many steps
    keep_last: int | None = None  # also keep the newest k periodic checkpoints as step_XXXXXXX.pt
    on_nan: str = "stop"  # stop | rollback: what a diverged run does
    rollback_lr_factor: float = 0.5  # on_nan=rollback: both learning rates are multiplied by this
    max_rollbacks: int = 3  # on_nan=rollback: then stop
    num_samples: int = 64  # images in the fixed-noise grid (points for 2-D data: x16)
    eval_every: int | None = None  # evaluate every this many steps and at the end (None: no evaluation)
    eval_n: int | None = None  # samples per evaluation; None: 10000 for images, 2500 for 2-D data
    eval_features: str = "auto"  # as `ganlab eval features=`
    monitor: str | None = None  # metric for checkpoints/best.pt and the return value; None: fid, or kl for 2-D


@dataclass
class TrainSchema:
    model: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    data: Any = MISSING
    trainer: TrainerSchema = field(default_factory=TrainerSchema)
    seed: int = 0
    resume: str | None = None


def register_schema() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainSchema)
