"""The training loop, top to bottom: build -> maybe resume -> steps -> final checkpoint.

Each step is the recipe of Goodfellow et al. (2014), Algorithm 1: `n_critic` discriminator updates on fresh
real and generated batches (G's output detached), then one generator update through a frozen D. The step
itself lives in ganlab/step.py (TrainStep, which also applies precision, torch.compile and DDP); this loop
around it logs, draws pictures, checkpoints, evaluates, and handles signals and divergence. The stabilisers
(ganlab/stabilizers/) come in where they act: the learning-rate schedules and the n_critic schedule at the top
of a step, augmentation inside D's view, R1/R2 inside the loss, gradient clipping before each optimizer step,
and the EMA of G after G's step. Under torchrun every rank runs this loop; rank 0 alone writes.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

import ganlab
from ganlab import samples
from ganlab.build import Components, build, seed_everything
from ganlab.checkpoint import (
    AUTO,
    BEST,
    CHECKPOINT_DIR,
    LAST,
    capture_rng,
    check_compatible,
    load_checkpoint,
    newest_good_checkpoint,
    resolve_checkpoint,
    restore_rng,
    save_checkpoint,
)
from ganlab.cuda_graphs import plain_optimizer_state, step_counts_to_device
from ganlab.data.base import close_source
from ganlab.distributed import any_rank, barrier, current, per_rank_batch, rank_seed
from ganlab.divergence import NanWatch, nonfinite_state
from ganlab.errors import ConfigError, RunInterrupted, RunStopped, first_line
from ganlab.evaluation import Evaluator, lower_is_better
from ganlab.logging import RunLogger, log_to_files, run_hparams
from ganlab.models.conditional import grid_labels
from ganlab.sampling import generate
from ganlab.signals import StopRequests
from ganlab.status import DIVERGED, RunStatus
from ganlab.step import TrainStep, match_state_layout

log = logging.getLogger("ganlab")
SCATTER_POINTS_PER_SAMPLE = 16  # 2-D pictures: trainer.num_samples x 16 points


def train(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> float | None:
    """Train (or continue) the run described by `cfg`, writing everything under `run_dir`.

    `overrides` are the command-line overrides that composed `cfg`; they are stored in the checkpoint so
    that `resume=` recomposes the same config. Returns the monitored metric of the final evaluation (for
    sweepers), or None when the run does not evaluate.
    """
    rank_batch = per_rank_batch(cfg.trainer.batch_size)  # the global batch: refused before building (caches are slow)
    seed_everything(cfg.seed)  # the same on every rank: the networks start identical
    parts = build(cfg)
    try:
        return run(cfg, Path(run_dir), overrides, parts, rank_batch)
    finally:  # a streaming source's workers stop here, timed, rather than at interpreter exit
        close_source(parts.data)


def run(cfg: DictConfig, run_dir: Path, overrides: Sequence[str], parts: Components, rank_batch: int) -> float | None:
    """train()'s loop over the built components."""
    config = OmegaConf.to_container(cfg, resolve=True)
    dist = current()  # under torchrun: this process's rank among world_size; rank 0 alone writes anything
    main = dist.is_main
    t = cfg.trainer
    G, D, data, device = parts.G, parts.D, parts.data, parts.device

    # Fixed noise (and, for 2-D data, fixed real points) from their own generator: drawing them leaves the
    # global RNG, which the training batches use, untouched.
    fixed = torch.Generator().manual_seed(cfg.seed)
    is_points = len(data.shape) == 1
    n_fixed = t.num_samples * (SCATTER_POINTS_PER_SAMPLE if is_points else 1)
    K = parts.num_classes
    grid_columns = None
    if K:  # a conditional grid: one row per class, as many columns as num_samples allows
        grid_columns = max(1, t.num_samples // K)
        n_fixed = K * grid_columns
    fixed_labels = grid_labels(n_fixed, grid_columns, K, device) if K else None
    fixed_noise = torch.randn(n_fixed, parts.z_dim, generator=fixed).to(device)
    G_eval = parts.G_eval  # what pictures and evaluations draw from: the EMA of G when trainer.ema is set
    real_points = _draw_without_rng(data, n_fixed) if is_points else None
    evaluates = t.eval_every is not None or t.monitor is not None  # every rank knows the evaluation steps
    evaluator, monitor = make_evaluator(cfg, parts) if main else (None, None)  # rank 0 evaluates
    # How best.pt's value is measured: a best measured with other settings (n, features) is not comparable.
    eval_settings = (
        {"metric": monitor, "features": evaluator.features, "n": evaluator.n, "seed": cfg.seed} if evaluator else None
    )
    last_metrics: dict[str, float] = {}
    evaluated_step = 0  # the last step whose evaluation is done (a stop or crash may skip one: redone on resume)
    rollbacks = 0  # times trainer.on_nan=rollback went back to the last checkpoint, each lowering the rates
    d_updates = 0  # D steps so far: lazy R1/R2 acts on every loss.reg_every-th
    scalers = None  # the GradScalers' state under trainer.precision=16

    def is_eval_step(s: int) -> bool:
        return evaluates and (s == t.steps or (t.eval_every is not None and s % t.eval_every == 0))

    step = 0
    found = find_checkpoint(cfg.resume, run_dir / CHECKPOINT_DIR) if cfg.resume else None
    if found:
        path, state = found  # loaded on the CPU: load_state_dict copies onto the device; RNG states stay CPU
        check_compatible(state["config"], config, path)
        step = load_training_state(state, parts)
        fixed_noise = state["fixed_noise"].to(device)
        last_metrics = dict(state.get("metrics") or {})
        evaluated_step = int(state.get("evaluated_step", 0))
        rollbacks = int(state.get("rollbacks", 0))
        d_updates = int(state.get("d_updates", 0))
        scalers = state.get("scalers")
        scale_learning_rates(parts, t.rollback_lr_factor**rollbacks)  # the config's rates, lowered as before
        restore_rng(state["rng"])  # last: nothing may draw random numbers between here and the first step
        if main:
            log.info("resumed %s at step %d", path, step)
    if dist.enabled:  # each rank its own batches (a checkpoint holds rank 0's RNG state, whatever the world size)
        torch.manual_seed(rank_seed(cfg.seed, dist.rank, step))
    watch = NanWatch(device, step)
    # One G step with its D steps, through DDP / torch.compile / autocast as trainer.* asks (ganlab/step.py).
    # Built before anything is written: it refuses what this device cannot do (precision=16 on a CPU, ...).
    stepper = TrainStep(parts, t, rank_batch, watch)
    stepper.d_updates = d_updates
    stepper.load_scaler_state(scalers)
    pending_eval = step > 0 and is_eval_step(step) and evaluated_step != step
    if step >= t.steps and not pending_eval:
        log.info("the run is already at step %d of %d: raise trainer.steps to extend it", step, t.steps)
        return last_metrics.get(monitor) if monitor else None

    samples_dir = run_dir / "samples"
    ckpt_dir = run_dir / CHECKPOINT_DIR
    best = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        samples_dir.mkdir(exist_ok=True)
        for stale in ckpt_dir.glob(".*.tmp-*"):  # the temp file of a write that a kill interrupted
            stale.unlink(missing_ok=True)
        best = saved_best(ckpt_dir / BEST, eval_settings)  # the record of the best.pt this run directory holds
    logger: Any = (
        RunLogger(run_dir, start_step=step, total_steps=t.steps, purge_step=step + 1 if step else None)
        if main
        else Silent()
    )
    logger.print_config(cfg)

    def state_now(at_step: int) -> dict[str, Any]:
        return {
            **training_state(parts, at_step, fixed_noise, config, list(overrides)),
            "num_classes": K,
            "metrics": last_metrics,
            "evaluated_step": evaluated_step,
            "best": best,
            "rollbacks": rollbacks,
            "d_updates": stepper.d_updates,
            "scalers": stepper.scaler_state(),
        }

    def evaluate(at_step: int) -> None:
        nonlocal last_metrics, evaluated_step, best
        # The same latents every time (seeded by cfg.seed): the curve shows G changing, not the noise.
        last_metrics = evaluator(G_eval, parts.z_dim, seed=cfg.seed).metrics
        evaluated_step = at_step
        logger.scalars(at_step, {f"metrics/{name}": value for name, value in last_metrics.items()})
        logger.note(f"eval at step {at_step}: " + " ".join(f"{k} {v:.4g}" for k, v in last_metrics.items()))
        value = last_metrics[monitor]
        if best is None or is_better(monitor, value, best["value"]):
            best = {**eval_settings, "value": value, "step": at_step}
            save_or_stop(state_now(at_step), ckpt_dir / BEST)

    def checkpoint(at_step: int, keep: bool) -> None:
        state = state_now(at_step)
        save_or_stop(state, ckpt_dir / LAST)
        rolling = bool(t.keep_last) and at_step % t.checkpoint_every == 0
        if keep or rolling:
            save_or_stop(state, ckpt_dir / f"step_{at_step:07d}.pt")
        if t.keep_last:
            prune_rolling_checkpoints(ckpt_dir, t.keep_last, t.keep_every)

    def roll_back(problems: list[str], at_step: int) -> int:
        """Go back to the last good checkpoint with lower learning rates; returns its step."""
        nonlocal rollbacks, last_metrics, evaluated_step, tick, tick_d_updates
        rollbacks += 1
        barrier()  # every rank reads the file that rank 0 wrote
        state = load_checkpoint(ckpt_dir / LAST)
        back_to = load_training_state(state, parts)  # keeps the current (already lowered) rates
        scale_learning_rates(parts, t.rollback_lr_factor)
        last_metrics, evaluated_step = dict(state.get("metrics") or {}), int(state.get("evaluated_step", 0))
        stepper.d_updates = int(state.get("d_updates", 0))
        stepper.restart_graphs()  # the optimizers hold new state tensors: captured graphs would use the old
        restore_rng(state["rng"])
        if dist.enabled:
            torch.manual_seed(rank_seed(cfg.seed, dist.rank, back_to) + rollbacks)  # not the batches that failed
        watch.reset(back_to)
        stepper.meter.reset()
        logger.rewind(back_to)  # the steps after the checkpoint will be logged again
        tick, tick_d_updates = time.perf_counter(), stepper.d_updates
        message = (
            f"training diverged at step {at_step} ({', '.join(problems[:4])} not finite); rolled back to step "
            f"{back_to} of {ckpt_dir / LAST} with learning rates x{t.rollback_lr_factor} "
            f"(rollback {rollbacks} of at most {t.max_rollbacks})"
        )
        logger.note(message)
        return back_to

    tick, tick_d_updates = time.perf_counter(), d_updates
    run_status: Any = (
        RunStatus(run_dir, t.steps, monitor, list(overrides), step=step) if main else Silent()
    )  # status.json, for ganlab report
    with StopRequests() as stop, logger, run_status:
        if pending_eval and main:  # the checkpoint's own step was due an evaluation that a stop or crash cut off
            evaluate(step)
            save_or_stop(state_now(step), ckpt_dir / LAST)
        while step < t.steps:
            step += 1
            stepper(step)

            # Read once: a signal from here on waits for the next step. torchrun passes a SIGTERM to every rank,
            # but not at the same step: the ranks stop together when any of them has one.
            stopping = any_rank(stop.signum is not None)
            last = step == t.steps or stopping
            log_now = step % t.log_every == 0 or last
            keep_now = bool(t.keep_every) and step % t.keep_every == 0
            save_now = step % t.checkpoint_every == 0 or last or keep_now
            sample_now = step % t.sample_every == 0 or last
            eval_now = is_eval_step(step) and not stopping  # a stop skips it; resume does it first
            problems: list[str] = []
            first_bad = 0
            if log_now or save_now or eval_now:  # reading values syncs with the device: only when needed
                values = stepper.meter.means()  # each stat's mean since the last log step
                first_bad = watch.first_bad_step()  # the step where a loss first went bad, maybe before this one
                if first_bad:
                    problems = [f"{k} = {v}" for k, v in values.items() if not math.isfinite(v)] or ["a loss"]
            if sample_now or save_now or eval_now:
                fixed_samples = generate(G_eval, fixed_noise, fixed_labels)
            if (save_now or eval_now) and not problems:  # what would be saved or judged, and G's output
                problems = nonfinite_state(G, D, fixed_samples, parts.ema.model if parts.ema else None)
            if dist.enabled and (log_now or save_now or eval_now) and any_rank(bool(problems)) and not problems:
                problems = ["a loss of another process"]  # every rank rolls back or stops, not just one
            if problems:
                if t.on_nan == "rollback" and rollbacks < t.max_rollbacks and (ckpt_dir / LAST).is_file():
                    step = roll_back(problems, first_bad or step)
                    continue
                run_status.expect(DIVERGED)  # the RunStopped raised next means divergence, not a failed write
                stop_diverged(problems, first_bad or step, ckpt_dir, rollbacks)
            if log_now:
                now = time.perf_counter()
                values["lr/G"] = parts.lr_g.current[0]  # host copies: a captured optimizer's rate is a tensor
                values["lr/D"] = parts.lr_d.current[0]
                # real images through D per second: the data rate, comparable across n_critic settings
                values["perf/images_per_s"] = (
                    t.batch_size * (stepper.d_updates - tick_d_updates) / max(now - tick, 1e-9)
                )
                tick, tick_d_updates = now, stepper.d_updates
                stepper.meter.reset()
                logger.scalars(step, values)
                logger.report(step, values)
                run_status.update(step)  # the heartbeat, and how far a run that dies later got
            if sample_now and main:
                picture = samples.render(fixed_samples, real_points, ncol=grid_columns)
                logger.image(step, "samples", picture)
                samples.save_png(picture, samples_dir / f"step_{step:07d}.png")
            if save_now and main:  # before evaluating: an evaluation that fails must not cost the checkpoint
                checkpoint(step, keep=keep_now)
                run_status.update(step, saved_step=step)
            if eval_now and main:
                evaluate(step)
                if save_now:
                    save_or_stop(state_now(step), ckpt_dir / LAST)  # now recording the evaluation too
            if stopping:
                message = (
                    f"stopped by {stop.name} at step {step} of {t.steps}; checkpoint saved. "
                    f"Continue with: ganlab train resume={run_dir}"
                )
                log_to_files(message)  # the CLI prints it on stderr
                raise RunInterrupted(message, signum=stop.signum or signal.SIGTERM)  # another rank's signal
        # HParams tab: this run's settings; its metrics are the scalars already logged here.
        logger.hparams(run_hparams(cfg, overrides))
    return last_metrics.get(monitor) if monitor else None


class Silent:
    """The logger and the status file of ranks other than 0: every call does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


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


def make_evaluator(cfg: DictConfig, parts: Components) -> tuple[Evaluator | None, str | None]:
    """The evaluator and the monitored metric's name, when the run evaluates (trainer.eval_every or
    trainer.monitor set); (None, None) otherwise. Building it leaves the training RNG untouched."""
    t = cfg.trainer
    if t.eval_every is None and t.monitor is None:
        return None, None
    if t.eval_every is not None and t.eval_every < 1:
        raise ConfigError(f"trainer.eval_every must be >= 1 or null, got {t.eval_every}.")
    evaluator = Evaluator(
        parts.data,
        cfg.data,
        t.eval_features,
        t.eval_n,
        parts.device,
        option_prefix="trainer.eval_",
        num_classes=parts.num_classes,
    )
    monitor = t.monitor or evaluator.primary
    if monitor not in evaluator.names():
        raise ConfigError(
            f"trainer.monitor={monitor} is not computed for this data; choose one of {', '.join(evaluator.names())}."
        )
    return evaluator, monitor


def saved_best(path: Path, settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record of an existing best.pt if it was measured with `settings` (metric, features, n, seed);
    None otherwise, so that the next evaluation writes a best.pt of its own."""
    if settings is None or not path.is_file():
        return None
    record = load_checkpoint(path, mmap=True).get("best") or {}
    if all(record.get(key) == value for key, value in settings.items()):
        return record
    log.info("%s was measured with other settings (%s); the best starts afresh", path, record)
    return None


