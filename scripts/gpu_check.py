"""Verify ganlab on a CUDA machine in one command (about 6 minutes at most) and print one table.

    python scripts/gpu_check.py [--budget 360] [--quick]
                                [--checks pytest,default,torchrun,nccl,stream,graphs,bench,forkserver]
                                [--peak-tflops 989]
                                [--steps N] [--keep DIR] [--archive FILE.tar.gz] [--allow-cpu]

Each check is a subprocess with its own timeout, run from the repository root, its wall time measured:
  pytest    `pytest -m gpu -v <the test files marking a test gpu>`: the CUDA tests, their pass/fail counts (in
            4 processes where pytest-xdist is installed)
  default   the default run (`python -m ganlab train`, 2000 steps of DCGAN on digits): wall seconds of the whole
            process and images/s (perf/images_per_s); target <= 12 s on an H200 (judged on an H200 only)
  torchrun  `torchrun --nproc_per_node=N -m ganlab train trainer.steps=50` (N = min(2, GPUs)) and whether the
            checkpoint was written; with one process ganlab joins no process group (WORLD_SIZE=1), so an
            all_reduce over NCCL with one rank is run on its own as well (`nccl`)
  stream    data=image_folder on 4096 64x64 PNGs, 192 steps (3 epochs of batch 64), data.cache=true and then
            data.cache=false: the whole process of each timed; target: streaming <= 3 s more than cached. The
            streaming run's own log says where its extra time went (first batch, waits, shutdown)
  graphs    a short default run with trainer.cuda_graphs=false and =true: images/s of each (ganlab's error,
            if any, is the row's result; on the CPU, auto stands in for true, which ganlab refuses there)
  bench     scripts/bench.py on its workloads (mlp, dcgan; stylegan2 on CUDA, with the fraction of peak FLOP/s when
            --peak-tflops gives the GPU's peak) with few steps, a few rows (--only) and a time
            limit per workload and per row
  forkserver  only where the stream check missed its target (and always on the CPU, to test this script): the
            streaming run again with data.start_method=forkserver, workers started from a fresh interpreter
            rather than forked from a process where CUDA has started; last, so that it costs the others nothing
The checks share one budget (--budget seconds, counted from the script's start, so the whole script ends
within it): each one's timeout is cut to what is left, and a check that finds too little left is skipped. The
table at the end is markdown (check | result | time | target/notes); it is also rewritten to table.md in the logs'
folder after every check, so that a run stopped from outside still leaves the rows it finished.
Exit status: 0 when every check passed or was skipped, 1 when one failed or missed its target, 2 when there
is no CUDA device (--allow-cpu runs the checks on the CPU with tiny sizes instead, to test this script).
The logs and run directories are kept when a check fails (or always with --keep DIR); their folder is printed.
--archive FILE.tar.gz packs table.md, the logs and the runs' small files (no checkpoints, no images) into one
file after every check: what a borrowed machine that returns only a few files should bring back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

STARTED = time.perf_counter()  # --budget counts from here: importing torch and starting CUDA are part of the run
REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
CHECKS = ("pytest", "default", "torchrun", "nccl", "stream", "graphs", "bench", "forkserver")
DEFAULT_RUN_TARGET_S = 12.0  # the default run on an H200 (issue)
STREAM_TARGET_S = 3.0  # streaming may cost at most this much more than the cached run
TERM_GRACE_S, KILL_GRACE_S = 10.0, 5.0  # a command past its timeout: SIGTERM, then SIGKILL, then given up on
# Kept back from the last check's timeout: its kill, the reads of its results, the table and the archive
RESERVE_S = TERM_GRACE_S + KILL_GRACE_S + 5.0


# ----------------------------------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Sizes:
    """How big each check is: the full sizes on CUDA, less with --quick, tiny on the CPU (--allow-cpu)."""

    default_steps: int | None = None  # None: the default config's trainer.steps
    log_every: int | None = None
    torchrun_steps: int = 50
    stream_images: int = 4096
    stream_batch: int = 64
    stream_steps: int = 192  # 3 epochs of 4096 images in batches of 64
    graphs_steps: int = 500
    bench: list[str] = field(default_factory=lambda: ["--steps", "30", "--warmup", "10", "--folder-n", "4000"])
    bench_rows: dict[str, str] = field(
        default_factory=lambda: {
            "mlp": "ganlab,precision=bf16",
            "dcgan": "ganlab,precision=bf16,data.cache=false",
            "stylegan2": "ganlab,precision=bf16",
        }
    )
    peak_tflops: float | None = None  # bench.py's fraction of peak FLOP/s (H200: 989 dense bf16)
    timeouts: dict[str, float] = field(
        default_factory=lambda: {
            "pytest": 180,  # about 45 short runs and two cold torch.compile builds
            "default": 60,
            "torchrun": 90,
            "nccl": 45,
            "stream": 75,  # each of the two runs
            "graphs": 60,  # each of the two runs
            "bench": 90,  # each workload
            "bench_row": 60,
        }
    )


def sizes_for(cuda: bool, quick: bool, steps: int | None) -> Sizes:
    s = Sizes()
    if quick:
        s.graphs_steps = 300
        s.bench = ["--steps", "15", "--warmup", "5", "--folder-n", "1000"]
        s.bench_rows = {"mlp": "ganlab", "dcgan": "ganlab", "stylegan2": "ganlab"}
    if not cuda:  # the plumbing on a CPU: tiny runs
        s.default_steps, s.log_every = 10, 5
        s.torchrun_steps, s.graphs_steps = 4, 4
        s.stream_images, s.stream_batch, s.stream_steps = 96, 32, 9
        s.bench = ["--steps", "2", "--warmup", "1", "--batch", "16", "--mnist-n", "128", "--folder-n", "32"]
        s.bench += ["--width", "4"]
        s.bench_rows = {"mlp": "ganlab", "dcgan": "ganlab"}
    if steps is not None:
        s.default_steps = s.torchrun_steps = s.graphs_steps = steps
        s.log_every = max(1, min(50, steps // 2))
    return s


# ----------------------------------------------------------------------------------------------------------------
# Running a command
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Proc:
    cmd: list[str]
    rc: int | None  # None: killed at its timeout
    out: str
    err: str
    seconds: float
    timeout: float

    @property
    def timed_out(self) -> bool:
        return self.rc is None

    def why(self) -> str:
        """One line on what went wrong: the timeout, or the last meaningful line of stderr (then stdout)."""
        if self.timed_out:
            return f"timed out after {self.timeout:.0f} s"
        for text in (self.err, self.out):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(" ")]
            if lines:
                return f"exit {self.rc}: {lines[-1][:160]}"
        return f"exit {self.rc}"


def run_command(
    cmd: list[str], timeout: float, log: Path | None = None, env: dict[str, str] | None = None, cwd: Path = REPO
) -> Proc:
    """Run cmd in its own process group, stdout and stderr to files; at the timeout, SIGTERM the whole group
    (ganlab then checkpoints and stops), and SIGKILL it TERM_GRACE_S later. Whatever of the group outlives the
    command (a DataLoader worker, a torchrun rank) is killed too: it would hold the GPU in the next check, and a
    new session outlives the caller."""
    work = Path(tempfile.mkdtemp(prefix="gpu_check_")) if log is None else log
    work.mkdir(parents=True, exist_ok=True)
    out_path, err_path = work / "stdout.txt", work / "stderr.txt"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    start = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=full_env, start_new_session=True)
        except OSError as error:
            return Proc(cmd, 127, "", str(error), 0.0, timeout)
        rc: int | None
        try:
            rc = proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            rc = None
            with _quietly():
                os.killpg(proc.pid, signal.SIGTERM)
            with _quietly(subprocess.TimeoutExpired):
                proc.wait(timeout=TERM_GRACE_S)
        with _quietly():  # the group's leftovers, also after a leader that exited on SIGTERM or by itself
            os.killpg(proc.pid, signal.SIGKILL)
        with _quietly(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE_S)
    seconds = time.perf_counter() - start
    result = Proc(cmd, rc, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"), seconds, timeout)
    if log is None:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _quietly(*more: type[BaseException]) -> contextlib.AbstractContextManager:
    """Ignore a process group that is already gone (or not ours to signal), and the given exceptions."""
    return contextlib.suppress(ProcessLookupError, PermissionError, *more)


# ----------------------------------------------------------------------------------------------------------------
# Reading what the commands printed
# ----------------------------------------------------------------------------------------------------------------

_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)\b")


def gpu_test_files() -> list[str]:
    """The test files that hold a CUDA test (`@pytest.mark.gpu`), relative to the repository: only those are
    collected, since the others import the developers' extras (hypothesis, scipy) that `pip install .` lacks."""
    found = [p for p in sorted((REPO / "tests").glob("test_*.py")) if "pytest.mark.gpu" in p.read_text()]
    return [str(p.relative_to(REPO)) for p in found]


