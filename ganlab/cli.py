"""`ganlab <command> [overrides]`: the console script.

`train` hands the overrides to Hydra (composition, multirun, run directories). User mistakes — a ConfigError
from ganlab or a composition error from Hydra — become one paragraph on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import shutil
import signal
import sys
from concurrent.futures import BrokenExecutor
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from ganlab.atomic_write import SPACE_ERRNOS, full_disk_error
from ganlab.config import CONF_DIR, CONFIG_NAME, GROUPS, register_schema
from ganlab.errors import ConfigError, RunDirInUse, RunInterrupted, RunStopped
from ganlab.launchers import (
    JobFailed,
    SubmititRequeue,
    check_plugins,
    check_same_job,
    check_slurm_is_here,
    register_resolvers,
    release_cuda_cache,
    runs_in_process,
    runs_under_submitit,
    workers_that_catch_stops,
)
from ganlab.run_lock import LOCK_FILE, hold_run_dir
from ganlab.signals import SweepStops, note_stop, pending_stop

USAGE = """usage: ganlab <command> [options]

commands:
  train    train a GAN: ganlab train model=dcgan loss=wgan_gp data=mnist
           sweep:  ganlab train -m loss=gan,hinge optimizer.lr_d=1e-4,4e-4 [hydra/launcher=joblib|slurm]
           search: ganlab train hparams_search=ring8_optuna (Optuna; pip install "ganlab[sweep]")
           resume: ganlab train resume=outputs/<date>/<time> [trainer.steps=...]
           options and groups: ganlab train --help
  sample   draw from a trained generator: ganlab sample run=<run dir or checkpoint> n=64 out=grid.png
           options: n, out (.png/.jpg grid, .npz raw), seed, interpolate=true, steps, device
  eval     compute the metrics that fit the data and write metrics.json in the run dir:
           ganlab eval run=<run dir or checkpoint> [features=auto|inception|digits|mnist|fashion_mnist] [n=10000]
           options: features, n, seed, batch_size, device, out
  report   compare the runs of a sweep: status, steps, final metrics, best first; writes report.md/.csv/.png:
           ganlab report outputs/multirun/<date>/<time> [more run dirs] [out=<dir>] [metric=<name>]
"""
COMMANDS = ("train", "sample", "eval", "report")
SWEEP_STOPPED = (
    "each running job saved a checkpoint. Re-run the same command with resume=auto and the same "
    "hydra.sweep.dir: stopped jobs continue, finished ones are skipped, unstarted ones start."
)
# Failures of jobs, reported by main() after Hydra returns: raising them through Hydra would make it print
# its own "Error executing job" banner first, and would end a sweep whose other jobs may be fine.
_job_failures: list[tuple[int, str]] = []  # (exit code, message)


@hydra.main(config_path=str(CONF_DIR), config_name=CONFIG_NAME, version_base="1.3")
def _train_job(cfg: DictConfig) -> float | None:
    from ganlab.distributed import current
    from ganlab.logging import quiet_full_disk_in_log_files
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
        if current().is_main:  # under torchrun rank 0 alone writes, so it alone holds the directory
            resume = cfg.resume if cfg.resume not in (None, "auto") else None
            lock.enter_context(hold_run_dir(run_dir, resume=resume))
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
        _remove_if_untouched(run_dir)
        raise JobFailed(str(err), err.exit_code) from None
    except RunDirInUse as err:  # the directory is the other run's: leave it as it is
        _job_failed(2, f"error: {err}", in_process)
    except (ConfigError, HydraException) as err:
        _remove_if_untouched(run_dir)
        _job_failed(2, f"error: {_hydra_message(err)}", in_process)
    except RunStopped as err:
        _job_failed(err.exit_code, str(err), in_process)
    except OSError as err:
        if err.errno not in SPACE_ERRNOS:
            raise
        # A full disk, from a writer other than the checkpoint's (which raises RunStopped): the same exit code.
        _job_failed(1, full_disk_message(err, run_dir), in_process)
    except Exception as err:
        if not _out_of_memory(err):
            raise
        from ganlab.train import out_of_memory_message

        message = out_of_memory_message(err, cfg.trainer.batch_size, cfg.trainer.device)
        _job_failed(2, f"error: {message}", in_process)
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


def _job_failed(exit_code: int, message: str, in_process: bool) -> None:
    """Remember a failed job for main(), which reports it after Hydra returns. A job in another process (joblib,
    submitit) raises instead: its exception is what Hydra hands back to this process."""
    if not in_process:
        raise JobFailed(message, exit_code)
    _job_failures.append((exit_code, message))


def _out_of_memory(err: Exception) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError for a tensor larger than RAM."""
    import torch  # loaded already by train

    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text)


