"""`<run dir>/status.json`: what a run is doing, kept current by train() so that `ganlab report` can tell
finished, running, crashed, diverged and interrupted runs apart without guessing from checkpoints.

The file is replaced atomically at every log and checkpoint step (a heartbeat) and once more when the run
ends, however it ends. A SIGKILL (out-of-memory killer, node failure) gives the process no chance to write:
its file still says `running`, so a reader checks the recorded process (see `current_state`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ganlab.atomic_write import atomic_write, remove_stale_temps
from ganlab.errors import RunInterrupted, first_line

log = logging.getLogger("ganlab")
STATUS_FILE = "status.json"
RUNNING = "running"
FINISHED = "finished"  # reached trainer.steps
CRASHED = "crashed"  # died of an exception (or, seen from outside, its process is gone)
DIVERGED = "diverged"  # stopped by trainer.on_nan: its last good checkpoint is kept
INTERRUPTED = "interrupted"  # SIGTERM or Ctrl-C: checkpointed at a step boundary, resume= continues it
STATES = (RUNNING, FINISHED, CRASHED, DIVERGED, INTERRUPTED)


class RunStatus:
    """Context manager around the training loop: `running` on entry, the outcome on exit.

    `update(step, saved_step)` is the heartbeat. `expect(DIVERGED)` before raising tells the exit what the
    exception means: RunStopped is also raised for a checkpoint that cannot be written, which is a crash.
    `writes=False` (ranks of a torchrun other than 0) keeps the record without writing it."""

    def __init__(
        self,
        run_dir: Path,
        steps: int,
        monitor: str | None,
        overrides: list[str],
        step: int = 0,
        writes: bool = True,
        measured_with: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(run_dir) / STATUS_FILE
        self.writes = writes
        self.record: dict[str, Any] = {
            "state": RUNNING,
            "step": step,  # the last step done (logged), maybe past the last checkpoint
            "saved_step": step,  # the last step in checkpoints/last.pt: where a resume continues
            "steps": steps,
            "monitor": monitor,
            "measured_with": measured_with,  # the evaluation's extractor and n: ganlab report compares only alike
            "overrides": list(overrides),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "updated": time.time(),
            "message": None,
        }
        self._expected: str | None = None

    def __enter__(self) -> RunStatus:
        if not self.writes:
            return self
        remove_stale_temps(self.path.parent, STATUS_FILE)  # left by a process killed mid-write
        self._write()
        return self

    def update(self, step: int, saved_step: int | None = None) -> None:
        self.record["step"] = step
        if saved_step is not None:
            self.record["saved_step"] = saved_step
        try:
            self._write()
        except OSError as err:  # a heartbeat is not worth a run: a failing checkpoint stops it soon enough
            log.warning("could not update %s (%s)", self.path, err.strerror or err)

    def expect(self, state: str) -> None:
        self._expected = state

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            state = FINISHED
        elif isinstance(exc, RunInterrupted | KeyboardInterrupt):
            state = INTERRUPTED
        else:
            state = self._expected or CRASHED
        self.record["message"] = None if exc is None else first_line(exc, limit=500) or type(exc).__name__
        self.record["state"] = state
        try:
            self._write()
        except OSError:
            if exc is None:
                raise
            # Already failing (maybe this very disk is full): the original error matters more.

    def _write(self) -> None:
        if not self.writes:
            return
        self.record["updated"] = time.time()
        text = json.dumps(self.record, indent=2) + "\n"
        atomic_write(self.path, lambda f: f.write(text.encode()))  # a reader never sees half a file


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's status record, or None if it has none (it stopped before its first step)
    or the file is unreadable."""
    try:
        record = json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("state") in STATES else None


def current_state(record: dict[str, Any]) -> tuple[str, str | None]:
    """(state, note) of a status record. A `running` record whose process is gone was killed without a chance
    to write (SIGKILL, out of memory, node failure): that is a crash. A process on another host cannot be
    checked; the note then gives the age of its last heartbeat."""
    if record["state"] != RUNNING:
        return record["state"], record.get("message")
    age = time.time() - float(record.get("updated", 0))
    if record.get("host") != socket.gethostname():
        return RUNNING, f"on {record.get('host')}, last heartbeat {age:.0f} s ago"
    if not process_alive(int(record.get("pid", 0))):
        return CRASHED, f"process {record.get('pid')} is gone without a word (killed?); last heartbeat {age:.0f} s ago"
    return RUNNING, None


def process_alive(pid: int) -> bool:
    """Whether a process of this host has that pid (a pid of another host means nothing here)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
