"""One run per run directory: an advisory lock that a run holds on `<run dir>/.ganlab.lock` for its whole life.

Two runs writing one directory interleave their TensorBoard logs and overwrite each other's checkpoints, and
both would exit 0. A second run into a held directory (an explicit hydra.run.dir, two launches in the same
second under the time-stamped default, or resume= of a run still going) is refused instead, with the holder's
process and host, which the holder writes into the lock file.

`fcntl.flock` belongs to the open file: it goes when the process ends however it ends (SIGKILL included), so a
killed run never leaves a stale lock to clean up. The file itself stays; only the lock on it matters. Forked
children (data loader workers) share the lock until they exit, seconds after their parent.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ganlab.errors import RunDirInUse
from ganlab.status import process_alive

log = logging.getLogger("ganlab")
LOCK_FILE = ".ganlab.lock"
# Run directories this process holds, with the lock's file descriptor: the CLI may take a directory before
# Hydra writes into it, and the job then asks again. A second flock from this process would conflict with it.
_held: dict[Path, int] = {}


@contextlib.contextmanager
def hold_run_dir(run_dir: Path, resume: str | None = None) -> Iterator[None]:
    """Hold `run_dir` (made if missing) for the duration, or raise RunDirInUse naming the process that does.

    `resume`: the resume= value this run was given, for the message. A filesystem that cannot lock (some
    network and FUSE filesystems) gets a warning and no lock."""
    key = Path(os.path.realpath(run_dir))  # one key however the directory is spelt (.., symlinks)
    if key in _held:
        yield
        return
    fd = _lock(key, resume)
    if fd is None:
        yield
        return
    _held[key] = fd
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # releases the lock


def _lock(run_dir: Path, resume: str | None) -> int | None:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(fd)
        os.close(fd)
        raise RunDirInUse(_refusal(run_dir, holder, resume)) from None
    except OSError as err:  # ENOLCK, EOPNOTSUPP: no locks on this filesystem
        os.close(fd)
        log.warning("cannot lock %s (%s): a second run into this directory would not be noticed", path, err.strerror)
        return None
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    except OSError:  # a full disk: the lock holds without it, and the run's first write says what is wrong
        pass
    return fd


def _describe_holder(fd: int) -> str:
    """'process 123 on host h, started 2025-01-01 12:00:00', from the lock file the holder wrote."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:  # the holder is between taking the lock and writing its record
        record = {}
    if not isinstance(record, dict) or "pid" not in record:
        return "another process"
    text = f"process {record['pid']} on {record.get('host', '?')}"
    if isinstance(record.get("started"), int | float):
        text += f", started {datetime.datetime.fromtimestamp(record['started']):%Y-%m-%d %H:%M:%S}"
    if record.get("host") == socket.gethostname() and not process_alive(int(record["pid"])):
        text += " (it has exited; a child of it still holds the lock and goes within seconds: try again)"
    return text


def _refusal(run_dir: Path, holder: str, resume: str | None) -> str:
    if resume is not None:
        return (
            f"resume={resume}: the run in {run_dir} is still going ({holder}). Stop it first (SIGTERM or Ctrl-C "
            "saves a checkpoint at the next step), then resume it."
        )
    return (
        f"{run_dir} is in use by another run ({holder}). Two runs in one directory would interleave their "
        "TensorBoard logs and overwrite each other's checkpoints: wait for it to end, or choose another "
        "directory with hydra.run.dir=<folder>."
    )
