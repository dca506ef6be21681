"""Where a run reports: TensorBoard event files, and the terminal (rich progress bar on a terminal,
plain periodic lines when stdout is a file or pipe, as under CI or SLURM)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.tree import Tree
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from ganlab.atomic_write import SPACE_ERRNOS, full_disk_error
from ganlab.overrides import split_override
from ganlab.targets import option_name

log = logging.getLogger("ganlab")


def config_tree(cfg: DictConfig) -> Tree:
    tree = Tree("config", guide_style="dim")

    def add(node: Tree, value: Any) -> None:
        for key, child in value.items():
            if isinstance(child, dict):
                add(node.add(f"[bold]{key}[/bold]"), child)
            else:
                node.add(f"{key}: [cyan]{child!r}[/cyan]")

    add(tree, OmegaConf.to_container(cfg, resolve=True))
    return tree


def plain_config_tree(cfg: DictConfig) -> str:
    """`config_tree` as rich prints it where there is no terminal (a log file, a pipe, a test), without rich:
    rendering the tree costs rich about 50 ms a run, and the lines are not wrapped at 80 columns."""
    lines = ["config"]

    def add(value: dict, indent: str) -> None:
        items = list(value.items())
        for i, (key, child) in enumerate(items):
            last = i == len(items) - 1
            branch, deeper = ("└── ", "    ") if last else ("├── ", "│   ")
            lines.append(f"{indent}{branch}{key}" + ("" if isinstance(child, dict) else f": {child!r}"))
            if isinstance(child, dict):
                add(child, indent + deeper)

    add(OmegaConf.to_container(cfg, resolve=True), "")
    return "\n".join(lines)


# The settings every run reports in TensorBoard's HParams tab, besides its own overrides.
KEY_SETTINGS = ("optimizer.lr_g", "optimizer.lr_d", "trainer.batch_size", "trainer.steps", "seed")


def run_hparams(cfg: DictConfig, overrides: Sequence[str]) -> dict[str, str | int | float | bool]:
    """A run's hyperparameters for the HParams tab: the option of each group (`loss: hinge`, from the module of
    its `_target_`, which is named like the option), a few key settings, and every command-line override, typed
    as in the config (`optimizer.lr_d: 0.0004`, a number the tab can plot)."""
    values: dict[str, Any] = {
        group: option_name(str(target)) if (target := OmegaConf.select(cfg, node)) else None
        for group, node in (
            ("model", "model.generator._target_"),
            ("loss", "loss._target_"),
            ("optimizer", "optimizer.generator._target_"),
            ("data", "data._target_"),
        )
    }
    values |= {key: OmegaConf.select(cfg, key, default=None) for key in KEY_SETTINGS}
    for override in overrides:
        key, text = split_override(override)
        text = text or ""  # `~key` deletes: no text
        if key.startswith(("hydra.", "hydra/")) or key == "resume":  # how it ran, not what it trained
            continue
        node = OmegaConf.select(cfg, key, default=None)  # a group choice (loss=hinge) selects a dict
        values[key] = node if isinstance(node, bool | int | float | str) else text
    # The plugin takes numbers, strings and booleans; a list (betas) is shown as its text.
    return {
        key: value if isinstance(value, bool | int | float | str) else str(value)
        for key, value in values.items()
        if value is not None
    }


def _eta(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def log_to_files(message: str) -> None:
    """Log `message` through the file handlers only (Hydra's <run dir>/train.log), not the console."""
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def wait_to_sort_last(run_dir: Path) -> None:
    """Wait until a new event file would sort after every one already in `run_dir`.

    TensorBoard reads a run's event files in name order, and a purge applies only to events read before it.
    The name is `events.out.tfevents.<whole seconds>.<host>.<pid>.<counter>`: within one second and one
    process the unpadded counter decides, and "10" sorts before "9". A later second always sorts later."""
    seconds = [
        int(f.name.split(".")[3]) for f in run_dir.glob("events.out.tfevents.*") if f.name.split(".")[3].isdigit()
    ]
    if not seconds:
        return
    latest = max(seconds)
    if latest > time.time() + 5:  # written under a clock ahead of ours: waiting cannot help
        log.warning("event files in %s are dated in the future; a resumed log may repeat steps", run_dir)
        return
    while int(time.time()) <= latest:
        time.sleep(1.0 - time.time() % 1.0 + 0.01)


def quiet_full_disk_in_log_files() -> None:
    """Hydra's log file (<run dir>/train.log) on a full disk: logging would print `--- Logging error ---` and a
    traceback on stderr for every line after. The run's own writers stop it with one message about the disk;
    the log file's handlers drop their lines quietly from then on (a line lost from a full disk's log)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and not isinstance(handler.handleError, _QuietOnFullDisk):
            handler.handleError = _QuietOnFullDisk(handler.handleError)  # type: ignore[method-assign]


class _QuietOnFullDisk:
    def __init__(self, handle_error: Any) -> None:
        self.handle_error = handle_error

    def __call__(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]  # handleError runs inside the handler's `except`
        if isinstance(error, OSError) and error.errno in SPACE_ERRNOS:
            return
        self.handle_error(record)


def _quiet_event_thread_errors() -> None:
    """TensorBoard writes event files from a thread of its own, which keeps a failed write's error for the next
    call from the loop (RunLogger reports it there) and also lets Python print the thread's traceback on stderr.
    Drop that print, for OSErrors of TensorBoard's threads only, so that a full disk reads as one message."""
    previous = threading.excepthook
    if getattr(previous, "ganlab_quiets_tensorboard", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if issubclass(args.exc_type, OSError) and type(args.thread).__module__.startswith("tensorboard."):
            return
        previous(args)

    hook.ganlab_quiets_tensorboard = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class RunLogger:
    """TensorBoard writer plus console progress. `purge_step` drops events a crashed run logged after its
    last checkpoint, so a resumed run's log has every step once.

    An event file that cannot be written (a full disk) raises an OSError naming the file, its folder and the free
    space (ENOSPC), from the call after TensorBoard's thread failed: the run stops rather than lose its log.

    `writes=False` (the processes of a torchrun other than rank 0, which writes for all) makes every call do
    nothing: the same object and methods on every rank, so that a mistake fails on every rank alike."""

    def __init__(
        self, run_dir: Path, start_step: int, total_steps: int, purge_step: int | None = None, writes: bool = True
    ) -> None:
        self.run_dir = run_dir
        self.writes = writes
        self.failed = False
        self.progress: Progress | None = None
        if not writes:
            return
        _quiet_event_thread_errors()
        if purge_step is not None:
            wait_to_sort_last(run_dir)
        with self._writing():
            self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
        self.console = Console()
        self.total_steps = total_steps
        self.start_step = start_step
        self.started = time.perf_counter()
        self.interactive = sys.stdout.isatty()
        if self.interactive:
            self.progress = Progress(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task("train", total=total_steps, completed=start_step, stats="")
            self.progress.start()

    def rewind(self, step: int) -> None:
        """Go back to `step` (a rollback): events logged after it are purged when logging resumes."""
        if not self.writes:
            return
        with self._writing():
            self.writer.close()
        wait_to_sort_last(self.run_dir)
        with self._writing():
            self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=step + 1)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Around every call that may write events: TensorBoard's OSError (raised again from its thread, with no
        file name) becomes one that says which file, where, and how much space is left."""
        try:
            yield
        except OSError as err:
            self.failed = True
            path = self._event_file()
            raise full_disk_error(err, path) or OSError(
                err.errno, f"{err.strerror or err} (TensorBoard's event file)", str(path)
            ) from err

    def _event_file(self) -> Path:
        """This process's newest event file (TensorBoard names it `...<host>.<pid>.<counter>`, with no public
        way to ask), else the pattern of one: the folder is what a message needs most."""
        pattern = f"events.out.tfevents.*.{socket.gethostname()}.{os.getpid()}.*"
        mine = sorted(self.run_dir.glob(pattern), key=lambda p: p.stat().st_mtime_ns)
        return mine[-1] if mine else self.run_dir / pattern

    def print_config(self, cfg: DictConfig) -> None:
        """The config tree, once: by a single run, and by a sweep's first job only (the jobs differ by their
        overrides, which each job's log and `ganlab report` show; every job's config.yaml holds its whole tree)."""
        if not self.writes or later_job_of_a_sweep():
            return
        if self.console.is_terminal:
            self.console.print(config_tree(cfg))
        else:
            self.console.file.write(plain_config_tree(cfg) + "\n")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.writes:
            return
        with self._writing():
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)

    def image(self, step: int, tag: str, image: Tensor) -> None:
        if not self.writes:
            return
        with self._writing():
            self.writer.add_image(tag, image, step)

    def hparams(self, values: dict[str, str | int | float | bool]) -> None:
        """Record the run's hyperparameters for TensorBoard's HParams tab, in this run's own log. Unlike
        SummaryWriter.add_hparams, which writes to a new timestamped sub-folder with copies of the metrics, this
        leaves the tab to read the metrics from the run's own scalars (metrics/*, loss/*), so every job of a
        sweep is one row. No experiment summary is written: the tab then builds its columns from every run's
        hyperparameters (a sweep's jobs may differ in their keys) instead of picking one run's list."""
        if not self.writes:
            return
        _, session_start, session_end = hparams_summaries(values, {})
        with self._writing():
            self.writer.file_writer.add_summary(session_start)
            self.writer.file_writer.add_summary(session_end)

    def report(self, step: int, values: dict[str, float]) -> None:
        """Show progress at a log step: update the bar, or print one plain line."""
        if not self.writes:
            return
        summary = " ".join(
            f"{tag.split('/')[-1] if tag.startswith('loss/') else tag} {values[tag]:.4g}"
            for tag in ("loss/D", "loss/G")
            if tag in values
        )
        rate = values.get("perf/images_per_s")
        if rate is not None:
            summary += f" | {rate:,.0f} img/s"
        done = step - self.start_step
        elapsed = time.perf_counter() - self.started
        eta = _eta(elapsed / done * (self.total_steps - step)) if done else "?"
        line = f"step {step}/{self.total_steps} | {summary} | eta {eta}"
        if self.progress is not None:
            self.progress.update(self.task, completed=step, stats=summary)
            log_to_files(line)  # the bar owns the terminal; the run's log file still gets the line
            return
        self.note(line)

    def note(self, line: str) -> None:
        """One line for the user: above the bar on a terminal, else a log line (and the run's log file)."""
        if not self.writes:
            return
        if self.progress is not None:
            self.progress.console.print(line)
            log_to_files(line)
            return
        log.info(line)
        if not logging.getLogger().handlers:  # outside Hydra (library use): still say something
            print(line, flush=True)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        try:
            self.close()
        except OSError:
            if exc is None:
                raise
            # Already failing (maybe for this very disk): the error in flight says more.

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if (
            self.failed or not self.writes
        ):  # its thread is gone and its error reported: closing would only raise it again
            return
        with self._writing():
            self.writer.close()


def later_job_of_a_sweep() -> bool:
    """Whether this is a job of a Hydra multirun other than its first (job.num > 0)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.get()
    return hydra_cfg.mode == RunMode.MULTIRUN and int(hydra_cfg.job.get("num", 0) or 0) > 0
