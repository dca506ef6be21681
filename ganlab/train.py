"""The training loop, top to bottom: set-up -> resume -> outputs -> steps, each followed by its periodic work
-> the end.

Each step is the recipe of Goodfellow et al. (2014), Algorithm 1: `n_critic` discriminator updates on fresh
real and generated batches (G's output detached), then one generator update through a frozen D. The step
itself lives in ganlab/step.py; building the networks, optimizers and data (with precision, torch.compile,
channels_last and DDP) in ganlab/build.py; what a checkpoint holds in ganlab/run_state.py; evaluations and the
best value in ganlab/monitor.py. This loop around them logs, draws pictures, checkpoints, evaluates, and
handles signals and divergence. The stabilisers (ganlab/stabilizers/) act inside the step. Under torchrun every
rank runs this loop; rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ganlab import pictures
from ganlab.atomic_write import remove_stale_temps
from ganlab.build import Components, build, seed_everything
from ganlab.checkpoint import BEST, CHECKPOINT_DIR, LAST
from ganlab.data.base import close_source
from ganlab.distributed import any_rank, barrier, current, per_rank_batch, rank_seed
from ganlab.divergence import NanWatch, nonfinite_state
from ganlab.errors import RunInterrupted, RunStopped, first_line
from ganlab.generation import FixedInputs
from ganlab.jobs.signals import StopRequests
from ganlab.monitor import Monitor, make_monitor
from ganlab.monitor import evaluates as monitor_evaluates
from ganlab.run_log import RunLogger, log_to_files, run_hparams
from ganlab.run_state import Checkpoints, RunState, find_checkpoint, stop_diverged
from ganlab.status import DIVERGED, RunStatus
from ganlab.step import TrainStep
from ganlab.targets import option_name
from ganlab.transfer.init import initialize_from

log = logging.getLogger("ganlab")


def train(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> float | None:
    """Train (or continue) the run described by `cfg`, writing everything under `run_dir`.

    `overrides` are the command-line overrides that composed `cfg`; they are stored in the checkpoint so
    that `resume=` recomposes the same config. Returns the monitored metric of the final evaluation (for
    sweepers), or None when the run does not evaluate.
    """
    # --- Set-up: components, the step, the pictures' fixed inputs, the evaluator. Nothing is written yet. ---
    run_dir, t, dist = Path(run_dir), cfg.trainer, current()
    rank_batch = per_rank_batch(t.batch_size)  # the global batch: refused before building (caches are slow)
    seed_everything(cfg.seed)  # the same on every rank: the networks start identical
    parts = build(cfg)
    try:
        watch = NanWatch(parts.device, 0)
        stepper = TrainStep(parts, t, rank_batch, watch)
        fixed = FixedInputs.for_run(parts, t.num_samples, cfg.seed)
        monitor = make_monitor(cfg, parts) if dist.is_main else None  # rank 0 evaluates; all know the steps:
        evaluates = monitor_evaluates(t)
        run = RunState()
        config = OmegaConf.to_container(cfg, resolve=True)
        store = Checkpoints(run_dir / CHECKPOINT_DIR, parts, stepper, fixed, config, list(overrides))

        # --- Resume: weights, optimizers, RunState and RNG from a checkpoint ---
        found = find_checkpoint(cfg.resume, store.folder) if cfg.resume else None
        if found:
            store.resume(*found, run, t.rollback_lr_factor)
            if dist.is_main:
                log.info("resumed %s at step %d", found[0], run.step)
        elif cfg.init:  # a new run from a trained run's weights: its own steps, optimizers and data
            initialize_from(cfg.init, parts.G, parts.D, parts.ema.model if parts.ema is not None else None)
        if dist.enabled:  # each rank its own batches (a checkpoint holds rank 0's RNG state, whatever the world size)
            torch.manual_seed(rank_seed(cfg.seed, dist.rank, run.step))
        watch.reset(run.step)
        pending_eval = run.step > 0 and is_eval_step(run.step, t, evaluates) and run.evaluated_step != run.step
        if run.step >= t.steps and not pending_eval:
            log.info("the run is already at step %d of %d: raise trainer.steps to extend it", run.step, t.steps)
            return run.metrics.get(monitor.metric) if monitor else None

        # --- Outputs: the run directory, TensorBoard and console, status.json (rank 0 only) ---
        if dist.is_main:
            prepare_run_dir(run_dir, cfg, store.folder)
            log.info("run directory: %s", run_dir.resolve())  # what resume=, sample, eval and export take
            run.best = monitor.saved_best(store.folder / BEST) if monitor else None
        logger = RunLogger(run_dir, run.step, t.steps, run.step + 1 if run.step else None, writes=dist.is_main)
        logger.print_config(cfg)
        metric = monitor.metric if monitor else None
        measured_with = {"features": monitor.evaluator.features, "n": monitor.evaluator.n} if monitor else None
        status = RunStatus(run_dir, t.steps, metric, list(overrides), run.step, dist.is_main, measured_with)
        speed = Throughput(t.batch_size, stepper.batches_drawn)

        # --- Steps, each followed by its periodic work ---
        with (
            StopRequests() as stop,
            logger,
            status,
            second_ctrl_c_interrupts(stop, run, status, run_dir),
            lost_ranks_named(run, status, run_dir),
        ):
            if pending_eval and monitor:  # the checkpoint's own step was due an evaluation that a stop cut off
                evaluate(monitor, run, parts, logger, store)
                store.save(run)
            while run.step < t.steps:
                run.step += 1
                stepper(run.step)

                # Read once: a signal from here on waits for the next step. torchrun passes a SIGTERM to every
                # rank, but not at the same step: the ranks stop together when any of them has one.
                stopping = any_rank(stop.signum is not None)
                due = Due.at(run.step, t, stopping, evaluates)
                values = stepper.meter.means() if due.reads else {}  # reading syncs with the device: only then
                fixed_samples = fixed.generate(parts.G_eval) if due.draws else None
                problems, first_bad = find_problems(due, values, watch, parts, fixed_samples)
                if problems:
                    if t.on_nan == "rollback" and run.rollbacks < t.max_rollbacks and (store.folder / LAST).is_file():
                        roll_back(problems, first_bad or run.step, run, store, stepper, logger, speed, cfg)
                        continue
                    status.expect(DIVERGED)  # the RunStopped raised next means divergence, not a failed write
                    loss = option_name(str(cfg.loss.get("_target_", "")))
                    stop_diverged(
                        problems, first_bad or run.step, store.folder, run.rollbacks, t.on_nan, t.checkpoint_every, loss
                    )
                if due.log:
                    values |= rates(parts, speed, stepper.batches_drawn)
                    stepper.meter.reset()
                    logger.scalars(run.step, values)
                    logger.report(run.step, values)
                    status.update(run.step)  # the heartbeat, and how far a run that dies later got
                if due.sample and dist.is_main:
                    picture = fixed.picture(fixed_samples)
                    logger.image(run.step, "samples", picture)
                    pictures.save_png(picture, run_dir / "samples" / f"step_{run.step:07d}.png")
                if due.save:  # before evaluating: a failed evaluation must not cost the checkpoint
                    save_on_main(store, run, due.keep, t, status, dist.is_main)
                if due.eval and monitor:
                    evaluate(monitor, run, parts, logger, store)
                    if due.save:
                        store.save(run)  # now recording the evaluation too
                if stopping:
                    raise interrupted(stop, run.step, t.steps, run_dir)

            # --- The end: the HParams tab (this run's settings; its metrics are the scalars logged) ---
            logger.hparams(run_hparams(cfg, overrides))
        if dist.is_main:
            log.info("finished at step %d: %s (ganlab sample run=%s)", run.step, run_dir.resolve(), run_dir.resolve())
        return run.metrics.get(monitor.metric) if monitor else None
    finally:  # a streaming source's workers stop here, timed, rather than at interpreter exit
        close_source(parts.data)


@dataclass
class Due:
    """The periodic work that a step ends with."""

    log: bool
    save: bool
    keep: bool  # a step_XXXXXXX.pt kept for good (trainer.keep_every)
    sample: bool
    eval: bool

    @classmethod
    def at(cls, step: int, t: DictConfig, stopping: bool, evaluates: bool) -> Due:
        last = step == t.steps or stopping
        keep = bool(t.keep_every) and step % t.keep_every == 0
        return cls(
            log=step % t.log_every == 0 or last,
            save=step % t.checkpoint_every == 0 or last or keep,
            keep=keep,
            sample=step % t.sample_every == 0 or last,
            eval=is_eval_step(step, t, evaluates) and not stopping,  # a stop skips it; resume does it first
        )

    @property
    def reads(self) -> bool:
        """Whether the step's values are read back from the device (and checked for divergence)."""
        return self.log or self.save or self.eval

    @property
    def draws(self) -> bool:
        """Whether G's pictured output is drawn (for a picture, or checked before being saved or judged)."""
        return self.sample or self.save or self.eval


