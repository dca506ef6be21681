"""`init=<run dir or checkpoint>`: a new run starts from a trained run's G, D and G_ema weights.

Unlike `resume=`, which continues the same run (its step, optimizers, RNG, TensorBoard log), `init=` takes the
weights only: the new run has its own step counter, fresh optimizers and its own data (fine-tuning, transfer).
Every tensor must have the shape the new run's config gives it, else the run stops before its first step and
names the layers that differ. The one exception is the class embeddings (the layers named `embed` or
`class_embed`: an embedding table, a projection D's, StyleGAN2's label mapping): with another number of
classes they keep their fresh initialisation, and the log says so. (A conditional model started from an
unconditional one differs in more than those: conditional BatchNorm, wider inputs; that is refused.)
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor, nn

from ganlab.checkpoint import load_checkpoint, resolve_checkpoint
from ganlab.errors import ConfigError

log = logging.getLogger("ganlab")
CLASS_EMBEDDING_NAMES = ("embed", "class_embed")


def is_class_embedding(key: str) -> bool:
    """Whether a state-dict key belongs to a class embedding (ganlab names them `embed` or `class_embed`)."""
    parts = key.split(".")
    return len(parts) >= 2 and parts[-2] in CLASS_EMBEDDING_NAMES


def mismatches(own: dict[str, Tensor], saved: dict[str, Tensor], skippable: set[str]) -> list[str]:
    """The layers whose tensors differ in name or shape, outside `skippable`, one line each."""
    lines = []
    for key in sorted(own.keys() | saved.keys()):
        if key in skippable:
            continue
        if key not in saved:
            lines.append(f"{key}: {tuple(own[key].shape)} here, absent from the checkpoint")
        elif key not in own:
            lines.append(f"{key}: {tuple(saved[key].shape)} in the checkpoint, absent here")
        elif own[key].shape != saved[key].shape:
            lines.append(f"{key}: {tuple(own[key].shape)} here, {tuple(saved[key].shape)} in the checkpoint")
    return lines


def load_matching(model: nn.Module, saved: dict[str, Tensor], who: str, source: str) -> None:
    """Copy `saved` into `model`; class embeddings that do not fit keep their initialisation (logged)."""
    own = model.state_dict()
    embeddings = {key for key in own.keys() | saved.keys() if is_class_embedding(key)}
    bad = mismatches(own, saved, embeddings)
    if bad:
        listed = "\n  ".join(bad)
        raise ConfigError(
            f"init={source}: {who} has other layers than the checkpoint's, so its weights cannot be loaded:\n  "
            f"{listed}\nStart from a run of the same model and image size (model.*, data.image_size)."
        )
    kept = {k: v for k, v in saved.items() if k in own and (k not in embeddings or own[k].shape == v.shape)}
    fresh = sorted(k for k in own if k not in kept)
    if fresh:
        log.info("init: %s's class embeddings (%s) start afresh: the number of classes differs", who, ", ".join(fresh))
    model.load_state_dict(kept, strict=False)


def initialize_from(source: str, G: nn.Module, D: nn.Module, G_ema: nn.Module | None) -> dict[str, Any]:
    """Load a trained run's G, D and G_ema (its G where it kept no average) into a new run's networks; returns
    the checkpoint's record of where it started (path and step) for the log."""
    path = resolve_checkpoint(source, option="init")
    state = load_checkpoint(path, option="init")
    load_matching(G, state["G"], "G", source)
    load_matching(D, state["D"], "D", source)
    if G_ema is not None:
        load_matching(G_ema, state["G_ema"] if state.get("G_ema") is not None else state["G"], "G_ema", source)
    log.info("init: started from %s (step %s): G, D%s; a new step count, optimizers and data", path,
             state.get("step"), ", G_ema" if G_ema is not None else "")  # fmt: skip
    return {"path": str(path), "step": state.get("step")}
