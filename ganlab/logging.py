"""Where a run reports: TensorBoard event files, and the terminal (rich progress bar on a terminal,
plain periodic lines when stdout is a file or pipe, as under CI or SLURM)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.tree import Tree
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

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


class RunLogger:
    """TensorBoard writer plus console progress. `purge_step` drops events a crashed run logged after its
    last checkpoint, so a resumed run's log has every step once."""

    def __init__(self, run_dir: Path, start_step: int, total_steps: int, purge_step: int | None = None) -> None:
        self.run_dir = run_dir
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
        self.console = Console()
        self.total_steps = total_steps
        self.start_step = start_step
        self.started = time.perf_counter()
        self.interactive = sys.stdout.isatty()
        self.progress: Progress | None = None
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
        self.writer.close()
        # TensorBoard reads a run's event files in name order, and the name starts with the time in whole
        # seconds: the new file must sort after the old one for its purge to apply to the old events.
        time.sleep(1.0 - time.time() % 1.0 + 0.01)
        self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=step + 1)

    def print_config(self, cfg: DictConfig) -> None:
        self.console.print(config_tree(cfg))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def image(self, step: int, tag: str, image: Tensor) -> None:
        self.writer.add_image(tag, image, step)

    def report(self, step: int, values: dict[str, float]) -> None:
        """Show progress at a log step: update the bar, or print one plain line."""
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
        if self.progress is not None:
            self.progress.console.print(line)
            log_to_files(line)
            return
        log.info(line)
        if not logging.getLogger().handlers:  # outside Hydra (library use): still say something
            print(line, flush=True)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.writer.close()
