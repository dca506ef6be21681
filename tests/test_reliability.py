"""Fault injection: NaNs at a chosen step (stop or roll back), rolling checkpoints, corrupted and malicious
checkpoint files, full disks and unwritable folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.errors import RunStopped
from ganlab.losses.base import AdversarialLoss
from ganlab.train import train
from tests.conftest import compose_cfg, read_events

COMMON = ["trainer.steps=8", "trainer.checkpoint_every=2", "trainer.log_every=2"]


def inject_nan(monkeypatch: pytest.MonkeyPatch, at_g_steps: set[int]) -> None:
    """Make the generator loss NaN at the given G steps, counted over the whole process (a rollback repeats
    steps, but not their count): the NaN flows into G's gradients and weights, as a real blow-up does."""
    original = AdversarialLoss.g_loss
    calls = {"n": 0}

    def g_loss(self: AdversarialLoss, D: torch.nn.Module, fake: torch.Tensor, batch: object = None) -> tuple:
        calls["n"] += 1
        loss, stats = original(self, D, fake, batch)
        return (loss * float("nan"), stats) if calls["n"] in at_g_steps else (loss, stats)

    monkeypatch.setattr(AdversarialLoss, "g_loss", g_loss)


def test_on_nan_stop_names_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_nan(monkeypatch, {5})
    with pytest.raises(RunStopped) as stopped:
        train(compose_cfg(*COMMON), tmp_path)
    message = str(stopped.value)
    assert message.startswith("training diverged at step 5:")  # where it began, though seen at step 6
    assert "try trainer.on_nan=rollback" in message
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
    with pytest.raises(RunStopped, match=r"diverged at step 5: .*already been rolled back 1 time") as stopped:
        train(cfg, tmp_path)
    assert "max_rollbacks" in str(stopped.value) and "try trainer.on_nan=rollback" not in str(stopped.value)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4


def test_on_nan_rollback_without_a_checkpoint_yet_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inject_nan(monkeypatch, {1})
    cfg = compose_cfg("trainer.steps=4", "trainer.checkpoint_every=4", "trainer.log_every=1", "trainer.on_nan=rollback")
    with pytest.raises(RunStopped, match="No checkpoint had been written yet") as stopped:
        train(cfg, tmp_path)
    message = str(stopped.value)  # it says why rollback could not help, and does not suggest it again
    assert (
        "on_nan=rollback had no checkpoint to go back to (trainer.checkpoint_every=4 writes the first at step 4)"
        in message
    )
    assert "try trainer.on_nan=rollback" not in message


def test_the_advice_after_a_divergence_does_not_suggest_the_run_s_own_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_nan(monkeypatch, {1})
    with pytest.raises(RunStopped) as stopped:
        train(compose_cfg("trainer.steps=2", "trainer.log_every=1", "loss=hinge"), tmp_path)
    assert "a steadier loss such as loss=wgan_gp." in str(stopped.value) and "loss=hinge" not in str(stopped.value)


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


def _finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for net in ("G", "D") for v in state[net].values() if v.is_floating_point())


def test_resume_auto_starts_fresh_then_continues_from_the_newest_good_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = ["trainer.checkpoint_every=2", "trainer.keep_last=3", "resume=auto"]
    train(compose_cfg(*cfg, "trainer.steps=6"), tmp_path)  # nothing to resume: a fresh start
    ckpts = tmp_path / "checkpoints"
    assert load_checkpoint(ckpts / "last.pt")["step"] == 6
    # A crash mid-write of a kind the atomic rename rules out, or a disk that lost data: both newest are bad.
    (ckpts / "last.pt").write_bytes((ckpts / "last.pt").read_bytes()[:1000])
    (ckpts / "step_0000006.pt").write_bytes(b"\x00" * 64)
    with caplog.at_level("WARNING", logger="ganlab"):
        train(compose_cfg(*cfg, "trainer.steps=8"), tmp_path)
    assert f"skipping {ckpts / 'last.pt'}" in caplog.text and f"skipping {ckpts / 'step_0000006.pt'}" in caplog.text
    state = load_checkpoint(ckpts / "last.pt")
    assert state["step"] == 8 and _finite(state)
    scalars, _ = read_events(tmp_path)
    steps = [s for s, _ in scalars["loss/D"]]  # two runs in one second: their files may be read in any order
    assert sorted(steps) == [2, 4, 6, 8]  # steps 5-6 redone after step 4, logged once


