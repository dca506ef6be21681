"""Stop at a step boundary on SIGTERM (cluster pre-emption, `scancel`) or Ctrl-C, so the loop can write a
checkpoint that resumes exactly, instead of dying mid-step.

A sweep whose jobs run in worker processes (hydra/launcher=joblib) needs more than the training loop's handler:
the signal may reach the main process alone (`kill <pid>`), a worker between two jobs, or every process at once
(Ctrl-C in a terminal, SLURM). `SweepStops` in the main process passes it on to the workers, and
`catch_stops_in_worker` makes each worker remember it: its running job stops with a checkpoint, a job that
starts later does not start, and the worker itself stays alive (one that died would break joblib's pool, which
then kills the others in the middle of their checkpoints).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from types import FrameType, TracebackType

# A stop signal that arrived outside a training loop, in a sweep's main process (SweepStops) or in a worker
# (catch_stops_in_worker). Never set in a plain run, so a test process that trains many times stays clean.
_pending: int | None = None


def pending_stop() -> int | None:
    """The signal that stopped this sweep, if one did: the next job must not start."""
    return _pending


def note_stop(signum: int) -> None:
    """A job in a worker process was stopped by `signum`: the worker's later jobs must not start."""
    global _pending
    _pending = _pending or signum


class StopRequests:
    """Context manager: while active, SIGINT/SIGTERM set `signum` instead of killing the process.
    A second Ctrl-C while stopping falls through to the default handler (immediate KeyboardInterrupt)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.at_once = False  # a second Ctrl-C came: whatever fails next, in whatever way, failed because of it
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            self.at_once = True
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopRequests:
        self.signum = _pending  # arrived while the job was being built: stop after its first step
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


def _remember_in_worker(signum: int, frame: FrameType | None) -> None:
    note_stop(signum)


def catch_stops_in_worker(sweep: str = "") -> None:
    """The initializer of a sweep's worker processes: SIGINT/SIGTERM are remembered instead of killing the
    worker; StopRequests takes over while a job trains. `sweep` names the sweep (SweepStops.token): a new sweep
    gets new workers, so that no worker carries a stop into the next sweep of the same process."""
    if threading.current_thread() is threading.main_thread():
        for sig in StopRequests.SIGNALS:
            signal.signal(sig, _remember_in_worker)


def inside_training_loop(sig: int = signal.SIGTERM) -> bool:
    """Whether a training loop's StopRequests handles `sig` right now."""
    return isinstance(getattr(signal.getsignal(sig), "__self__", None), StopRequests)


class SweepStops:
    """Context manager around a sweep in its main process. A SIGINT/SIGTERM while worker processes run jobs is
    passed on to them (as SIGTERM: a second SIGINT would make a worker give up its checkpoint) and remembered;
    `signum` then says which, and the main process ends with 128 + signum once the jobs have stopped. With no
    worker processes (the basic launcher between jobs, or submitit, whose jobs are SLURM's), the signal acts as
    it would without this class. A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self.token = f"{os.getpid()}-{id(self)}-{time.monotonic_ns()}"  # this sweep's, for its workers

    def __enter__(self) -> SweepStops:
        if threading.current_thread() is threading.main_thread():
            for sig in StopRequests.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        global _pending
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
        # A stop that a job in this process saw first (the basic launcher, or joblib with n_jobs=1) stopped the
        # sweep just the same.
        self.signum = self.signum or _pending or getattr(exc, "signum", None)
        _pending = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        global _pending
        workers = multiprocessing.active_children()
        previous = self._previous.get(signum)
        if previous is signal.SIG_IGN:  # started in the background of a script: Ctrl-C is not for us
            return
        if not workers or (self.signum is not None and signum == signal.SIGINT):
            if callable(previous):
                previous(signum, frame)  # Python's own: KeyboardInterrupt for SIGINT
            else:
                signal.signal(signum, signal.SIG_DFL)  # SIGTERM's default: end the process, as without us
                os.kill(os.getpid(), signum)
            return
        self.signum = self.signum or signum
        _pending = self.signum
        for worker in workers:
            if worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""
