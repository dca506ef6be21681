"""Run and sweep directories that already hold trained runs.

A new run (no resume=) into a directory holding a run's checkpoints would overwrite them, append to its train.log
and stack a second TensorBoard event file on the first, all with exit 0: it is refused, before Hydra writes its
.hydra/ files there. A sweep re-run with resume=auto rewrites each job's .hydra/ before the job can look at its
checkpoint; the jobs that did not train on (finished, or refused as another job's) get their first record back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from ganlab.atomic_write import atomic_write
from ganlab.errors import ConfigError
from ganlab.overrides import last_value

CHECKPOINT_DIR, LAST = "checkpoints", "last.pt"  # as in ganlab/checkpoint.py, which imports torch
HYDRA_RECORD = ".hydra"


def named_folder(args: list[str], key: str) -> Path | None:
    """The folder `key` (hydra.run.dir, hydra.sweep.dir) names in `args`, unquoted; None when it is not given or
    is interpolated (Hydra fills that in later) or does not parse (Hydra says what is wrong with it)."""
    given = last_value(args, key)
    if given is None:
        return None
    try:
        value = OverridesParser.create().parse_overrides([f"{key}={given}"])[0].value()
    except HydraException:
        return None
    if not isinstance(value, str) or "${" in value:
        return None
    return Path(value)


def held_checkpoint(run_dir: Path) -> Path | None:
    """The run's checkpoints/last.pt, else its newest step_*.pt; None when it holds none."""
    folder = run_dir / CHECKPOINT_DIR
    if (folder / LAST).is_file():
        return folder / LAST
    kept = sorted(p for p in folder.glob("step_*.pt") if p.is_file())
    return kept[-1] if kept else None


def check_new_run_dir(run_dir: Path, option: str = "hydra.run.dir") -> None:
    """Refuse a new run into `run_dir` when it holds a run's checkpoint."""
    checkpoint = held_checkpoint(run_dir)
    if checkpoint is not None:
        raise ConfigError(
            f"{option}={run_dir} already holds a run ({checkpoint.relative_to(run_dir)}): a new run there would "
            f"overwrite it. Continue that run with resume=auto, or give another {option}."
        )


def check_new_sweep_dir(sweep_dir: Path) -> None:
    """Refuse a new sweep into `sweep_dir` when any of its job folders holds a checkpoint."""
    if not sweep_dir.is_dir():
        return
    trained = sorted(job.name for job in sweep_dir.iterdir() if job.is_dir() and held_checkpoint(job) is not None)
    if trained:
        jobs = ", ".join(trained[:5]) + (f" and {len(trained) - 5} more" if len(trained) > 5 else "")
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir} already holds a sweep whose jobs have checkpoints ({jobs}): a new sweep "
            "there would overwrite them. Re-run that sweep's command with resume=auto to continue it, or give "
            "another hydra.sweep.dir."
        )


def check_new_run(args: list[str], multirun: bool) -> None:
    """Before Hydra writes anything: a run or sweep without resume= into a folder the user named that already
    holds trained runs is refused."""
    if last_value(args, "resume") is not None:
        return
    if multirun:
        sweep_dir = named_folder(args, "hydra.sweep.dir")
        if sweep_dir is not None:
            check_new_sweep_dir(sweep_dir)
        return
    run_dir = named_folder(args, "hydra.run.dir")
    if run_dir is not None and run_dir.is_dir():
        check_new_run_dir(run_dir)


@contextlib.contextmanager
def job_records_kept(sweep_dir: Path | None) -> Iterator[None]:
    """Around a sweep re-run with resume=auto: each trained job's .hydra/ files as they were, put back where the
    job's checkpoints/last.pt is unchanged at the end (the job was finished and skipped, or refused)."""
    kept: dict[Path, tuple[int, dict[str, bytes]]] = {}
    if sweep_dir is not None and sweep_dir.is_dir():
        for job in sweep_dir.iterdir():
            last, record = job / CHECKPOINT_DIR / LAST, job / HYDRA_RECORD
            if last.is_file() and record.is_dir():
                files = {f.name: f.read_bytes() for f in record.iterdir() if f.is_file()}
                kept[job] = (last.stat().st_mtime_ns, files)
    try:
        yield
    finally:
        for job, (mtime, files) in kept.items():
            last = job / CHECKPOINT_DIR / LAST
            if not last.is_file() or last.stat().st_mtime_ns != mtime:
                continue  # the job trained on: its record now says how it was continued
            for name, content in files.items():
                path = job / HYDRA_RECORD / name
                if not path.is_file() or path.read_bytes() != content:
                    atomic_write(path, lambda f, content=content: f.write(content))