def _hydra_message(err: Exception) -> str:
    message = str(err).split("\nConfig search path:")[0]  # Hydra's search path is noise to a user
    if isinstance(err, HydraException) and err.__cause__ is not None:
        message += f"\n{err.__cause__}"
    return message


def _remove_if_untouched(run_dir: Path) -> None:
    """A run refused before its first step leaves no directory behind, only Hydra's own files were there."""
    if run_dir.is_dir() and all(p.name in (".hydra", LOCK_FILE) or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)


def _resume_overrides(args: list[str]) -> list[str]:
    """`resume=X` recomposes the original run: its stored overrides first, the new ones after (they win),
    and Hydra's run directory pointed back at the original run."""
    resume = [a for a in args if _override_key(a) == "resume"]
    if not resume or resume[-1].split("=", 1)[1] == "auto":
        return args  # resume=auto: the same command again; train() finds the run's newest good checkpoint
    if _is_multirun(args):
        raise ConfigError("resume= continues one run; resume the jobs of a sweep one at a time.")
    from ganlab.checkpoint import load_checkpoint, resolve_checkpoint, run_dir_of

    path = resolve_checkpoint(resume[-1].split("=", 1)[1])
    keep = [a for a in args if a not in resume]
    given = {_override_key(a) for a in keep} | {"resume"}
    stored = [
        a
        for a in load_checkpoint(path, mmap=True).get("overrides", [])
        if _override_key(a) not in given and not _override_key(a).startswith("hydra.")
    ]
    new = [*stored, *keep, f"resume='{path}'"]
    run_dir = run_dir_of(path)
    if run_dir is not None:
        # Continue in place; leave the run's .hydra/ as the record of how it was first launched.
        new += [f"hydra.run.dir='{run_dir}'", "hydra.output_subdir=null"]
    return new


def _hold_named_run_dir(args: list[str], resume: str | None) -> contextlib.AbstractContextManager[None]:
    """Hold an existing run directory named by hydra.run.dir (given, or set by resume=) before Hydra writes its
    .hydra/ files there: a refused run must not overwrite the record of the run that holds it. The job takes the
    lock of any other directory itself, once Hydra has named it. `resume`: the user's resume= value, if any."""
    given = [a for a in args if _override_key(a) == "hydra.run.dir"]
    if not given or int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 alone holds it
        return contextlib.nullcontext()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value = OverridesParser.create().parse_overrides([given[-1]])[0].value()  # unquoted
    except HydraException:
        return contextlib.nullcontext()  # Hydra says what is wrong with it
    if not isinstance(value, str) or "${" in value or not Path(value).is_dir():
        return contextlib.nullcontext()  # interpolated, or new: no other run is in it yet
    return hold_run_dir(Path(value), resume=resume)


def _distributed_overrides(args: list[str]) -> list[str]:
    """Under torchrun: join the process group, and give every rank one run directory (named from rank 0's
    clock: the ranks' own clocks may straddle a second) in which rank 0 alone writes Hydra's files and logs."""
    from ganlab.distributed import broadcast_text, init_from_env, launched_by_torchrun

    if not launched_by_torchrun():
        return args
    if _is_multirun(args):
        raise ConfigError(
            "torchrun trains one run with several processes; a sweep (-m, hparams_search) cannot run inside it. "
            "Sweep with hydra/launcher=slurm, each job asking for its GPUs, or launch one torchrun per setting."
        )
    dist = init_from_env()
    stamp = broadcast_text(datetime.datetime.now().strftime("%Y-%m-%d/%H-%M-%S"))
    extra = [] if any(_override_key(a) == "hydra.run.dir" for a in args) else [f"hydra.run.dir=outputs/{stamp}"]
    if not dist.is_main:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    return [*args, *extra]


OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # a name, not a number: Hydra would parse `0` as int