def parse_pytest(text: str) -> dict[str, int] | None:
    """The counts of pytest's summary line ('2 failed, 7 passed, 1 skipped in 30.1s'), or None without one."""
    for line in reversed(text.splitlines()):
        if not re.search(r"\b(passed|failed|errors?|skipped|deselected|no tests ran)\b", line):
            continue
        if not re.search(r"\bin \d+(\.\d+)?s\b", line) and "no tests ran" not in line:
            continue
        counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "deselected": 0}
        for number, word in _PYTEST_COUNT.findall(line):
            word = "error" if word.startswith("error") else word
            counts[word] = counts.get(word, 0) + int(number)
        return counts
    return None


_OUTCOMES = "PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS"
# `pytest -v`: "tests/x.py::test_a " when a test starts, its outcome appended on the same line when it ends;
# under pytest-xdist (-n) the start is a line of its own and the end another: "[gw1] [ 40%] PASSED tests/x.py::test_a"
_PYTEST_VERBOSE = re.compile(rf"^(\S+\.py::.*?)(?: ({_OUTCOMES})\b.*)?$", re.MULTILINE)
_PYTEST_XDIST_END = re.compile(rf"^\[gw\d+\] \[\s*\d+%\] ({_OUTCOMES}) (\S+\.py::.*?)\s*$", re.MULTILINE)


