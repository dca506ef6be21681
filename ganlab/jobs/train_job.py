"""The Hydra job around `train()`, and launching it: one run, or a sweep of them (see ganlab/jobs/__init__.py).

Every way a job can end becomes an exit code and one message: a user's mistake (ConfigError, a composition
error) 2, a diverged run or a full disk 1, a stop by a signal 128 + signal; anything else is a bug and keeps its
traceback. The failures of jobs run in this process are collected in `FAILURES` and reported by `launch` after
Hydra returns: raising them through Hydra would make it print its own "Error executing job" banner first, and
would end a sweep whose other jobs may be fine.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import shlex
import shutil
import signal
import sys
from concurrent.futures import BrokenExecutor
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from ganlab.atomic_write import SPACE_ERRNOS, full_disk_error
from ganlab.config import CONF_DIR, CONFIG_NAME
from ganlab.errors import (
    ConfigError,
    RunDirInUse,
    RunInterrupted,
    RunStopped,
    is_rank_zero,
    message_prefix,
    out_of_memory,
)
from ganlab.jobs.existing_runs import check_new_run, check_new_run_dir, job_records_kept, named_folder
from ganlab.jobs.launchers import (
    JobFailed,
    SubmititRequeue,
    check_same_job,
    optuna_failures_said_plainly,
    register_resolvers,
    release_cuda_cache,
    runs_in_process,
    runs_under_submitit,
    workers_that_catch_stops,
)
from ganlab.jobs.run_lock import LOCK_FILE, hold_run_dir
from ganlab.jobs.signals import SweepStops, note_stop, pending_stop
from ganlab.overrides import is_multirun, last_value
from ganlab.unknown_keys import rewrite_hydra_message

# torch (and so ganlab.checkpoint, ganlab.distributed, ganlab.train) is imported only once composition succeeded:
# a mistyped override is answered in a second, not after torch's start-up.

SWEEP_STOPPED = (
    "each running job saved a checkpoint. Re-run the same command with resume=auto hydra.sweep.dir={dir}: "
    "stopped jobs continue, finished ones are skipped, unstarted ones start."
)
SWEEP_DIR_KEY = "hydra.sweep.dir"
SWEEP_DIR_PATTERN = "outputs/multirun/%Y-%m-%d/%H-%M-%S"  # conf/train.yaml's hydra.sweep.dir (a test holds them equal)
NO_TRIAL_FINISHED = "No trials are completed yet."  # optuna's study.best_trial, which the sweeper reads at the end
FAILURES: list[tuple[int, str, str | None]] = []  # (exit code, message, job number) of this process's failed jobs


def launch(args: list[str], resume: str | None) -> int:
    """Run `ganlab train <args>` (already rewritten for resume= and torchrun) and return its exit code, having
    printed what failed. `resume`: the user's own resume= value. Mistakes found before a job starts (ConfigError,
    HydraException) and unwritable run directories (OSError) are raised for the CLI to report."""
    sys.argv = ["ganlab train", *args]
    FAILURES.clear()
    sweep_stops = SweepStops()
    sweep_dir = None
    if is_multirun(args):  # each job says its own run directory as it starts; the sweep's is said at the end
        check_new_run(args, multirun=True)
        args, sweep_dir = pin_sweep_dir(args)
        sys.argv = ["ganlab train", *args]
    continued = named_folder(args, SWEEP_DIR_KEY) if sweep_dir is not None and resume == "auto" else None
    try:
        with job_records_kept(continued):
            code = run_or_sweep(args, resume, sweep_stops, sweep_dir)
    finally:
        remove_unstarted_sweep(sweep_dir)
    if sweep_dir is not None and Path(sweep_dir).is_dir() and not sweep_stops.signum:
        print(f"{message_prefix()}: sweep directory: {sweep_dir} (compare its runs: ganlab report {sweep_dir})")
    return code


def run_or_sweep(args: list[str], resume: str | None, sweep_stops: SweepStops, sweep_dir: str | None) -> int:
    try:
        if is_multirun(args):
            with sweep_stops, workers_that_catch_stops(sweep_stops.token), optuna_failures_said_plainly():
                try:
                    train_job()
                except ValueError as err:  # Optuna asked for the best of no finished trial
                    if str(err) != NO_TRIAL_FINISHED or not FAILURES:
                        raise
                    FAILURES.insert(0, (1, "error: no trial of the search finished, so it has no best settings:", None))
            if sweep_stops.signum:
                raise RunInterrupted("", sweep_stops.signum)  # every job ended without failing, or before starting
        else:
            with hold_named_run_dir(args, None if resume == "auto" else resume):
                check_new_run(args, multirun=False)  # once held: a run still going there is named as such
                train_job()
    except (RunInterrupted, JobFailed, BrokenExecutor) as err:
        # A stopped sweep: the jobs' own messages say where each stopped; this says how to go on. (BrokenExecutor:
        # a signal in the moment after joblib started its workers, before their handlers were set, killed them
        # and joblib gave up the pool; no job had begun training yet.)
        if sweep_stops.signum:
            stopped = SWEEP_STOPPED.format(dir=shlex.quote(str(sweep_dir)))
            print(f"{message_prefix()}: sweep stopped by {sweep_stops.name}: {stopped}", file=sys.stderr)
            return 128 + sweep_stops.signum
        if isinstance(err, BrokenExecutor):
            raise
        print(f"{message_prefix()}: {err}", file=sys.stderr)
        return err.exit_code
    if FAILURES:
        print("\n".join(f"{message_prefix()}: {m}" for m in failure_lines(FAILURES)), file=sys.stderr)
        return max(code for code, _, _ in FAILURES)
    return 0


def pin_sweep_dir(args: list[str]) -> tuple[list[str], str]:
    """The sweep's directory, fixed before Hydra starts, so that ganlab can say where it is (at the start, and in
    the message of a stopped sweep, which is re-run with it): the one given, else conf/train.yaml's pattern
    filled in now."""
    given = last_value(args, SWEEP_DIR_KEY)
    if given is not None:
        return args, given
    folder = datetime.datetime.now().strftime(SWEEP_DIR_PATTERN)
    return [*args, f"{SWEEP_DIR_KEY}={folder}"], folder


@hydra.main(config_path=str(CONF_DIR), config_name=CONFIG_NAME, version_base="1.3")
def train_job(cfg: DictConfig) -> float | None:
    from ganlab.run_log import quiet_full_disk_in_log_files
    from ganlab.train import train  # torch loads only once composition succeeded

    register_resolvers()  # this may be a launcher's job process (joblib, submitit), not the one main() ran in
    quiet_full_disk_in_log_files()  # the handlers Hydra has just set up for this job
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    in_process = runs_in_process(hydra_cfg)
    requeue = SubmititRequeue() if runs_under_submitit(hydra_cfg) else None
    lock = contextlib.ExitStack()  # released in `finally`: held while a refused run's directory is removed
    try:
        stopped_by = pending_stop()
        if stopped_by:  # the sweep was stopped: later jobs do not start (a re-run with resume=auto starts them)
            raise RunInterrupted(f"not started: the sweep was stopped by {signal.Signals(stopped_by).name}", stopped_by)
        if is_rank_zero():  # under torchrun rank 0 alone writes, so it alone holds the directory
            resume = cfg.resume if cfg.resume not in (None, "auto") else None
            lock.enter_context(hold_run_dir(run_dir, resume=resume))
        if cfg.resume is None:  # a time-stamped folder taken twice in one second, a sweep job's folder
            check_new_run_dir(run_dir, "hydra.sweep.dir" if hydra_cfg.mode == RunMode.MULTIRUN else "hydra.run.dir")
        with requeue or contextlib.nullcontext():
            if cfg.resume == "auto" and hydra_cfg.mode == RunMode.MULTIRUN:
                check_same_job(run_dir, overrides)
            try:
                return train(cfg, run_dir, overrides=overrides)
            except RunInterrupted:
                if requeue is not None and requeue.requested:
                    requeue.requeue(cfg.resume)  # submitit requeues the job and exits; returns without resume=auto
                raise
    except RunInterrupted as err:
        if in_process:
            raise  # not an Exception: it ends the sweep at once, as Ctrl-C would
        # In a worker: handed back as an Exception, which joblib collects like a result. A BaseException would
        # make joblib abort the pool and kill the other workers in the middle of their own checkpoints.
        note_stop(err.signum)
        remove_if_untouched(run_dir)
        raise JobFailed(str(err), err.exit_code) from None
    except KeyboardInterrupt:  # Ctrl-C before the loop began: the CLI says so; no folder of Hydra's files is left
        remove_if_untouched(run_dir)
        raise
    except RunDirInUse as err:  # the directory is the other run's: leave it as it is
        job_failed(2, f"error: {err}", in_process)
    except (ConfigError, HydraException) as err:
        remove_if_untouched(run_dir)
        job_failed(2, f"error: {hydra_message(err)}", in_process)
    except InterpolationResolutionError as err:  # a resolver's ConfigError, wrapped by OmegaConf
        mistake = wrapped_config_error(err)
        if mistake is None:
            raise
        remove_if_untouched(run_dir)
        job_failed(2, f"error: {mistake}", in_process)
    except RunStopped as err:
        job_failed(err.exit_code, str(err), in_process)
    except OSError as err:
        if err.errno not in SPACE_ERRNOS:
            raise
        # A full disk, from a writer other than the checkpoint's (which raises RunStopped): the same exit code.
        job_failed(1, full_disk_message(err, run_dir), in_process)
    except Exception as err:
        if not out_of_memory(err):
            raise
        from ganlab.train import out_of_memory_message

        message = out_of_memory_message(err, cfg.trainer.batch_size, cfg.trainer.device)
        job_failed(2, f"error: {message}", in_process)
    finally:
        lock.close()
        release_cuda_cache()
    return None


def full_disk_message(err: OSError, run_dir: Path) -> str:
    """What to say when a run stops on a full disk: the file, the folder's free space, and how to go on."""
    from ganlab.checkpoint import CHECKPOINT_DIR, LAST

    if err.filename is None:  # a writer that does not go through ganlab's (Hydra's logs, config.yaml)
        err = full_disk_error(err, run_dir / "config.yaml") or err
        what = f"in {run_dir}"
    else:
        what = str(err.filename)
    has_checkpoint = (run_dir / CHECKPOINT_DIR / LAST).is_file()
    then = f"continue with: ganlab train resume={run_dir}" if has_checkpoint else "run it again"
    return f"could not write {what} ({err.strerror}). Free some space, then {then}."


