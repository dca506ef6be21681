"""Stop at a step boundary on SIGTERM (cluster pre-emption, `scancel`) or Ctrl-C, so the loop can write a
checkpoint that resumes exactly, instead of dying mid-step."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class StopRequests:
    """Context manager: while active, SIGINT/SIGTERM set `signum` instead of killing the process.
    A second Ctrl-C while stopping falls through to the default handler (immediate KeyboardInterrupt)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopRequests:
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
