"""Fault injection: NaNs at a chosen step (stop or roll back), rolling checkpoints, corrupted and malicious
checkpoint files, full disks and unwritable folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.errors import RunStopped
from ganlab.losses.base import GANLoss
from ganlab.train import train
from tests.conftest import compose_cfg, read_events

COMMON = ["trainer.steps=8", "trainer.checkpoint_every=2", "trainer.log_every=2"]


def inject_nan(monkeypatch: pytest.MonkeyPatch, at_g_steps: set[int]) -> None:
    """Make the generator loss NaN at the given G steps, counted over the whole process (a rollback repeats
    steps, but not their count): the NaN flows into G's gradients and weights, as a real blow-up does."""
    original = GANLoss.g_loss
    calls = {"n": 0}

    def g_loss(self: GANLoss, D: torch.nn.Module, fake: torch.Tensor) -> tuple:
        calls["n"] += 1
        loss, stats = original(self, D, fake)
        return (loss * float("nan"), stats) if calls["n"] in at_g_steps else (loss, stats)

    monkeypatch.setattr(GANLoss, "g_loss", g_loss)


def test_on_nan_stop_names_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_nan(monkeypatch, {5})
    with pytest.raises(RunStopped) as stopped:
        train(compose_cfg(*COMMON), tmp_path)
    message = str(stopped.value)
    assert message.startswith("training diverged at step 5:")  # where it began, though seen at step 6
    assert f"{tmp_path / 'checkpoints' / 'last.pt'} (step 4), is kept" in message
    kept = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert kept["step"] == 4
    assert all(torch.isfinite(v).all() for v in kept["G"].values() if v.is_floating_point())


def test_on_nan_rollback_goes_back_lowers_the_rates_and_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_nan(monkeypatch, {5})
    train(compose_cfg(*COMMON, "trainer.on_nan=rollback"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 8 and state["rollbacks"] == 1
    assert all(torch.isfinite(v).all() for net in ("G", "D") for v in state[net].values() if v.is_floating_point())
    assert [g["lr"] for g in state["opt_G"]["param_groups"]] == [pytest.approx(1e-4)]  # 2e-4 x 0.5
    scalars, _ = read_events(tmp_path)
    assert [s for s, _ in scalars["loss/G"]] == [2, 4, 6, 8]  # the rolled-back steps appear once
    assert scalars["lr/G"][-1][1] == pytest.approx(1e-4)
    # A later resume keeps the lowered rates: the config's, times 0.5 per rollback so far.
    train(compose_cfg(*COMMON[1:], "trainer.steps=10", "trainer.on_nan=rollback", f"resume={tmp_path}"), tmp_path)
    resumed = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert [g["lr"] for g in resumed["opt_D"]["param_groups"]] == [pytest.approx(1e-4)]


def test_on_nan_rollback_stops_after_max_rollbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inject_nan(monkeypatch, {5, 7})  # G step 7 is step 5 again after the first rollback
    cfg = compose_cfg(*COMMON, "trainer.on_nan=rollback", "trainer.max_rollbacks=1")
    with pytest.raises(RunStopped, match=r"diverged at step 5: .*already been rolled back 1 time"):
        train(cfg, tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4


def test_on_nan_rollback_without_a_checkpoint_yet_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inject_nan(monkeypatch, {1})
    cfg = compose_cfg("trainer.steps=4", "trainer.checkpoint_every=4", "trainer.log_every=1", "trainer.on_nan=rollback")
    with pytest.raises(RunStopped, match="No checkpoint had been written yet"):
        train(cfg, tmp_path)


def test_keep_last_keeps_the_newest_periodic_checkpoints(tmp_path: Path) -> None:
    train(compose_cfg("trainer.steps=10", "trainer.checkpoint_every=2", "trainer.keep_last=2"), tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == [
        "last.pt",
        "step_0000008.pt",
        "step_0000010.pt",
    ]
    cfg = compose_cfg("trainer.steps=10", "trainer.checkpoint_every=2", "trainer.keep_last=1", "trainer.keep_every=3")
    train(cfg, tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir())
    assert names == ["last.pt", "step_0000003.pt", "step_0000006.pt", "step_0000009.pt", "step_0000010.pt"]


def test_nan_checks_cost_no_sync_between_log_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch reads the device only when the loop syncs anyway: a NaN at step 1 is seen at step 4."""
    inject_nan(monkeypatch, {1})
    cfg = compose_cfg("trainer.steps=8", "trainer.checkpoint_every=4", "trainer.log_every=4")
    with pytest.raises(RunStopped, match=r"diverged at step 1: .*No checkpoint had been written yet"):
        train(cfg, tmp_path)
