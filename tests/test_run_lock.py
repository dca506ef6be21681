"""One run per run directory (ganlab/jobs/run_lock.py), against real processes: a holder in another process, a
second run refused with exit code 2 and the holder's pid, resume= of a run still going refused, and a SIGKILLed
holder that leaves no lock behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from ganlab.jobs.run_lock import LOCK_FILE
from tests.conftest import REPO, cli_exit

HOLD = """
import sys
from pathlib import Path
from ganlab.jobs.run_lock import hold_run_dir

with hold_run_dir(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin, or kills us
"""


@pytest.fixture
def holder() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """Start a process that holds a run directory, as a running `ganlab train` does; returns it once it does."""
    started: list[subprocess.Popen] = []

    def hold(run_dir: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(run_dir)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
        return proc

    yield hold
    for proc in started:
        proc.kill()
        proc.wait()


def step_of(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"]


def test_a_second_run_into_a_held_directory_exits_2_and_a_sigkill_frees_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], holder: Callable[[Path], subprocess.Popen]
) -> None:
    run = tmp_path / "run"
    assert cli_exit(["train", "debug=fast", f"hydra.run.dir={run}"], capsys)[0] == 0
    assert (run / LOCK_FILE).is_file()  # left behind, but not locked: the next run gets in
    overrides_before = (run / ".hydra" / "overrides.yaml").read_text()
    proc = holder(run)
    who = f"process {proc.pid} on {socket.gethostname()}, started "

    code, err = cli_exit(["train", "debug=fast", "trainer.steps=6", f"hydra.run.dir={run}"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"ganlab: error: {run} is in use by another run ({who}")
    assert "overwrite each other's checkpoints" in err
    assert step_of(run) == 4 and (run / ".hydra" / "overrides.yaml").read_text() == overrides_before

    code, err = cli_exit(["train", f"resume={run}", "trainer.steps=6"], capsys)
    assert code == 2 and f"resume={run}: the run in {run} is still going ({who}" in err
    assert step_of(run) == 4

    proc.send_signal(signal.SIGKILL)  # no chance to let go: the kernel releases the lock
    proc.wait()
    code, err = cli_exit(["train", f"resume={run}", "trainer.steps=6"], capsys)
    assert code == 0, err
    assert step_of(run) == 6


def test_each_job_of_a_sweep_holds_its_own_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], holder: Callable[[Path], subprocess.Popen]
) -> None:
    """Job 0's directory is held by another process: job 0 is refused (and its directory left to the holder,
    though nothing of a run is in it yet), job 1 runs."""
    sweep = tmp_path / "sweep"
    proc = holder(sweep / "0")
    code, err = cli_exit(["train", "-m", "debug=fast", "seed=0,1", f"hydra.sweep.dir={sweep}"], capsys)
    assert code == 2
    assert f"{sweep / '0'} is in use by another run (process {proc.pid} on " in err
    assert (sweep / "0" / LOCK_FILE).is_file() and not (sweep / "0" / "checkpoints").exists()
    assert step_of(sweep / "1") == 4


def test_a_new_run_into_a_directory_holding_a_run_is_refused_before_hydra_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without resume= a second run into a finished run's directory overwrote its checkpoint, appended to its
    train.log and stacked a second event file on the first, with exit 0."""
    run = tmp_path / "run"
    assert cli_exit(["train", "debug=fast", "trainer.steps=6", f"hydra.run.dir={run}"], capsys)[0] == 0
    kept = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != LOCK_FILE}

    code, err = cli_exit(["train", "debug=fast", f"hydra.run.dir={run}"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err == (
        f"ganlab: error: hydra.run.dir={run} already holds a run (checkpoints/last.pt): a new run there would "
        "overwrite it. Continue that run with resume=auto, or give another hydra.run.dir.\n"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != LOCK_FILE} == kept

    assert cli_exit(["train", "debug=fast", "trainer.steps=8", f"hydra.run.dir={run}", "resume=auto"], capsys)[0] == 0
    assert step_of(run) == 8


def test_a_new_sweep_into_a_sweep_directory_with_trained_jobs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    assert cli_exit(["train", "-m", "debug=fast", "seed=0,1", f"hydra.sweep.dir={sweep}"], capsys)[0] == 0
    kept = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file() and p.name != LOCK_FILE}

    code, err = cli_exit(["train", "-m", "debug=fast", "seed=5,6", f"hydra.sweep.dir={sweep}"], capsys)
    assert code == 2 and "Traceback" not in err
    assert f"hydra.sweep.dir={sweep} already holds a sweep whose jobs have checkpoints (0, 1)" in err
    assert "Re-run that sweep's command with resume=auto" in err
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file() and p.name != LOCK_FILE} == kept