def pytest_progress(text: str) -> tuple[dict[str, int], str | None]:
    """From `pytest -v` output (one process or pytest-xdist's) that may have been cut off at a timeout: the
    outcomes so far (passed, failed, ...) and the test that was running when it stopped (printed as started, no
    outcome yet; of several, the one that started first), or None."""
    counts: dict[str, int] = {}
    running: dict[str, None] = {}  # started, not ended, in the order they started
    ends = [(m.start(), m.group(2).strip(), m.group(1)) for m in _PYTEST_XDIST_END.finditer(text)]
    plain = [(m.start(), m.group(1).strip(), m.group(2)) for m in _PYTEST_VERBOSE.finditer(text)]
    for _, test, outcome in sorted(ends + plain):
        if outcome is None:
            running[test] = None
            continue
        counts[outcome.lower()] = counts.get(outcome.lower(), 0) + 1
        running.pop(test, None)
    return counts, next(iter(running), None)


def pytest_workers(cuda: bool) -> list[str]:
    """pytest-xdist's options where it is installed: the CUDA tests in a few processes (each its own CUDA
    context; the two cold torch.compile builds run side by side), so that they fit the check's timeout."""
    import importlib.util

    if importlib.util.find_spec("xdist") is None:
        return []
    workers = min(4 if cuda else 2, os.cpu_count() or 1)
    return ["-n", str(workers)] if workers > 1 else []


def pytest_failures(text: str) -> list[str]:
    """Test ids of the FAILED/ERROR lines of pytest's short summary (-rfE)."""
    return [m.group(2) for m in re.finditer(r"^(FAILED|ERROR) (\S+)", text, re.MULTILINE)]