def _check_group_choices(args: list[str]) -> None:
    """`model=dcgan` picks one YAML of a group. Hydra also takes lists and numbers there and then fails deep
    inside itself: refuse anything but option names (comma-separated for a sweep) up front."""
    multirun = _is_multirun(args)
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            continue
        group, value = _override_key(arg), arg.split("=", 1)[1]
        if group not in (*GROUPS, "debug", "experiment", "hparams_search"):
            continue
        names = value.split(",") if multirun else [value]
        if not all(OPTION_NAME.match(name) for name in names):
            options = ", ".join(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")))
            sweep = "" if multirun else "; a sweep over several takes -m"
            raise ConfigError(f"{arg}: {group} takes the name of one option ({options}){sweep}.")


def _is_multirun(args: list[str]) -> bool:
    """-m, hydra.mode=MULTIRUN, or an hparams_search preset (each sets hydra.mode=MULTIRUN)."""
    return bool({"-m", "--multirun"} & set(args)) or any(
        (_override_key(a) == "hparams_search" and not a.endswith("=null")) or a.lstrip("+") == "hydra.mode=MULTIRUN"
        for a in args
        if "=" in a
    )


def _override_key(override: str) -> str:
    """`+trainer.steps=5` -> `trainer.steps`; `~model` -> `model`."""
    return override.split("=", 1)[0].lstrip("+~")


def _fail(message: str) -> NoReturn:
    print(f"{_prefix()}: error: {message.strip()}", file=sys.stderr)
    sys.exit(2)


def _prefix() -> str:
    """`ganlab`, or `ganlab[rank N]` on the other processes of a torchrun: every rank may have its say."""
    rank = int(os.environ.get("RANK", "0"))
    return f"ganlab[rank {rank}]" if rank and int(os.environ.get("WORLD_SIZE", "1")) > 1 else "ganlab"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (not the stream of when it was made)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _log_to_stderr() -> None:
    logger = logging.getLogger("ganlab")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("ganlab: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _run_command(command: str, args: list[str]) -> None:
    """`sample`, `eval` and `report`: plain key=value options (no Hydra run directory); mistakes exit 2."""
    _log_to_stderr()  # e.g. "training the mnist feature classifier once"
    try:
        if command == "sample":
            from ganlab.commands.sample import main as command_main
        elif command == "eval":
            from ganlab.commands.evaluate import main as command_main
        else:
            from ganlab.commands.report import main as command_main
        command_main(args)
    except ConfigError as err:
        _fail(str(err))
    except OSError as err:
        if err.errno not in SPACE_ERRNOS:
            raise
        _fail(f"could not write {err.filename or 'a file'} ({err.strerror}).")  # a cache, e.g. the classifier's


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if args else 2)
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        _fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}.\n\n{USAGE}")
    if command in ("sample", "eval", "report"):
        _run_command(command, rest)
        return
    register_schema()
    # Let exceptions reach us instead of Hydra printing them and exiting 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna imports it; its "setup plugin ..." lines are noise
    sweep_stops = SweepStops()
    try:
        _check_group_choices(rest)
        check_plugins(rest)
        check_slurm_is_here(rest)
        resume = next((a.split("=", 1)[1] for a in reversed(rest) if _override_key(a) == "resume"), None)
        rest = _resume_overrides(rest)
        rest = _distributed_overrides(rest)
        sys.argv = [f"ganlab {command}", *rest]
        _job_failures.clear()
        if _is_multirun(rest):
            with sweep_stops, workers_that_catch_stops(sweep_stops.token):
                _train_job()
            if sweep_stops.signum:
                raise RunInterrupted("", sweep_stops.signum)  # every job ended without failing, or before starting
        else:
            with _hold_named_run_dir(rest, None if resume == "auto" else resume):
                _train_job()
    except (ConfigError, HydraException) as err:
        _fail(_hydra_message(err))
    except OSError as err:
        if err.errno in SPACE_ERRNOS:  # Hydra's own files, written before the job starts
            where = err.filename or "the run directory"
            print(f"{_prefix()}: could not write {where} ({err.strerror}). Free some space.", file=sys.stderr)
            sys.exit(1)
        if err.filename is None:  # not about a path we were asked to write: a bug, keep the traceback
            raise
        _fail(f"cannot write {err.filename}: {err.strerror}. Choose a writable place with hydra.run.dir=<folder>.")
    except (RunInterrupted, JobFailed, BrokenExecutor) as err:
        # A stopped sweep: the jobs' own messages say where each stopped; this says how to go on. (BrokenExecutor:
        # a signal in the moment after joblib started its workers, before their handlers were set, killed them
        # and joblib gave up the pool; no job had begun training yet.)
        if sweep_stops.signum:
            print(f"{_prefix()}: sweep stopped by {sweep_stops.name}: {SWEEP_STOPPED}", file=sys.stderr)
            sys.exit(128 + sweep_stops.signum)
        if isinstance(err, BrokenExecutor):
            raise
        print(f"{_prefix()}: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    finally:
        _leave_process_group()
    if _job_failures:
        messages = dict.fromkeys(message for _, message in _job_failures)  # a sweep may repeat one mistake
        print("\n".join(f"{_prefix()}: {m}" for m in messages), file=sys.stderr)
        sys.exit(max(code for code, _ in _job_failures))


def _leave_process_group() -> None:
    if "torch.distributed" in sys.modules:  # never import torch just to find out
        from ganlab.distributed import destroy

        destroy()