def is_eval_step(step: int, t: DictConfig, evaluates: bool) -> bool:
    return evaluates and (step == t.steps or (t.eval_every is not None and step % t.eval_every == 0))


def rates(parts: Components, speed: Throughput, batches: int) -> dict[str, float]:
    """The learning rates (host copies: a captured optimizer's rate is a tensor), the data rate, and a growing
    model's resolution and fade-in alpha."""
    return {
        "lr/G": parts.lr_g.current[0],
        "lr/D": parts.lr_d.current[0],
        "perf/images_per_s": speed.images_per_s(batches),
        **(parts.growth.scalars() if parts.growth is not None else {}),
        **(parts.ada.scalars() if parts.ada is not None else {}),
    }


class Throughput:
    """Real images drawn per second since the last log (through D, or G alone while it pre-trains): the data
    rate, comparable across n_critic."""

    def __init__(self, batch_size: int, batches: int) -> None:
        self.batch_size = batch_size
        self.restart(batches)

    def restart(self, batches: int) -> None:
        self.since, self.batches = time.perf_counter(), batches

    def images_per_s(self, batches: int) -> float:
        now = time.perf_counter()
        rate = self.batch_size * (batches - self.batches) / max(now - self.since, 1e-9)
        self.since, self.batches = now, batches
        return rate