def is_better(metric: str, value: float, than: float) -> bool:
    return value < than if lower_is_better(metric) else value > than


def stop_diverged(bad: list[str], step: int, ckpt_dir: Path, rollbacks: int = 0) -> None:
    """Stop a diverged run before it overwrites the last good checkpoint with NaNs; `bad` names what broke."""
    last = ckpt_dir / LAST
    kept = (
        f"The last checkpoint, {last} (step {load_checkpoint(last)['step']}), is kept."
        if last.is_file()
        else "No checkpoint had been written yet."
    )
    message = (
        f"training diverged at step {step}: {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} not finite. "
        f"{kept} Lower the learning rates, try trainer.on_nan=rollback, or a steadier loss such as loss=wgan_gp "
        "or loss=hinge." + (f" It had already been rolled back {rollbacks} time(s)." if rollbacks else "")
    )
    log_to_files(message)  # the CLI prints it on stderr
    raise RunStopped(message)


def _draw_without_rng(data: Any, n: int) -> torch.Tensor:
    """Real points for pictures, drawn without moving the global RNG that training batches use."""
    state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        return data.sample(n).cpu()
    finally:
        torch.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)


def training_state(
    parts: Components, step: int, fixed_noise: torch.Tensor, config: Any, overrides: list[str]
) -> dict[str, Any]:
    return {
        "ganlab_version": ganlab.__version__,
        "step": step,
        "data_shape": list(parts.data.shape),  # lets `ganlab sample` rebuild G without loading the data
        "G": parts.G.state_dict(),
        "G_ema": parts.ema.model.state_dict() if parts.ema is not None else None,
        "D": parts.D.state_dict(),
        "opt_G": plain_optimizer_state(parts.opt_g),
        "opt_D": plain_optimizer_state(parts.opt_d),
        "fixed_noise": fixed_noise.cpu(),
        "rng": capture_rng(),
        "config": config,
        "overrides": overrides,
    }