def job_failed(exit_code: int, message: str, in_process: bool) -> None:
    """Remember a failed job for main(), which reports it after Hydra returns. A job in another process (joblib,
    submitit) raises instead: its exception is what Hydra hands back to this process."""
    if not in_process:
        raise JobFailed(message, exit_code)
    hydra_cfg = HydraConfig.get()
    FAILURES.append((exit_code, message, str(hydra_cfg.job.num) if hydra_cfg.mode == RunMode.MULTIRUN else None))


def failure_lines(failures: list[tuple[int, str, str | None]]) -> list[str]:
    """One line per message, naming the sweep's jobs that ended with it: a sweep may repeat one mistake in every
    job, and two jobs that diverged alike must still both be named."""
    jobs: dict[str, list[str]] = {}
    for _, message, job in failures:
        jobs.setdefault(message, []).extend([job] if job is not None else [])
    lines = []
    for message, named in jobs.items():
        if not named:
            lines.append(message)
            continue
        who = f"job{'s' if len(named) > 1 else ''} {', '.join(named)}: "
        error = message.startswith("error: ")
        lines.append(f"error: {who}{message.removeprefix('error: ')}" if error else f"{who}{message}")
    return lines


def wrapped_config_error(err: BaseException) -> ConfigError | None:
    """The ConfigError that a config resolver raised (${stylegan2_auto:...}), found along the chain of
    exceptions OmegaConf wraps it in; None when the chain holds none (a bug: keep its traceback)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, ConfigError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# OmegaConf refusing a typed run knob's value: "Error merging override trainer.steps=abc\nValue 'abc' of type
# 'str' could not be converted to Integer\n    full_key: ...", then its schema's class names.
SCHEMA_TYPE_ERROR = re.compile(
    r"Error merging override (?P<key>[^=\s]+)=(?P<given>.*)\nValue '.*' of type '\w+' could not be converted to "
    r"(?P<kind>\w+)"
)
SCHEMA_BOOL_ERROR = re.compile(
    r"Error merging override (?P<key>[^=\s]+)=(?P<given>.*)\nValue '.*' is not a valid (?P<kind>bool)"
)
SCHEMA_TYPES = {"Integer": "an integer", "Float": "a number", "bool": "true or false", "String": "a string"}


def hydra_message(err: Exception) -> str:
    message = str(err).split("\nConfig search path:")[0]  # Hydra's search path is noise to a user
    ours = rewrite_hydra_message(message)  # not Hydra's advice to add the unknown key with +
    if ours is not None:
        return ours
    if isinstance(err, HydraException) and err.__cause__ is not None:
        message += f"\n{err.__cause__}"
    typed = SCHEMA_TYPE_ERROR.search(message) or SCHEMA_BOOL_ERROR.search(message)
    if typed:
        key, given, kind = typed.group("key"), typed.group("given"), typed.group("kind")
        return f"{key} must be {SCHEMA_TYPES.get(kind, kind)}, got {given!r}."
    return message


def remove_if_untouched(run_dir: Path) -> None:
    """A run refused before its first step leaves no directory behind, only Hydra's own files were there."""
    if run_dir.is_dir() and all(p.name in (".hydra", LOCK_FILE) or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)
        remove_empty_date_folder(run_dir.parent)


