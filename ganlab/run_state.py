"""What a run has reached (RunState) and what its checkpoints hold: writing them, pruning the rolling ones,
loading one to resume or to roll back to. The file I/O itself (atomic save, `weights_only` load, RNG states,
the compatibility check) is ganlab/checkpoint.py's.

A checkpoint is one plain dict: the networks, both optimizers, the RunState's fields, the GradScalers (float16),
the fixed noise of the pictures, the RNG states, and the config with the overrides that composed it.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import ganlab
from ganlab.atomic_write import SPACE_ERRNOS
from ganlab.build import Components
from ganlab.cache import digest
from ganlab.checkpoint import (
    AUTO,
    LAST,
    RESUMED,
    capture_rng,
    check_compatible,
    check_contents,
    load_checkpoint,
    newest_good_checkpoint,
    resolve_checkpoint,
    restore_rng,
    run_dir_of,
    save_checkpoint,
)
from ganlab.cuda_graphs import place_step_counts, plain_optimizer_state
from ganlab.errors import RunStopped
from ganlab.generation import FixedInputs
from ganlab.run_log import log_to_files
from ganlab.speed import match_state_layout
from ganlab.step import TrainStep

log = logging.getLogger("ganlab")


@dataclass
class RunState:
    """How far a run has got, beyond its weights: saved in every checkpoint, restored on resume and rollback."""

    step: int = 0  # G steps done
    metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation's values
    evaluated_step: int = 0  # the last step whose evaluation is done (a stop may skip one: redone on resume)
    best: dict[str, Any] | None = None  # best.pt's record: metric, value, step and how it was measured
    rollbacks: int = 0  # times trainer.on_nan=rollback went back, each lowering the learning rates once more

    def load(self, state: dict[str, Any]) -> None:
        """The fields of a checkpoint's state (missing ones keep their start values)."""
        self.step = int(state["step"])
        self.metrics = dict(state.get("metrics") or {})
        self.evaluated_step = int(state.get("evaluated_step", 0))
        self.best = state.get("best")
        self.rollbacks = int(state.get("rollbacks", 0))