def load_training_state(state: dict[str, Any], parts: Components) -> int:
    parts.G.load_state_dict(state["G"])
    parts.D.load_state_dict(state["D"])
    if parts.ema is not None:  # a run that turns trainer.ema on at resume starts its average from G
        parts.ema.model.load_state_dict(state["G_ema"] if state.get("G_ema") is not None else state["G"])
    load_optimizer_state(parts.opt_g, state["opt_G"])
    load_optimizer_state(parts.opt_d, state["opt_D"])
    return int(state["step"])


def save_or_stop(state: dict[str, Any], path: Path) -> None:
    """A checkpoint that cannot be written (disk full, folder gone) stops the run; the atomic write leaves the
    previous file at `path` intact."""
    try:
        save_checkpoint(state, path)
    except OSError as err:
        message = (
            f"could not write the checkpoint {path} at step {state['step']} ({err.strerror or err}); the previous "
            "checkpoint there is intact. Free some space, then continue with resume=."
        )
        log_to_files(message)
        raise RunStopped(message) from err


def out_of_memory_message(err: Exception, batch_size: int, device: Any) -> str:
    return (
        f"out of memory on {device} with trainer.batch_size={batch_size}: try trainer.batch_size="
        f"{max(1, batch_size // 2)}, a smaller model, or trainer.eval_n / a smaller evaluation batch. "
        f"({first_line(err)})"
    )


def scale_learning_rates(parts: Components, factor: float) -> None:
    """Lower both base rates (a rollback after NaNs); the schedules apply them from the next step on."""
    for schedule in (parts.lr_g, parts.lr_d):
        schedule.scale(factor)


def prune_rolling_checkpoints(ckpt_dir: Path, keep_last: int, keep_every: int | None) -> None:
    """Keep the newest `keep_last` step_XXXXXXX.pt files; milestones of trainer.keep_every stay for good."""
    rolling = sorted(
        p
        for p in ckpt_dir.glob("step_*.pt")
        if p.stem[5:].isdigit() and not (keep_every and int(p.stem[5:]) % keep_every == 0)
    )
    for old in rolling[:-keep_last]:
        old.unlink(missing_ok=True)


def load_optimizer_state(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Restore the optimizer's state (moments, step counts) but keep the hyperparameters of the config:
    `resume=... optimizer.lr_d=1e-5` must lower the rate, not be silently undone by the checkpoint."""
    configured = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
    opt.load_state_dict(saved)
    for group, hyper in zip(opt.param_groups, configured, strict=True):
        group.update(hyper)
    step_counts_to_device(opt)
    match_state_layout(opt)
