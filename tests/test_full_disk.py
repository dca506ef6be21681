"""A full disk, for real: runs on a small mounted filesystem that a filler file fills (the `small_disk` fixture).

Each writer of a run (checkpoints, status.json, sample pictures, TensorBoard's event file) and `ganlab eval`'s
metrics.json must stop with a message that names the folder, a non-zero exit code and no temp file, and the
last good checkpoint must stay loadable at its step. Where the filler goes in mid-run, a wrapper fills the disk
just before the writer under test runs: the failure itself is the filesystem's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.conftest import cli_exit, fill_disk

FIRST = ["debug=fast"]  # 4 steps: checkpoints/last.pt at step 4


def first_run(disk: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    run = disk / "run"
    code, err = cli_exit(["train", *FIRST, f"hydra.run.dir={run}"], capsys)
    assert code == 0, err
    return run


def assert_stopped_cleanly(code: int, err: str, expected_code: int, disk: Path, run: Path) -> None:
    assert code == expected_code, err
    assert "Traceback" not in err and "Exception in thread" not in err, err
    assert [str(p) for p in disk.rglob("*.tmp*")] == []
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 4  # the last good one


def fill_before(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, disk: Path) -> None:
    """Fill the disk just before the first call of `owner.name`, then call it."""
    original: Callable = getattr(owner, name)
    filled = []

    def wrapper(*args: object, **kwargs: object) -> object:
        if not filled:
            fill_disk(disk)
            filled.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


def resume(run: Path, *overrides: str) -> list[str]:
    return ["train", "debug=fast", f"resume={run}", "trainer.steps=8", *overrides]


def test_a_checkpoint_on_a_full_disk(small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = first_run(small_disk, capsys)
    fill_disk(small_disk, leave=40_000)  # room for the small files, not for a checkpoint (about 120 kB)
    code, err = cli_exit(resume(run), capsys)
    assert_stopped_cleanly(code, err, 1, small_disk, run)
    assert f"could not write the checkpoint {run / 'checkpoints' / 'last.pt'} at step 6" in err
    assert f"(No space left in {run / 'checkpoints'}: the file needs about 11" in err and " kB free)" in err


def test_status_json_on_a_full_disk(
    small_disk: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganlab.status import RunStatus

    run = first_run(small_disk, capsys)
    fill_before(monkeypatch, RunStatus, "__enter__", small_disk)  # its first write, before step 5
    code, err = cli_exit(resume(run), capsys)
    assert_stopped_cleanly(code, err, 1, small_disk, run)
    assert f"could not write {run / 'status.json'} (No space left in {run}: the file needs about " in err
    assert f"0 bytes free). Free some space, then continue with: ganlab train resume={run}." in err


def test_a_sample_picture_on_a_full_disk(
    small_disk: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganlab import pictures

    run = first_run(small_disk, capsys)
    fill_before(monkeypatch, pictures, "save_png", small_disk)  # at step 6
    code, err = cli_exit(resume(run), capsys)
    assert_stopped_cleanly(code, err, 1, small_disk, run)
    assert f"could not write {run / 'samples' / 'step_0000006.png'} (No space left in {run / 'samples'}: " in err
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]


def test_the_tensorboard_event_file_on_a_full_disk(
    small_disk: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorBoard appends to its event file from a thread of its own. On a full disk that thread dies with the
    error (Python would print its traceback) and the next call from the loop raises it again without a file
    name; the run must stop there with one message instead."""
    from ganlab.run_log import RunLogger

    run = first_run(small_disk, capsys)
    fill_before(monkeypatch, RunLogger, "scalars", small_disk)
    # A scalar a step and no other writes until the end: the event file outgrows its last block within steps.
    every_step = ["trainer.steps=200", "trainer.log_every=1", "trainer.sample_every=1000"]
    code, err = cli_exit(resume(run, *every_step, "trainer.checkpoint_every=1000"), capsys)
    assert_stopped_cleanly(code, err, 1, small_disk, run)
    assert f"could not write {run}/events.out.tfevents." in err and f"(No space left in {run}: 0 bytes free)" in err


def test_eval_metrics_json_on_a_full_disk(small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = first_run(small_disk, capsys)
    code, err = cli_exit(["eval", f"run={run}", "n=100"], capsys)
    assert code == 0, err
    before = (run / "metrics.json").read_bytes()
    fill_disk(small_disk)
    code, err = cli_exit(["eval", f"run={run}", "n=100", "seed=1"], capsys)
    assert code == 2 and "Traceback" not in err
    assert f"out={run / 'metrics.json'}: cannot write there (No space left in {run}: the file needs about " in err
    assert (run / "metrics.json").read_bytes() == before
    assert [str(p) for p in small_disk.rglob("*.tmp*")] == []
