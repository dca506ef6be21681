"""What ganlab adds to Hydra's launcher and sweeper plugins (`pip install "ganlab[sweep]"`, `"ganlab[slurm]"`).

- A readable message, before anything runs, when a launcher or sweeper that the command names is not installed.
- `trainer.device='${job_gpu:N}'`: one GPU per parallel job of a sweep.
- Under submitit, SIGUSR2 (the time limit is near, or a pre-emption) first stops training at a step boundary
  with a checkpoint, and only then lets submitit requeue the job; submitit alone would exit mid-step.
- A sweep re-run with `resume=auto` continues job N only from a checkpoint that job N wrote.
- Jobs that run in another process (joblib, submitit) hand their failure back to the main process as JobFailed.
- joblib's worker processes survive a Ctrl-C or SIGTERM and stop their jobs with a checkpoint (ganlab/jobs/signals.py).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from ganlab.errors import ConfigError
from ganlab.jobs.signals import catch_stops_in_worker, inside_training_loop
from ganlab.models.stylegan2_auto import auto_setting
from ganlab.overrides import last_value, override_key, split_override

log = logging.getLogger("ganlab")

_SWEEP = ("sweep", "hydra_plugins.hydra_optuna_sweeper")
# (override key, value or value prefix) -> (extra, plugin module)
PLUGINS: dict[tuple[str, str], tuple[str, str]] = {
    ("hydra/launcher", "joblib"): ("sweep", "hydra_plugins.hydra_joblib_launcher"),
    ("hydra/launcher", "submitit_"): ("slurm", "hydra_plugins.hydra_submitit_launcher"),
    ("hydra/launcher", "slurm"): ("slurm", "hydra_plugins.hydra_submitit_launcher"),
    ("hydra/sweeper", "optuna"): _SWEEP,
    ("hparams_search", ""): _SWEEP,  # every preset of conf/hparams_search/ is an Optuna search
}
# Overrides that may differ between a sweep and its re-run with resume=auto (extending it: trainer.steps).
RERUN_KEYS = ("resume", "trainer.steps")


def check_plugins(args: list[str]) -> None:
    """Refuse, with the install command, a launcher or sweeper whose Hydra plugin is missing (Hydra itself would
    only say that the config option does not exist)."""
    for arg in args:
        key, value = split_override(arg)
        value = value or ""
        for (group, prefix), (extra, module) in PLUGINS.items():
            missing = key == group and value.startswith(prefix) and value != "null" and not _installed(module)
            if missing:
                raise ConfigError(f'{arg} needs a Hydra plugin that is not installed: pip install "ganlab[{extra}]".')


def check_joblib_jobs(args: list[str]) -> None:
    """joblib's n_jobs: N parallel jobs, -1 one per CPU, -2 all but one, ...; 0 means nothing, and joblib says so
    with a traceback once Hydra has set the sweep up."""
    value = last_value(args, "hydra.launcher.n_jobs")
    if value is not None and value.strip() in ("0", "+0", "-0"):
        raise ConfigError(
            "hydra.launcher.n_jobs=0 runs no job: give the number of jobs to run at once (e.g. 2), or -1 for one "
            "per CPU."
        )


def check_slurm_is_here(args: list[str]) -> None:
    """hydra/launcher=slurm on a machine without SLURM: submitit would fail with a traceback ("Could not detect
    srun") after Hydra has set the sweep up. Printing the config (--cfg, --info) needs no SLURM."""
    wants_slurm = any(
        split_override(a) in (("hydra/launcher", "slurm"), ("hydra/launcher", "submitit_slurm")) for a in args
    )
    if wants_slurm and not {"--cfg", "-c", "--info"} & set(args) and shutil.which("srun") is None:
        raise ConfigError(
            "hydra/launcher=slurm submits the jobs to SLURM, but this machine has no srun on its PATH: run the "
            "command on a login node of the cluster, or use hydra/launcher=joblib to run the jobs here."
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # no hydra_plugins package at all: no plugin was ever installed
        return False


def job_gpu(count: int | None = None) -> str:
    """`${job_gpu:N}` -> `cuda:<this job's number mod N>` (N: the visible GPUs when left out). The jobs of a batch
    of N consecutive numbers get a GPU each: joblib's n_jobs=N with hydra.sweeper.max_batch_size=N, or Optuna's
    n_jobs=N (it launches its trials in batches of n_jobs)."""
    if count is None:
        import torch  # only where a config asks for ${job_gpu}

        count = torch.cuda.device_count()
    if not count:
        return "cuda"  # build.resolve_device says that there is none
    num = OmegaConf.select(HydraConfig.get(), "job.num", default=0) or 0  # a single run has no job number
    return f"cuda:{int(num) % int(count)}"


def paired_input_channels(*, _root_: Any) -> int | None:
    """`${paired_input_channels:}`, model=unet's default in_channels: the channels of the images data=paired_folder
    gives G as its input (data.channels_a, or data.channels_b with data.direction=BtoA); null for other data, where
    the generator takes those of its output."""
    data = _root_.get("data")
    if data is None or "channels_a" not in data or "channels_b" not in data:
        return None
    return data.channels_b if data.get("direction") == "BtoA" else data.channels_a


def register_resolvers() -> None:
    """In every process that composes or resolves a config: the main one and each launcher's job processes."""
    if not OmegaConf.has_resolver("paired_input_channels"):
        OmegaConf.register_new_resolver("paired_input_channels", paired_input_channels)
    if not OmegaConf.has_resolver("job_gpu"):
        OmegaConf.register_new_resolver("job_gpu", job_gpu)
    if not OmegaConf.has_resolver("stylegan2_auto"):  # experiment=stylegan2_folder's settings by resolution
        OmegaConf.register_new_resolver("stylegan2_auto", auto_setting)


class JobFailed(Exception):
    """A job that ran in another process (joblib, submitit) failed with a user mistake, a divergence or a stop.
    Raised there, so that Hydra hands it to the main process, which prints it as one message (exit_code)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message, exit_code)  # both in args: the exception pickles across processes
        self.message, self.exit_code = message, exit_code

    def __str__(self) -> str:
        return self.message


def runs_in_process(hydra_cfg: Any) -> bool:
    """A single run, or a sweep whose jobs Hydra's basic launcher runs one after another in this process."""
    return hydra_cfg.mode != RunMode.MULTIRUN or str(hydra_cfg.launcher._target_).endswith(".BasicLauncher")


def check_same_job(run_dir: Path, overrides: list[str]) -> None:
    """A sweep re-run with resume=auto continues job N from `<sweep dir>/N/checkpoints`. That checkpoint must
    come from the same job: a changed sweep command, or an Optuna study that drew other values for trial N,
    must not pick up another job's weights and train them on as if they were its own."""
    from ganlab.checkpoint import CHECKPOINT_DIR, LAST, load_checkpoint  # torch: only once a job runs

    last = Path(run_dir) / CHECKPOINT_DIR / LAST
    if not last.is_file():
        return
    try:
        stored = load_checkpoint(last, mmap=True).get("overrides", [])
    except ConfigError:
        return  # unreadable: train()'s resume=auto skips it with a warning
    before, now = _job_identity(stored), _job_identity(overrides)
    if before != now:
        differ = ", ".join(sorted(before ^ now))
        raise ConfigError(
            f"resume=auto: {run_dir} holds a checkpoint of another job (overrides that differ: {differ}). "
            "Re-run a sweep with the command that started it, or give a new hydra.sweep.dir."
        )


def _job_identity(overrides: list[str]) -> set[str]:
    keys = {override_key(o): o for o in overrides}
    return {o for k, o in keys.items() if k not in RERUN_KEYS and not k.startswith("hydra")}


class _OptunaFailureNotes(logging.Filter):
    """The Optuna sweeper's lines for a trial whose run failed in this process: the job hands back None, and the
    sweeper said "Failed experiment: Return value must be float-castable. Got 'None'" (as if ganlab returned the
    wrong thing), then "Failed [ValueError(...)] times out of 1". ganlab prints each run's own failure at the end."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message == "Failed experiment: Return value must be float-castable. Got 'None'.":
            record.msg, record.args = "Failed experiment: its run failed (why: printed at the end)", ()
        return not (message.startswith("Failed [") and "float-castable. Got 'None'" in message)


@contextlib.contextmanager
def optuna_failures_said_plainly() -> Iterator[None]:
    logger, notes = logging.getLogger("hydra_plugins.hydra_optuna_sweeper._impl"), _OptunaFailureNotes()
    logger.addFilter(notes)
    try:
        yield
    finally:
        logger.removeFilter(notes)


def runs_under_submitit(hydra_cfg: Any) -> bool:
    return "submitit" in str(hydra_cfg.launcher.get("_target_", ""))


class SubmititRequeue:
    """Context manager around a job under submitit. submitit handles SIGUSR2 by requeuing the job and exiting at
    once, in the middle of a step. While ganlab trains, SIGUSR2 becomes ganlab's own stop instead (a checkpoint
    at the step boundary, as for SIGTERM); `requeue()` then calls submitit's handler."""

    def __init__(self) -> None:
        self.submitit_handler = signal.getsignal(signal.SIGUSR2)
        self.requested = False

    def __enter__(self) -> SubmititRequeue:
        if callable(self.submitit_handler) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR2, self._handle)
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if callable(self.submitit_handler) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR2, self.submitit_handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if inside_training_loop(signal.SIGTERM):
            self.requested = True
            signal.getsignal(signal.SIGTERM)(signum, frame)  # type: ignore[operator]  # stop at the next step, by SIGUSR2
        else:  # building or already past the loop: nothing newer to save than what is on disk
            self.submitit_handler(signum, frame)  # type: ignore[operator]

    def requeue(self, resume: str | None) -> None:
        """After training stopped on SIGUSR2: let submitit requeue the job (it exits the process). Only with
        resume=auto, which makes the requeued job continue from the checkpoint instead of starting over."""
        if resume != "auto":
            log.warning("not requeued: add resume=auto to the command so that a requeued job continues")
            return
        self.submitit_handler(signal.SIGUSR2, None)  # type: ignore[operator]


@contextlib.contextmanager
def workers_that_catch_stops(sweep: str) -> Iterator[None]:
    """While a sweep runs: joblib's process pool (loky) starts each worker with catch_stops_in_worker, so that
    even a worker that has no job yet outlives a signal (Hydra's joblib launcher offers no initializer). The
    sweep's name in the initializer's arguments makes loky start new workers for each sweep."""
    try:
        from joblib import parallel
        from joblib._parallel_backends import LokyBackend
    except ImportError:  # no joblib launcher installed: nothing to prepare
        yield
        return
    original = parallel.BACKENDS["loky"]
    parallel.BACKENDS["loky"] = functools.partial(LokyBackend, initializer=catch_stops_in_worker, initargs=(sweep,))
    try:
        yield
    finally:
        parallel.BACKENDS["loky"] = original


def release_cuda_cache() -> None:
    """A joblib worker runs job after job, maybe on another GPU each time: give back the memory that torch's
    caching allocator still holds on the last one."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