def prepare_run_dir(run_dir: Path, cfg: DictConfig, ckpt_dir: Path) -> None:
    """The run directory with its config.yaml and samples/, without the temp file of a write a kill cut off."""
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    for folder in (ckpt_dir, run_dir / "samples"):
        remove_stale_temps(folder)


def find_problems(
    due: Due, values: dict[str, float], watch: NanWatch, parts: Components, fixed_samples: torch.Tensor | None
) -> tuple[list[str], int]:
    """What is not finite, and the step where a loss first went bad (0: none); empty when all is well. Losses
    are checked whenever values are read; the weights and G's output before they are saved or judged. Under
    torchrun every rank learns of another's trouble, so that all of them roll back or stop together."""
    if not due.reads:
        return [], 0
    problems: list[str] = []
    first_bad = watch.first_bad_step()
    if first_bad:
        problems = [f"{k} = {v}" for k, v in values.items() if not math.isfinite(v)] or ["a loss"]
    if (due.save or due.eval) and not problems:  # then G's pictured output was drawn too (Due.draws)
        problems = nonfinite_state(parts.G, parts.D, fixed_samples, parts.ema.model if parts.ema else None)
    if current().enabled and any_rank(bool(problems)) and not problems:
        problems = ["a loss of another process"]
    return problems, first_bad


def save_on_main(store: Checkpoints, run: RunState, keep: bool, t: DictConfig, status: RunStatus, main: bool) -> None:
    """Rank 0 writes the checkpoint; when it cannot (a full disk), every rank stops at this step, the others
    saying that rank 0 has the reason, rather than waiting at the next collective for a peer that is gone (which
    ended them with a gloo traceback)."""
    failure: RunStopped | None = None
    if main:
        try:
            store.save_periodic(run, keep, t.checkpoint_every, t.keep_last, t.keep_every)
            status.update(run.step, saved_step=run.step)
        except RunStopped as err:
            failure = err
    if any_rank(failure is not None):
        raise failure or RunStopped(
            f"rank 0 could not write its checkpoint at step {run.step} (its own message says why); this rank stops "
            "with it."
        )