DATE_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")  # outputs/<date>/ of the default run and sweep directories


def remove_empty_date_folder(folder: Path) -> None:
    """The default directories' <date> level, when the refused run or sweep was all it held (a folder the user
    named is left alone)."""
    if DATE_FOLDER.fullmatch(folder.name):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty


def remove_unstarted_sweep(sweep_dir: str | None) -> None:
    """A sweep whose jobs were all refused before starting (a composition error) leaves no folder holding only
    Hydra's multirun.yaml."""
    folder = Path(sweep_dir) if sweep_dir else None
    if folder is not None and folder.is_dir() and [p.name for p in folder.iterdir()] == ["multirun.yaml"]:
        shutil.rmtree(folder, ignore_errors=True)
        remove_empty_date_folder(folder.parent)


def hold_named_run_dir(args: list[str], resume: str | None) -> contextlib.AbstractContextManager[None]:
    """Hold an existing run directory named by hydra.run.dir (given, or set by resume=) before Hydra writes its
    .hydra/ files there: a refused run must not overwrite the record of the run that holds it. The job takes the
    lock of any other directory itself, once Hydra has named it. `resume`: the user's resume= value, if any."""
    named = named_folder(args, "hydra.run.dir")
    if named is None or not named.is_dir() or not is_rank_zero():  # under torchrun rank 0 alone holds it
        return contextlib.nullcontext()  # not given, interpolated or new: no other run is in it yet
    return hold_run_dir(named, resume=resume)
