"""Judging a run while it trains: evaluations every `trainer.eval_every` steps and at the end, and the record of
the best value of `trainer.monitor` so far, which decides when best.pt is written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch import nn

from ganlab.build import Components
from ganlab.checkpoint import load_checkpoint
from ganlab.errors import ConfigError
from ganlab.evaluation import lower_is_better, make_evaluator
from ganlab.metric_names import resolve

log = logging.getLogger("ganlab")


class Monitor:
    """The run's evaluator and its monitored metric. `evaluate` measures G at the RunState `run`'s step into its
    `metrics`, `evaluated_step` and `best`, and says whether the value is the best so far."""

    def __init__(self, evaluator: Any, metric: str, seed: int) -> None:
        self.evaluator = evaluator
        self.metric = metric
        self.seed = seed
        # How best.pt's value is measured: a best measured with other settings (n, features) is not comparable.
        self.settings = {"metric": metric, "features": evaluator.features, "n": evaluator.n, "seed": seed}
        if getattr(evaluator, "protocol", None):  # sequences: the post-hoc networks' repeats and steps
            self.settings["protocol"] = evaluator.protocol

    def evaluate(self, G: nn.Module, z_dim: int, run: Any) -> bool:
        # The same latents every time (seeded by the run's seed): the curve shows G changing, not the noise.
        run.metrics = self.evaluator(G, z_dim, seed=self.seed).metrics
        run.evaluated_step = run.step
        value = run.metrics[self.metric]
        if run.best is not None and not is_better(self.metric, value, run.best["value"]):
            return False
        run.best = {**self.settings, "value": value, "step": run.step}
        return True

    def saved_best(self, path: Path) -> dict[str, Any] | None:
        """The record of an existing best.pt if it was measured with these settings; None otherwise, so that the
        next evaluation writes a best.pt of its own."""
        if not path.is_file():
            return None
        record = load_checkpoint(path, mmap=True).get("best") or {}
        if all(record.get(key) == value for key, value in self.settings.items()):
            return record
        log.info("%s was measured with other settings (%s); the best starts afresh", path, record)
        return None


def make_monitor(cfg: DictConfig, parts: Components) -> Monitor | None:
    """The run's Monitor when it evaluates (trainer.eval_every or trainer.monitor set), else None. Building it
    leaves the training RNG untouched."""
    t = cfg.trainer
    if not evaluates(t):
        return None
    evaluator = make_evaluator(
        parts.data,
        cfg.data,
        t.eval_features,
        t.eval_n,
        parts.device,
        option_prefix="trainer.eval_",
        num_classes=parts.num_classes,
        repeats=t.eval_repeats,
        post_hoc_steps=t.eval_post_hoc_steps,
    )
    # trainer.monitor=fid means the FID in this run's extractor: fid_digits, fid_inception.
    metric = resolve(t.monitor, evaluator.names()) if t.monitor else evaluator.primary
    if metric not in evaluator.names():
        raise ConfigError(
            f"trainer.monitor={metric} is not computed for this data; choose one of {', '.join(evaluator.names())}."
        )
    return Monitor(evaluator, metric, cfg.seed)


def evaluates(trainer: DictConfig) -> bool:
    """Whether the run evaluates at all: trainer.eval_every or trainer.monitor set."""
    return trainer.eval_every is not None or trainer.monitor is not None


def is_better(metric: str, value: float, than: float) -> bool:
    return value < than if lower_is_better(metric) else value > than