def roll_back(
    problems: list[str],
    at_step: int,
    run: RunState,
    store: Checkpoints,
    stepper: TrainStep,
    logger: RunLogger,
    speed: Throughput,
    cfg: DictConfig,
) -> None:
    """trainer.on_nan=rollback: back to the last checkpoint with lower learning rates, logging from there."""
    barrier()  # every rank reads the file that rank 0 wrote
    store.roll_back(run, cfg.trainer.rollback_lr_factor)
    dist = current()
    if dist.enabled:
        torch.manual_seed(rank_seed(cfg.seed, dist.rank, run.step) + run.rollbacks)  # not the batches that failed
    stepper.watch.reset(run.step)
    stepper.meter.reset()
    logger.rewind(run.step)  # the steps after the checkpoint will be logged again
    speed.restart(stepper.batches_drawn)
    logger.note(
        f"training diverged at step {at_step} ({', '.join(problems[:4])} not finite); rolled back to step "
        f"{run.step} of {store.folder / LAST} with learning rates x{cfg.trainer.rollback_lr_factor} "
        f"(rollback {run.rollbacks} of at most {cfg.trainer.max_rollbacks})"
    )


def evaluate(monitor: Monitor, run: RunState, parts: Components, logger: RunLogger, store: Checkpoints) -> None:
    """Measure G (its EMA when there is one) at this step; a new best is saved as best.pt."""
    improved = monitor.evaluate(parts.G_eval, parts.z_dim, run)
    logger.scalars(run.step, {f"metrics/{name}": value for name, value in run.metrics.items()})
    logger.note(f"eval at step {run.step}: " + " ".join(f"{k} {v:.4g}" for k, v in run.metrics.items()))
    if improved:
        store.save(run, BEST)


def interrupted(stop: StopRequests, step: int, steps: int, run_dir: Path) -> RunInterrupted:
    by = stop.name or "a signal to another rank"  # torchrun's ranks stop together when any one of them has one
    message = (
        f"stopped by {by} at step {step} of {steps}; checkpoint saved. Continue with: ganlab train resume={run_dir}"
    )
    log_to_files(message)  # the CLI prints it on stderr
    return RunInterrupted(message, signum=stop.signum or signal.SIGTERM)  # or another rank's signal


@contextlib.contextmanager
def second_ctrl_c_interrupts(stop: StopRequests, run: RunState, status: RunStatus, run_dir: Path) -> Iterator[None]:
    """A second Ctrl-C while stopping ends the run at once, maybe inside torch.save, which then fails with a
    RuntimeError of its own (the atomic write keeps the previous checkpoint): whatever it raised, the run was
    interrupted, and says so, rather than crashing with a traceback."""
    try:
        yield
    except BaseException as err:
        if not stop.at_once or isinstance(err, RunInterrupted):
            raise
        message = (
            f"stopped at once by a second Ctrl-C at step {run.step}; the checkpoint of step "
            f"{status.record['saved_step']} is kept. Continue with: ganlab train resume={run_dir}"
        )
        log_to_files(message)
        raise RunInterrupted(message, signum=signal.SIGINT) from None


# What gloo and NCCL say when the rank at the other end of a collective is gone (SIGKILL, out of memory, a node lost)
PEER_LOST = (
    "Connection reset by peer",
    "Connection closed by peer",
    "remote process exited",
    "NCCL communicator was aborted",
)


@contextlib.contextmanager
def lost_ranks_named(run: RunState, status: RunStatus, run_dir: Path) -> Iterator[None]:
    """A rank of a torchrun that dies leaves the others failing in their next collective with the backend's own
    text ("Read error ... Connection reset by peer ... GLHF!") and a traceback: say what happened and how to go
    on instead (exit 1, recorded as crashed)."""
    try:
        yield
    except RuntimeError as err:
        dist = current()
        if not dist.enabled or not any(marker in str(err) for marker in PEER_LOST):
            raise
        kept = f"the checkpoint of step {status.record['saved_step']}" if dist.is_main else "rank 0's last checkpoint"
        raise RunStopped(
            f"rank {dist.rank} lost another rank of this torchrun at step {run.step}: it died or was killed, and "
            f"its own output says why ({first_line(err)[:160]}). {kept[0].upper()}{kept[1:]} is kept. Continue "
            f"with: torchrun ... -m ganlab train resume={run_dir}"
        ) from None


def out_of_memory_message(err: Exception, batch_size: int, device: Any) -> str:
    return (
        f"out of memory on {device} with trainer.batch_size={batch_size}: try trainer.batch_size="
        f"{max(1, batch_size // 2)}, a smaller model, or trainer.eval_n / a smaller evaluation batch. "
        f"({first_line(err)})"
    )
