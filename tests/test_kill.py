"""SIGKILL at random moments, some in the middle of a checkpoint write: every run resumes with resume=auto and
loses at most `checkpoint_every` steps."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main
from tests.conftest import REPO

STEPS, EVERY = 40, 5
HELPER = REPO / "tests" / "slow_checkpoint_cli.py"


def command(run_dir: Path) -> list[str]:
    return [
        sys.executable, str(HELPER), "train", "debug=fast", f"trainer.steps={STEPS}",
        f"trainer.checkpoint_every={EVERY}", "trainer.log_every=1", "trainer.sample_every=1000",
        "resume=auto", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip


def kill_at(run_dir: Path, target: int, delay: float = 0.0) -> int:
    """Start the run, SIGKILL it `delay` s after it logs step `target`; return the last step it logged."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command(run_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    last_logged = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"step (\d+)/", line)
        if found:
            last_logged = int(found.group(1))
            if last_logged >= target:
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
    rest = proc.communicate(timeout=60)[0]  # anything logged before the kill took effect
    logged = [int(s) for s in re.findall(r"step (\d+)/", rest)]
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, rest
    return max([last_logged, *logged])


def kill_and_resume(run_dir: Path, target: int, delay: float = 0.0) -> bool:
    """Kill at `target`, check the loss, resume to the end; returns whether a checkpoint write was cut short."""
    logged = kill_at(run_dir, target, delay)
    ckpt = run_dir / "checkpoints" / "last.pt"
    cut_short = any(p.name.startswith(".last.pt.tmp-") for p in ckpt.parent.glob(".*"))
    saved = load_checkpoint(ckpt)["step"] if ckpt.is_file() else 0
    assert logged - saved <= EVERY, f"killed after step {logged}, but the last checkpoint is at step {saved}"
    main(command(run_dir)[2:])  # the resume, in-process: what is tested is what the kill left on disk
    assert load_checkpoint(ckpt)["step"] == STEPS
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name != "last.pt"]
    assert leftovers == [], leftovers  # no temp file of the interrupted write is left behind
    return cut_short


@pytest.mark.slow  # 7 s; the default suite keeps run_lock's SIGKILL and the full-disk checkpoint tests
def test_sigkill_in_the_middle_of_a_checkpoint_write(tmp_path: Path) -> None:
    # Step 10 is logged, then its checkpoint is written, slowly (0.3 s): a kill 0.1 s later lands inside it.
    assert kill_and_resume(tmp_path / "run", target=2 * EVERY, delay=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_sigkill_at_many_random_moments(tmp_path: Path, seed: int) -> None:  # ~20 s each
    kill_and_resume(tmp_path / "run", target=random.Random(seed).randint(1, STEPS - 1))