class Checkpoints:
    """A run's checkpoints/ folder and what each checkpoint in it holds.

    `save` writes one file; `save_periodic` writes last.pt, the kept step_XXXXXXX.pt and prunes the rolling
    ones; `resume` and `roll_back` load a state into the components, the step and the RunState."""

    def __init__(
        self,
        folder: Path,
        parts: Components,
        stepper: TrainStep,
        pictures: FixedInputs,
        config: Any,
        overrides: list[str],
    ) -> None:
        self.folder = folder
        self.parts = parts
        self.stepper = stepper
        self.pictures = pictures  # its noise is saved, and restored on resume
        self.config = config
        self.overrides = overrides
        self.data_fingerprint = data_fingerprint(parts.data, config)

    def contents(self, run: RunState) -> dict[str, Any]:
        parts = self.parts
        return {
            "ganlab_version": ganlab.__version__,
            "data_shape": list(parts.data.shape),  # lets `ganlab sample` rebuild G without loading the data
            "num_classes": parts.num_classes,
            "data_fingerprint": self.data_fingerprint,  # the model card of `ganlab export` records it
            "G": parts.G.state_dict(),
            "G_ema": parts.ema.model.state_dict() if parts.ema is not None else None,
            "D": parts.D.state_dict(),
            "opt_G": plain_optimizer_state(parts.opt_g),
            "opt_D": plain_optimizer_state(parts.opt_d),
            **dataclasses.asdict(run),
            "d_updates": self.stepper.d_updates,
            "scalers": self.stepper.scaler_state(),
            "stabilizers": {name: s.state_dict() for name, s in parts.stabilizers.items()},
            "growth": parts.growth.record() if parts.growth is not None else None,  # also in G's and D's buffers
            "history_buffer": parts.history.state_dict() if parts.history is not None else None,
            "ada": parts.ada.state_dict() if parts.ada is not None else None,  # p: exact resume
            "fixed_noise": self.pictures.noise.cpu(),
            "rng": capture_rng(),
            "config": self.config,
            "overrides": self.overrides,
        }

    def save(self, run: RunState, name: str = LAST) -> None:
        save_or_stop(self.contents(run), self.folder / name)

    def save_periodic(
        self, run: RunState, keep: bool, checkpoint_every: int, keep_last: int | None, keep_every: int | None
    ) -> None:
        """last.pt; step_XXXXXXX.pt when kept (trainer.keep_every) or rolling (trainer.keep_last), pruned."""
        state = self.contents(run)
        save_or_stop(state, self.folder / LAST)
        if keep or (keep_last and run.step % checkpoint_every == 0):
            save_or_stop(state, self.folder / f"step_{run.step:07d}.pt")
        if keep_last:
            prune_rolling_checkpoints(self.folder, keep_last, keep_every)

    def resume(self, path: Path, state: dict[str, Any], run: RunState, lr_factor: float) -> None:
        """Continue from `state` (read from `path`): the config's learning rates, lowered once for every rollback
        before; the RNG states last, so that nothing draws between here and the first step."""
        check_contents(state, path, "resume", RESUMED)
        check_compatible(state["config"], self.config, path)
        self._load_networks(state)
        self.stepper.load_scaler_state(state.get("scalers"))
        run.load(state)
        if self.parts.growth is not None:
            self.parts.growth.check_continues(state.get("growth"), run.step)
        self.pictures.noise = state["fixed_noise"].to(self.parts.device)
        scale_learning_rates(self.parts, lr_factor**run.rollbacks)
        restore_rng(state["rng"])

    def roll_back(self, run: RunState, lr_factor: float) -> None:
        """Back to last.pt after a divergence, with the current rates lowered once more; the RunState's count of
        rollbacks, the best record (best.pt may be newer than last.pt) and float16's loss scales (backed off by the
        divergence) stay as they are. Captured CUDA graphs are dropped: the optimizers hold new state tensors."""
        state = load_checkpoint(self.folder / LAST)
        self._load_networks(state)
        run.step, run.metrics = int(state["step"]), dict(state.get("metrics") or {})
        run.evaluated_step = int(state.get("evaluated_step", 0))
        run.rollbacks += 1
        scale_learning_rates(self.parts, lr_factor)
        self.stepper.restart_graphs()
        restore_rng(state["rng"])

    def _load_networks(self, state: dict[str, Any]) -> None:
        """The networks, the optimizers and what steps with them: the count of D updates and the stabilisers."""
        parts = self.parts
        parts.G.load_state_dict(state["G"])
        parts.D.load_state_dict(state["D"])
        if parts.ema is not None:  # a run that turns trainer.ema on at resume starts its average from G
            parts.ema.model.load_state_dict(state["G_ema"] if state.get("G_ema") is not None else state["G"])
        load_optimizer_state(parts.opt_g, state["opt_G"])
        load_optimizer_state(parts.opt_d, state["opt_D"])
        self.stepper.d_updates = int(state.get("d_updates", 0))
        if parts.growth is not None:  # the networks now hold the checkpoint's phase and alpha
            parts.growth.forget()
        if parts.ada is not None:  # ADA turned on at resume starts at augment.ada_p
            parts.ada.load_state_dict(state.get("ada"))
        if parts.history is not None and state.get("history_buffer") is not None:  # else it starts empty
            parts.history.load_state_dict(state["history_buffer"])
        saved = state.get("stabilizers") or {}
        for name, stabilizer in parts.stabilizers.items():  # one turned on at resume starts afresh
            stabilizer.load_state_dict(saved.get(name, {}))


def data_fingerprint(data: Any, config: Any) -> str:
    """What identifies the training data: the source's own fingerprint (a hash of its samples or files), or for a
    source defined by its options alone (the 2-D mixtures) a digest of those options."""
    own = getattr(data, "fingerprint", None)
    if callable(own):
        return str(own())
    return "config-" + digest(dict(config["data"]))