def parse_bench(text: str) -> dict[str, dict[str, list[str]]]:
    """bench.py's tables: {workload: {row label: [cells after the label]}}; a failed row has ['failed: ...']."""
    tables: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = tables.setdefault(line[3:].strip(), {})
        elif current is not None and line.startswith("| ") and not line.startswith("| configuration"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            current[cells[0]] = cells[1:]
    return tables


_RATE = re.compile(r"step (\d+)/\d+ \|.*?\| ([\d,]+(?:\.\d+)?) img/s")


def rates_from_lines(text: str) -> list[tuple[int, float]]:
    """(step, images/s) of the plain progress lines ('step 50/2000 | D 1.2 G 0.8 | 12,345 img/s | eta 0m05s')."""
    return [(int(m.group(1)), float(m.group(2).replace(",", ""))) for m in _RATE.finditer(text)]


def rates_from_events(run_dir: Path) -> list[tuple[int, float, float]]:
    """(step, images/s, wall time) of the run's TensorBoard tag perf/images_per_s ([] where unreadable)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

        acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
        acc.Reload()
        if "perf/images_per_s" not in acc.Tags()["scalars"]:
            return []
        return [(e.step, e.value, e.wall_time) for e in acc.Scalars("perf/images_per_s")]
    except Exception:  # a missing or half-written log: fall back to the printed lines
        return []


def steady_rate(rates: list[float]) -> float | None:
    """The median images/s of the logged intervals after the first (which holds start-up and compilation)."""
    if not rates:
        return None
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def run_rate(run_dir: Path, proc: Proc) -> tuple[float | None, float | None, str]:
    """(steady images/s, last logged images/s, where they came from) of a finished run."""
    events = rates_from_events(run_dir)
    if events:
        values = [v for _, v, _ in events]
        return steady_rate(values), values[-1], "TensorBoard perf/images_per_s"
    lines = [r for _, r in rates_from_lines(proc.out + proc.err)]
    if lines:
        return steady_rate(lines), lines[-1], "printed lines"
    return None, None, "no images/s logged"


_FIRST_BATCH = re.compile(
    r"image_folder: first batch ([\d.]+) s after starting (\d+) workers \(started in ([\d.]+) s\); "
    r"the first draw waited ([\d.]+) s"
)
_STOPPED = re.compile(
    r"image_folder: stopped (\d+) workers in ([\d.]+) s; the loop waited ([\d.]+) s for (\d+) batches"
)


def run_log_text(run_dir: Path, proc: Proc) -> str:
    """The run's train.log, or what it printed where there is none."""
    log = run_dir / "train.log"
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")
    return proc.out + proc.err


def stream_timings(text: str) -> str:
    """A streaming run's own account of its time outside the steps, from the lines ganlab/data/image_folder.py
    logs: starting the workers, the first batch, the draws' waits and the shutdown."""
    parts = []
    first = _FIRST_BATCH.search(text)
    if first:
        workers, started, ready, waited = first[2], float(first[3]), float(first[1]), float(first[4])
        parts.append(f"{workers} workers started in {started:.2f} s, first batch after {ready:.2f} s")
        parts.append(f"first draw waited {waited:.2f} s")
    stopped = _STOPPED.search(text)
    if stopped:
        parts.append(f"all draws waited {float(stopped[3]):.2f} s for {stopped[4]} batches")
        parts.append(f"shutdown {float(stopped[2]):.2f} s")
    return ", ".join(parts) if parts else "no stream timings in its log"


def last_step(run_dir: Path) -> int | None:
    """The step of the run's checkpoints/last.pt, or None when there is none (or it does not load)."""
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        return None
    try:
        import torch

        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except Exception:
        return None


# ----------------------------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------------------------

PASS, FAIL, MISS, SKIP = "PASS", "FAIL", "MISS", "SKIP"  # MISS: it ran, but over its target


@dataclass
class Row:
    check: str
    status: str
    result: str
    seconds: float | None
    notes: str = ""

    @property
    def failed(self) -> bool:
        return self.status in (FAIL, MISS)


def fmt_rate(rate: float | None) -> str:
    return "no img/s" if rate is None else f"{rate:,.0f} img/s"


def table(rows: list[Row]) -> str:
    lines = ["| check | result | time | target/notes |", "|---|---|---|---|"]
    for r in rows:
        seconds = "-" if r.seconds is None else f"{r.seconds:.1f} s"
        cells = [r.check, f"{r.status}: {r.result}", seconds, r.notes or "-"]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def exit_status(rows: list[Row]) -> int:
    return 1 if any(r.failed for r in rows) else 0


def save_table(work: Path, rows: list[Row], title: str) -> None:
    """The rows so far as work/table.md, replaced whole (a reader never finds half a table)."""
    part = work / "table.md.part"
    part.write_text(f"## {title}\n\n{table(rows)}\n")
    part.replace(work / "table.md")


ARCHIVE_MAX_FILE = 1 << 20  # a run's checkpoints, sample grids and the stream check's PNGs stay out
ARCHIVE_SKIP = {".pt", ".png", ".jpg"}


def archive(work: Path, path: Path) -> None:
    """table.md, the commands' logs and the runs' small files (configs, TensorBoard events, train.log) as one
    .tar.gz, replaced whole; a file that vanishes while it is packed is left out."""
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with tarfile.open(part, "w:gz") as tar:
        for file in sorted(work.rglob("*")):
            if not file.is_file() or file.suffix in ARCHIVE_SKIP or file.name.endswith(".part"):
                continue
            with contextlib.suppress(OSError):
                if file.stat().st_size <= ARCHIVE_MAX_FILE:
                    tar.add(file, arcname=str(Path(work.name) / file.relative_to(work)))
    part.replace(path)


# ----------------------------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------------------------


class Checker:
    def __init__(self, work: Path, budget: float, sizes: Sizes, cuda: bool, gpu: str, gpus: int) -> None:
        self.work, self.sizes, self.cuda, self.gpu, self.gpus = work, sizes, cuda, gpu, gpus
        self.deadline = STARTED + budget
        self.device = "cuda" if cuda else "cpu"
        self.stream_again: tuple[list[str], float] | None = None  # the stream check's overrides and cached time

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def timeout(self, name: str) -> float | None:
        """The check's timeout, cut to the budget left (less what stopping it may take); None when too little is
        left to start it."""
        left = self.left() - RESERVE_S
        return None if left < 10 else min(self.sizes.timeouts[name], left)

    def why(self, proc: Proc) -> str:
        """What went wrong, and whether a timeout was the check's own or the end of the --budget."""
        if proc.timed_out and self.left() < RESERVE_S + 5:
            return proc.why() + " (the end of --budget)"
        return proc.why()

    def ganlab(self, name: str, overrides: list[str], timeout_name: str) -> tuple[Proc | None, Path]:
        run_dir = self.work / name
        timeout = self.timeout(timeout_name)
        if timeout is None:
            return None, run_dir
        cmd = [sys.executable, "-m", "ganlab", "train", *overrides]  # trainer.device=auto picks the GPU
        cmd += [] if self.cuda else ["trainer.device=cpu"]
        cmd.append(f"hydra.run.dir={run_dir}")
        return run_command(cmd, timeout, log=self.work / "logs" / name), run_dir

    def skipped(self, check: str, done: str = "") -> Row:
        """A check the budget did not reach, or did not let finish; `done`: what it measured before that."""
        notes = f"{self.left():.0f} s left of --budget" + (f"; {done}" if done else "")
        return Row(check, SKIP, "the budget is spent", None, notes)

    def step_overrides(self, steps: int | None) -> list[str]:
        out = [] if steps is None else [f"trainer.steps={steps}"]
        log_every = self.sizes.log_every
        if log_every is not None:
            out.append(f"trainer.log_every={log_every}")
        return out

    # a. pytest -m gpu
    def check_pytest(self) -> list[Row]:
        timeout = self.timeout("pytest")
        if timeout is None:
            return [self.skipped("pytest -m gpu")]
        try:
            import pytest  # noqa: F401
        except ImportError:
            return [Row("pytest -m gpu", SKIP, "pytest is not installed", None, "pip install pytest, then rerun")]
        files = gpu_test_files()
        # -v: each test's outcome on its own line as it ends, so a run cut off at its timeout still says how far
        # it got and which test it was in
        cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-rfEs", "-p", "no:cacheprovider"]
        cmd += [*pytest_workers(self.cuda), *files]
        proc = run_command(cmd, timeout, log=self.work / "logs" / "pytest")
        counts = parse_pytest(proc.out)
        where = ", ".join(Path(f).name for f in files)
        if proc.timed_out or counts is None:
            so_far, running = pytest_progress(proc.out)
            done = ", ".join(f"{n} {word}" for word, n in so_far.items()) or "no test ended"
            notes = f"{done}; stopped in {running.split('/')[-1]}" if running else f"{done}; {where}"
            return [Row("pytest -m gpu", FAIL, self.why(proc), proc.seconds, notes)]
        summary = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        summary += f", {counts['error']} errors" if counts["error"] else ""
        bad = pytest_failures(proc.out)
        notes = "failed: " + ", ".join(b.split("::")[-1] for b in bad[:4]) if bad else where
        if counts["failed"] or counts["error"] or proc.rc not in (0, 5):
            return [Row("pytest -m gpu", FAIL, summary, proc.seconds, notes)]
        if counts["passed"] == 0:
            status = FAIL if self.cuda else SKIP  # on CUDA, all skipped means the tests did not see the GPU
            return [Row("pytest -m gpu", status, summary, proc.seconds, "no CUDA test ran")]
        return [Row("pytest -m gpu", PASS, summary, proc.seconds, notes)]

    # b. the default run
    def check_default(self) -> list[Row]:
        check = "default run"
        proc, run_dir = self.ganlab("default", self.step_overrides(self.sizes.default_steps), "default")
        if proc is None:
            return [self.skipped(check)]
        if proc.rc != 0:
            return [Row(check, FAIL, self.why(proc), proc.seconds, "python -m ganlab train")]
        steady, last, source = run_rate(run_dir, proc)
        step = last_step(run_dir)
        result = f"{step} steps, {fmt_rate(steady)} (median), last {fmt_rate(last)}"
        events = rates_from_events(run_dir)
        train_s = f"; {events[-1][2] - events[0][2]:.1f} s from the first log to the last" if len(events) > 1 else ""
        if not self.cuda:
            return [Row(check, PASS, result, proc.seconds, f"CPU: no target; {source}{train_s}")]
        if "H200" not in self.gpu:
            notes = f"target <= {DEFAULT_RUN_TARGET_S:g} s is for an H200, not {self.gpu}; {source}{train_s}"
            return [Row(check, PASS, result, proc.seconds, notes)]
        met = proc.seconds <= DEFAULT_RUN_TARGET_S
        notes = f"target <= {DEFAULT_RUN_TARGET_S:g} s on an H200: {'met' if met else 'missed'}{train_s}"
        return [Row(check, PASS if met else MISS, result, proc.seconds, notes)]

    # d. torchrun
    def check_torchrun(self) -> list[Row]:
        check = "torchrun"
        nproc = max(1, min(2, self.gpus)) if self.cuda else 1
        timeout = self.timeout("torchrun")
        if timeout is None:
            return [self.skipped(check)]
        run_dir = self.work / "torchrun"
        steps = self.sizes.torchrun_steps
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        cmd += ["-m", "ganlab", "train", f"trainer.steps={steps}", f"trainer.device={self.device}"]
        cmd += [] if self.sizes.log_every is None else [f"trainer.log_every={self.sizes.log_every}"]
        cmd.append(f"hydra.run.dir={run_dir}")
        proc = run_command(cmd, timeout, log=self.work / "logs" / "torchrun")
        step = last_step(run_dir)
        if nproc == 1:
            group = "1 process: WORLD_SIZE=1, so ganlab joins no process group (NCCL not used; see the nccl row)"
        else:
            group = f"{nproc} processes, one per GPU, DDP over {'NCCL' if self.cuda else 'gloo'}"
        if proc.rc != 0:
            return [Row(check, FAIL, self.why(proc), proc.seconds, group)]
        if step != steps:
            return [Row(check, FAIL, f"no checkpoint at step {steps} (last.pt: {step})", proc.seconds, group)]
        return [Row(check, PASS, f"{steps} steps, checkpoints/last.pt at step {step}", proc.seconds, group)]

    def check_nccl(self) -> list[Row]:
        """One rank's all_reduce over NCCL, since a 1-process torchrun never joins a group (gloo on the CPU)."""
        backend, device = ("nccl", "cuda:0") if self.cuda else ("gloo", "cpu")
        check = f"{backend} all_reduce"
        timeout = self.timeout("nccl")
        if timeout is None:
            return [self.skipped(check)]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        code = (
            "import torch, torch.distributed as dist\n"
            f"dist.init_process_group('{backend}', init_method='tcp://127.0.0.1:{port}', rank=0, world_size=1)\n"
            f"x = torch.full((4,), 3.0, device='{device}')\n"
            "dist.all_reduce(x)\n"
            "v = torch.cuda.nccl.version() if x.is_cuda else torch.__version__\n"
            "print('version', '.'.join(map(str, v)) if isinstance(v, tuple) else v, float(x.sum()))\n"
            "dist.destroy_process_group()\n"
        )
        proc = run_command([sys.executable, "-c", code], timeout, log=self.work / "logs" / backend)
        found = re.search(r"^version (\S+) 12\.0$", proc.out, re.MULTILINE)
        notes = f"init_process_group, all_reduce, destroy on {device}"
        if proc.rc != 0 or not found:
            return [Row(check, FAIL, self.why(proc), proc.seconds, notes)]
        if not self.cuda:
            return [Row(check, PASS, "gloo, 1 rank", proc.seconds, f"CPU stand-in for NCCL; {notes}")]
        return [Row(check, PASS, f"NCCL {found.group(1)}, 1 rank", proc.seconds, notes)]

    # e. streaming against cached
    def check_stream(self) -> list[Row]:
        check = "stream vs cache"
        s = self.sizes
        if self.timeout("stream") is None:
            return [self.skipped(check)]
        sys.path.insert(0, str(SCRIPTS))
        import bench_baseline  # scripts/ is not a package

        start = time.perf_counter()
        root = bench_baseline.make_image_folder(self.work / "folder", n=s.stream_images, size=64)
        written = time.perf_counter() - start
        common = ["data=image_folder", f"data.root={root}", "data.image_size=64"]
        common += [f"trainer.steps={s.stream_steps}", f"trainer.batch_size={s.stream_batch}"]
        common += [] if s.log_every is None else [f"trainer.log_every={s.log_every}"]
        procs: dict[str, Proc] = {}
        for cache in ("true", "false"):
            proc, run_dir = self.ganlab(f"cache_{cache}", [*common, f"data.cache={cache}"], "stream")
            if proc is None:
                return [self.skipped(check, "; ".join(f"data.cache={c}: {p.seconds:.1f} s" for c, p in procs.items()))]
            procs[cache] = proc
            if proc.rc != 0:
                what = "cached" if cache == "true" else "streaming"
                return [Row(check, FAIL, f"{what}: {self.why(proc)}", proc.seconds, f"data.cache={cache}")]
        cached, streamed = procs["true"].seconds, procs["false"].seconds
        extra = streamed - cached
        epochs = s.stream_steps * s.stream_batch / s.stream_images
        result = f"cached {cached:.1f} s, streaming {streamed:.1f} s: {extra:+.1f} s"
        notes = f"{s.stream_images} PNGs (written in {written:.1f} s), {s.stream_steps} steps = {epochs:g} epochs"
        notes += f"; streaming: {stream_timings(run_log_text(run_dir, procs['false']))}"
        met = extra <= STREAM_TARGET_S
        if not met or not self.cuda:  # the forkserver check runs it again last; on the CPU, to test the script
            self.stream_again = ([*common, "data.cache=false"], cached)
        if not self.cuda:
            return [Row(check, PASS, result, cached + streamed, f"CPU: no target; {notes}")]
        notes = f"target: streaming <= {STREAM_TARGET_S:g} s more ({'met' if met else 'missed'}); {notes}"
        return [Row(check, PASS if met else MISS, result, cached + streamed, notes)]

    # g. streaming again, its workers from a fork server
    def check_forkserver(self) -> list[Row]:
        """Where streaming missed its target: the same run with workers from a fork server, which tells whether
        forking after CUDA has started is what cost the time (pytorch/pytorch#68383), in the same session."""
        if self.stream_again is None:
            return []  # the stream check met its target, or did not run
        check = "stream, forkserver"
        overrides, cached = self.stream_again
        proc, run_dir = self.ganlab("stream_forkserver", [*overrides, "data.start_method=forkserver"], "stream")
        if proc is None:
            return [self.skipped(check)]
        if proc.rc != 0:
            return [Row(check, FAIL, self.why(proc), proc.seconds, "data.start_method=forkserver")]
        extra = proc.seconds - cached
        result = f"streaming {proc.seconds:.1f} s: {extra:+.1f} s against cached"
        notes = f"data.start_method=forkserver; {stream_timings(run_log_text(run_dir, proc))}"
        if not self.cuda:
            return [Row(check, PASS, result, proc.seconds, f"CPU: no target; {notes}")]
        met = extra <= STREAM_TARGET_S
        notes = f"target: streaming <= {STREAM_TARGET_S:g} s more ({'met' if met else 'missed'}); {notes}"
        return [Row(check, PASS if met else MISS, result, proc.seconds, notes)]

    # f. CUDA graphs on and off
    def check_graphs(self) -> list[Row]:
        on = "true" if self.cuda else "auto"  # ganlab refuses cuda_graphs=true off CUDA; auto is off there
        check = f"cuda_graphs false/{on}"
        results: dict[str, tuple[Proc, float | None]] = {}
        for value in ("false", on):
            overrides = [*self.step_overrides(self.sizes.graphs_steps), f"trainer.cuda_graphs={value}"]
            proc, run_dir = self.ganlab(f"graphs_{value}", overrides, "graphs")
            if proc is None:
                done = "; ".join(f"cuda_graphs={v}: {fmt_rate(rate)}" for v, (_, rate) in results.items())
                return [self.skipped(check, done)]
            if proc.rc != 0:
                return [Row(check, FAIL, f"cuda_graphs={value}: {self.why(proc)}", proc.seconds, "trainer.cuda_graphs")]
            results[value] = (proc, run_rate(run_dir, proc)[0])
        (off, off_rate), (with_on, on_rate) = results["false"], results[on]
        result = (
            f"false {fmt_rate(off_rate)} in {off.seconds:.1f} s; {on} {fmt_rate(on_rate)} in {with_on.seconds:.1f} s"
        )
        ratio = f"{on}/false = {on_rate / off_rate:.2f}x; " if on_rate and off_rate else ""
        notes = f"{ratio}default run, {self.sizes.graphs_steps} steps each"
        return [Row(check, PASS, result, off.seconds + with_on.seconds, notes)]

    # c. bench.py, one workload at a time
    def check_bench(self) -> list[Row]:
        rows = []
        # StyleGAN2 at its preset's widths takes minutes a step on a CPU: its workload is for the GPU
        workloads = ("mlp", "dcgan", "stylegan2") if self.device == "cuda" else ("mlp", "dcgan")
        for workload in workloads:
            check = f"bench {workload}"
            timeout = self.timeout("bench")
            if timeout is None:
                rows.append(self.skipped(check))
                continue
            only = self.sizes.bench_rows[workload]
            row_timeout = min(self.sizes.timeouts["bench_row"], timeout)
            cmd = [sys.executable, "scripts/bench.py", "--workloads", workload, "--only", only]
            cmd += [*self.sizes.bench, "--device", self.device, "--row-timeout", f"{row_timeout:g}"]
            if self.sizes.peak_tflops:
                cmd += ["--peak-tflops", f"{self.sizes.peak_tflops:g}"]
            proc = run_command(cmd, timeout, log=self.work / "logs" / f"bench_{workload}")
            got = parse_bench(proc.out).get(workload, {})
            wanted = ["baseline (reference loop)", *only.split(",")]
            missing = [w for w in wanted if w not in got]
            failed = [w for w in wanted if w in got and got[w][0].startswith("failed")]
            shown = [w for w in wanted if w in got and w not in failed]
            cells = [f"{w.split(' ')[0]} {got[w][0]} img/s ({got[w][-1]})" for w in shown]
            notes = f"--only {only}; {' '.join(self.sizes.bench)}; rows within {row_timeout:.0f} s each"
            peak = [line for line in proc.out.splitlines() if "TFLOP/s peak" in line]
            notes = f"{peak[-1].strip()}; {notes}" if peak else notes
            if proc.rc != 0 or missing or failed:
                why = self.why(proc) if proc.rc != 0 else ""
                bad = [f"{w}: {got[w][0]}" for w in failed] + [f"no row {w!r}" for w in missing]
                text = "; ".join(x for x in [why, *bad] if x)
                rows.append(Row(check, FAIL, text[:300], proc.seconds, "; ".join(cells) or notes))
                continue
            rows.append(Row(check, PASS, "; ".join(cells), proc.seconds, notes))
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=360, help="seconds for the whole script, checks and all")
    parser.add_argument("--quick", action="store_true", help="fewer bench rows and steps, shorter graphs runs")
    parser.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated, of {', '.join(CHECKS)}")
    parser.add_argument("--steps", type=int, default=None, help="trainer.steps of the default/torchrun/graphs runs")
    parser.add_argument("--keep", type=Path, default=None, help="keep the logs and run directories here")
    parser.add_argument(
        "--archive", type=Path, default=None, help="after each check, pack the table and logs into this .tar.gz"
    )
    parser.add_argument("--allow-cpu", action="store_true", help="without CUDA, run tiny checks on the CPU")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's peak, for bench's FLOP/s fraction")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(CHECKS))
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    if not args.budget > 0 or (args.steps is not None and args.steps < 1):
        parser.error(f"--budget must be > 0 seconds and --steps >= 1, got {args.budget:g} and {args.steps}")
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        parser.error(f"--peak-tflops must be > 0, got {args.peak_tflops:g}")

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print(
            "gpu_check: no CUDA device is visible to torch "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); nothing to check. "
            "--allow-cpu runs the checks on the CPU with tiny sizes (to test this script).",
            file=sys.stderr,
        )
        return 2
    gpu = torch.cuda.get_device_name(0) if cuda else "CPU"
    gpus = torch.cuda.device_count() if cuda else 0
    sizes = sizes_for(cuda, args.quick, args.steps)
    sizes.peak_tflops = args.peak_tflops
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="ganlab_gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    checker = Checker(work, args.budget, sizes, cuda, gpu, gpus)
    print(f"# ganlab gpu_check on {gpu} ({gpus} GPU(s)); torch {torch.__version__}; budget {args.budget:g} s")
    print(f"# logs and runs: {work}", flush=True)

    rows: list[Row] = []
    for name in CHECKS:  # a fixed order: the cheap, telling checks first, the benchmark last
        if name not in wanted:
            continue
        print(f"[{args.budget - checker.left():6.1f} s] {name} ...", flush=True)
        try:
            new = getattr(checker, f"check_{name}")()
        except Exception as error:  # a bug in a check is one failed row, not a lost table
            new = [Row(name, FAIL, f"gpu_check error: {type(error).__name__}: {error}", None)]
        for row in new:
            print(f"           {row.check}: {row.status} ({row.result})", flush=True)
        rows += new
        save_table(work, rows, f"gpu_check on {gpu}, torch {torch.__version__}, {args.budget - checker.left():.0f} s")
        if args.archive is not None:
            archive(work, args.archive)

    print(f"\n## gpu_check: {gpu}, torch {torch.__version__}, {args.budget - checker.left():.0f} s\n")
    print(table(rows))
    status = exit_status(rows)
    if args.keep is None and status == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nlogs and runs kept in {work}")
    return status


if __name__ == "__main__":
    sys.exit(main())