def test_a_truncated_last_pt_is_named_on_explicit_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ganlab.cli import main

    train(compose_cfg(), tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:-100])
    with pytest.raises(SystemExit) as exit_info:
        main(["train", f"resume={tmp_path}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert f"resume={last}: not a readable ganlab checkpoint" in err and "resume=auto falls back" in err


class _Payload:
    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/ganlab-checkpoint-pwned")


def test_a_malicious_checkpoint_is_refused_and_its_code_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pickle

    from ganlab.cli import main

    MARKER.unlink(missing_ok=True)
    evil = tmp_path / "run" / "checkpoints" / "last.pt"
    evil.parent.mkdir(parents=True)
    evil.write_bytes(pickle.dumps({"format": "ganlab-checkpoint-v1", "step": _Payload()}))
    for command in (["train", f"resume={tmp_path / 'run'}"], ["sample", f"run={evil}"], ["eval", f"run={evil}"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "not a readable ganlab checkpoint (UnpicklingError" in err
    assert not MARKER.exists()
    # resume=auto skips it like any unreadable file, and starts fresh.
    train(compose_cfg("resume=auto"), tmp_path / "run")
    assert load_checkpoint(evil)["step"] == 4 and not MARKER.exists()


def test_a_full_disk_during_a_checkpoint_write_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import ganlab.checkpoint as checkpoint_module

    train(compose_cfg(), tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj: object, f: object, *args: object, **kwargs: object) -> None:
        real_save(obj, f, *args, **kwargs)  # some bytes reach the temp file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(RunStopped, match=r"could not write the checkpoint .*last.pt at step 6 \(No space left"):
        train(compose_cfg("trainer.steps=6", f"resume={tmp_path}"), tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.pt"]  # no temp file left


def test_an_unwritable_run_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ganlab.cli import main

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "debug=fast", f"hydra.run.dir={blocker / 'run'}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert f"cannot write {blocker / 'run'}: Not a directory" in err


def test_out_of_memory_suggests_a_smaller_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What CUDA raises when the batch does not fit (simulated: no GPU here)."""
    from ganlab.cli import main
    from ganlab.models.dcgan import DCGANGenerator

    def oom(self: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(DCGANGenerator, "forward", oom)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "debug=fast", "trainer.batch_size=64", f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert "out of memory on cpu with trainer.batch_size=64: try trainer.batch_size=32" in err


@pytest.mark.parametrize(
    "error, is_oom",
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory"), True),
        (RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"), True),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), False),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x100 and 128x256)"), False),
        (ValueError("out of memory"), False),  # not torch's
    ],
)
def test_what_counts_as_running_out_of_memory(error: BaseException, is_oom: bool) -> None:
    """torch's own OutOfMemoryError, and what CUDA, cuBLAS, cuDNN and the CPU allocator say when their own
    allocations fail (those arrive as plain RuntimeErrors): each gets the batch-size advice, not a traceback."""
    from ganlab.errors import out_of_memory

    assert out_of_memory(error) is is_oom


def test_overrides_cannot_call_arbitrary_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ganlab.cli import main

    MARKER.unlink(missing_ok=True)
    for overrides in (
        ["loss._target_=os.system", f"+loss.command=touch {MARKER}"],
        ["+model.generator.init._target_=os.system", f"+model.generator.init.command=touch {MARKER}"],
        ["optimizer.generator._target_=builtins.eval", f"+optimizer.generator.source=\"open('{MARKER}', 'w')\""],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "debug=fast", *overrides, f"hydra.run.dir={tmp_path}"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "is not a ganlab or torch.optim class" in err, err
    assert not MARKER.exists()


def test_a_checkpoint_whose_config_names_foreign_code_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint that loads safely (plain data) but whose stored config would call os.system."""
    from ganlab.checkpoint import save_checkpoint
    from ganlab.cli import main

    train(compose_cfg(), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    state["config"]["model"]["generator"] = {"_target_": "os.system", "command": f"touch {MARKER}"}
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, tmp_path / "evil.pt")
    MARKER.unlink(missing_ok=True)
    for command in ("sample", "eval"):
        with pytest.raises(SystemExit):
            main([command, f"run={tmp_path / 'evil.pt'}"])
        assert "_target_=os.system is not a ganlab or torch.optim class" in capsys.readouterr().err
    assert not MARKER.exists()
    monkeypatch.setenv("GANLAB_TRUSTED_TARGETS", "os.")  # what trusting your own module looks like
    from ganlab.targets import check_targets

    check_targets({"_target_": "os.system"})


def test_a_checkpoint_with_an_edited_config_is_refused_by_every_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint edited by hand (or written by another program) that lacks what a command reads from it gave
    KeyError and TypeError tracebacks; its config filled in with today's defaults gave a size-mismatch RuntimeError."""
    from ganlab.checkpoint import save_checkpoint
    from tests.conftest import cli_exit

    train(compose_cfg(), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    del state["format"]

    def edited(name: str, change: object) -> Path:
        copy = {**state, "config": {**state["config"], "model": dict(state["config"]["model"])}}
        change(copy)  # type: ignore[operator]
        save_checkpoint(copy, tmp_path / name)
        return tmp_path / name

    renamed = edited("renamed.pt", lambda s: s["config"]["model"].update(latent_dim=s["config"]["model"].pop("z_dim")))
    no_config = edited("no_config.pt", lambda s: s.update(config=None))
    no_noise = edited("no_noise.pt", lambda s: s.pop("fixed_noise"))
    for checkpoint, missing in ((renamed, "config.model.z_dim"), (no_config, "config.model.generator._target_")):
        for command in (["sample", f"run={checkpoint}"], ["eval", f"run={checkpoint}"],
                        ["export", f"run={checkpoint}", f"out={tmp_path / 'export'}"],
                        ["train", f"resume={checkpoint}"]):  # fmt: skip
            code, err = cli_exit(command, capsys)
            assert code == 2 and "Traceback" not in err, (command, err)
            assert f"={checkpoint}: the checkpoint has no {missing}" in err
    code, err = cli_exit(["train", f"resume={no_noise}", f"hydra.run.dir={tmp_path / 'continued'}"], capsys)
    assert code == 2 and f"resume={no_noise}: the checkpoint has no fixed_noise; it was edited" in err

    generator = state["config"]["model"]["generator"]
    doubled = {**generator, "width": 2 * generator["width"]}
    wider = edited("wider.pt", lambda s: s["config"]["model"].update(generator=doubled))
    code, err = cli_exit(["sample", f"run={wider}"], capsys)
    assert code == 2 and "Traceback" not in err
    assert (
        f"run={wider}: its G" in err and "weights do not fit the generator its config describes (size mismatch" in err
    )


def test_a_folder_where_the_checkpoint_goes_is_named_not_taken_for_a_full_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "Free some space, then continue with: ganlab train resume=...", a resume that is refused."""
    from tests.conftest import cli_exit

    last = tmp_path / "run" / "checkpoints" / "last.pt"
    last.mkdir(parents=True)
    code, err = cli_exit(["train", "debug=fast", f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert code == 1 and "Traceback" not in err
    said = f"could not write the checkpoint {last} at step 2 (Is a directory); none had been written there yet. "
    said += f"A folder stands where the checkpoint goes: move {last} aside, then run the same command again"
    assert said in err
    assert "Free some space" not in err