def find_checkpoint(resume: str, ckpt_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """`resume=<run dir or file>`: that checkpoint. `resume=auto`: the newest good one in this run's own
    checkpoints/, or None (a fresh start), so that re-running the same command (a SLURM requeue) continues."""
    if resume == AUTO:
        found = newest_good_checkpoint(ckpt_dir)
        if found is None:
            log.info("resume=auto: no checkpoint in %s yet, starting fresh", ckpt_dir)
        return found
    path = resolve_checkpoint(resume)
    return path, load_checkpoint(path)


def save_or_stop(state: dict[str, Any], path: Path) -> None:
    """A checkpoint that cannot be written (disk full, folder gone) stops the run; the atomic write leaves the
    previous file at `path` intact."""
    try:
        save_checkpoint(state, path)
    except OSError as err:
        kept = "the previous checkpoint there is intact" if path.is_file() else "none had been written there yet"
        run_dir = run_dir_of(path) or path
        then = f"continue with: ganlab train resume={run_dir}" if path.is_file() else "run the same command again"
        message = (
            f"could not write the checkpoint {path} at step {state['step']} ({err.strerror or err}); {kept}. "
            f"{what_to_fix(err, path)}, then {then}"
        )
        log_to_files(message)
        raise RunStopped(message) from err


def what_to_fix(err: OSError, path: Path) -> str:
    """The advice for a checkpoint that could not be written, by what the system said (not always a full disk)."""
    if err.errno in SPACE_ERRNOS:
        return "Free some space"
    if err.errno == errno.EISDIR or path.is_dir():
        return f"A folder stands where the checkpoint goes: move {path} aside"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Make {path.parent} writable"
    return "Mend that"


def prune_rolling_checkpoints(ckpt_dir: Path, keep_last: int, keep_every: int | None) -> None:
    """Keep the newest `keep_last` step_XXXXXXX.pt files; milestones of trainer.keep_every stay for good."""
    rolling = sorted(
        p
        for p in ckpt_dir.glob("step_*.pt")
        if p.stem[5:].isdigit() and not (keep_every and int(p.stem[5:]) % keep_every == 0)
    )
    for old in rolling[:-keep_last]:
        old.unlink(missing_ok=True)


def scale_learning_rates(parts: Components, factor: float) -> None:
    """Lower both base rates (a rollback after NaNs); the schedules apply them from the next step on."""
    for schedule in (parts.lr_g, parts.lr_d):
        schedule.scale(factor)


def load_optimizer_state(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Restore the optimizer's state (moments, step counts) but keep the hyperparameters of the config:
    `resume=... optimizer.lr_d=1e-5` must lower the rate, not be silently undone by the checkpoint."""
    configured = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
    opt.load_state_dict(saved)
    for group, hyper in zip(opt.param_groups, configured, strict=True):
        group.update(hyper)
    place_step_counts(opt)
    match_state_layout(opt)


def stop_diverged(
    bad: list[str],
    step: int,
    ckpt_dir: Path,
    rollbacks: int = 0,
    on_nan: str = "stop",
    checkpoint_every: int = 0,
    loss: str | None = None,
) -> None:
    """Stop a diverged run before it overwrites the last good checkpoint with NaNs; `bad` names what broke. The
    advice follows what was tried: under trainer.on_nan=rollback, why it could not roll back (again); `loss`, the
    run's loss option, is not suggested to it."""
    last = ckpt_dir / LAST
    kept = (
        f"The last checkpoint, {last} (step {load_checkpoint(last)['step']}), is kept."
        if last.is_file()
        else "No checkpoint had been written yet."
    )
    if on_nan != "rollback":
        tried = "try trainer.on_nan=rollback, "
    elif not last.is_file():
        first = f" (trainer.checkpoint_every={checkpoint_every} writes the first at step {checkpoint_every})"
        tried = f"trainer.on_nan=rollback had no checkpoint to go back to{first if checkpoint_every else ''}; try "
    else:
        tried = "try "
    steadier = " or ".join(f"loss={name}" for name in ("wgan_gp", "hinge") if name != loss)
    message = (
        f"training diverged at step {step}: {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} not finite. "
        f"{kept} Lower the learning rates, {tried}a steadier loss such as {steadier}."
        + (f" It had already been rolled back {rollbacks} time(s) (trainer.max_rollbacks)." if rollbacks else "")
    )
    log_to_files(message)  # the CLI prints it on stderr
    raise RunStopped(message)
