"""DDP through torchrun, for real: 2 processes on the gloo backend, on the CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganlab.build import build, d_takes_sync_batchnorm
from ganlab.checkpoint import load_checkpoint
from ganlab.distributed import Dist, local_device, per_rank_batch
from ganlab.errors import ConfigError
from ganlab.train import train
from tests.conftest import REPO, compose_cfg, read_events

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]  # a free port
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=ENV)


def train_on_two_ranks(tmp_path: Path, *overrides: str) -> Path:
    run_dir = tmp_path / "run"
    result = torchrun("tests/ddp_worker.py", str(tmp_path), str(run_dir), *overrides, cwd=REPO)
    # torch's warnings (DDP's grad-stride notice) fill the tail: keep the lines that say where a rank stopped
    said = [line for line in result.stderr.splitlines() if "Warning" not in line and "return Variable" not in line]
    assert result.returncode == 0, "\n".join(said)[-6000:]
    return run_dir


def assert_same_parameters(tmp_path: Path) -> dict:
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for net in ("G", "D"):
        for name, value in ranks[0][net].items():
            if "running_" in name or "num_batches" in name:
                continue  # BatchNorm statistics are each rank's own (only rank 0's are saved)
            assert torch.equal(value, ranks[1][net][name]), f"{net}.{name} differs between the ranks"
    return ranks[0]


def test_two_ranks_train_as_one_and_a_checkpoint_resumes_on_one(tmp_path: Path) -> None:
    # DCGAN with BatchNorm in G and D, and R1 (double backward through DDP's D).
    run_dir = train_on_two_ranks(
        tmp_path, "data.image_size=16", "loss.r1=1.0", "trainer.steps=4", "trainer.batch_size=16"
    )
    rank0 = assert_same_parameters(tmp_path)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["d_updates"] == 4
    assert all(torch.equal(state["G"][k], v) for k, v in rank0["G"].items())
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # rank 0 alone logs
    scalars, _ = read_events(run_dir)
    assert scalars["loss/r1"] and all(torch.isfinite(torch.tensor(v)) for _, v in scalars["loss/D"])
    # the same training with one process continues from the 2-rank checkpoint
    cfg = compose_cfg("data.image_size=16", "loss.r1=1.0", "trainer.steps=6", "trainer.batch_size=16")
    cfg.resume = str(run_dir)
    train(cfg, run_dir)
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 6


@pytest.mark.slow
def test_gradient_penalty_and_a_conditional_model_under_ddp(tmp_path: Path) -> None:
    train_on_two_ranks(
        tmp_path,
        "loss=wgan_gp",
        "model.conditional=true",
        "data.image_size=16",
        "trainer.steps=3",
        "trainer.batch_size=8",
    )
    assert_same_parameters(tmp_path)


@pytest.mark.slow
def test_compiled_networks_under_ddp(tmp_path: Path) -> None:
    train_on_two_ranks(
        tmp_path, "data=gaussians", "model=mlp", "trainer.compile=true", "trainer.steps=3", "trainer.batch_size=16"
    )
    assert_same_parameters(tmp_path)


@pytest.mark.slow
def test_torchrun_ganlab_train_resumes_a_one_process_checkpoint_on_two(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["data.image_size=16", "trainer.batch_size=16", f"hydra.run.dir={run_dir}"]
    first = subprocess.run(
        [sys.executable, "-m", "ganlab", "train", "debug=fast", *args, "trainer.steps=2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    again = torchrun("-m", "ganlab", "train", "debug=fast", *args, "trainer.steps=4", "resume=auto", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed" in again.stdout + again.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 4
    assert not (tmp_path / "outputs").exists()  # every rank used the one run directory


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), ("a message", 1)])
def test_exit_rank_flushes_what_was_said_and_keeps_the_status(code: object, status: int) -> None:
    """A rank ends without the interpreter's exit (ganlab/cli.py exit_rank): what it printed and logged must
    still be out, and its status what sys.exit would have given."""
    script = (
        "import logging, sys\n"
        "from ganlab.cli import exit_rank\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "print('printed', end='')\n"  # no newline: only an explicit flush gets it out
        "logging.getLogger('ganlab').warning('logged')\n"
        f"exit_rank({code!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == status and result.stdout == "printed"
    assert "logged" in result.stderr and (code != "a message" or "a message" in result.stderr)


@pytest.mark.slow  # 9 s: two ranks start and train
def test_a_checkpoint_rank_0_cannot_write_stops_every_rank_with_a_message(tmp_path: Path) -> None:
    """Rank 0 alone writes checkpoints. When it cannot (here a folder stands where last.pt goes), the other rank
    stops at the same step with a sentence, not a gloo traceback from waiting on a peer that had left."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "last.pt").mkdir(parents=True)
    result = torchrun(
        "-m", "ganlab", "train", "debug=fast", "trainer.batch_size=8", f"hydra.run.dir={run_dir}", cwd=REPO
    )
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert f"could not write the checkpoint {run_dir / 'checkpoints' / 'last.pt'} at step 2" in said
    assert "ganlab[rank 1]: rank 0 could not write its checkpoint at step 2 (its own message says why)" in said
    assert "[rank1]:" not in said and "Connection closed by peer" not in said


def test_the_global_batch_is_split_evenly_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ganlab.distributed.current", lambda: Dist(rank=1, world_size=4))
    assert per_rank_batch(256) == 64
    with pytest.raises(ConfigError, match="trainer.batch_size=30 does not split over 4 processes.*e.g. 28"):
        per_rank_batch(30)


@pytest.mark.slow
def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused(tmp_path: Path) -> None:
    result = torchrun("-m", "ganlab", "train", "debug=fast", "trainer.batch_size=15", cwd=tmp_path)
    assert result.returncode != 0
    assert "trainer.batch_size=15 does not split over 2 processes" in result.stderr
    assert "Traceback" not in result.stderr.split("trainer.batch_size=15")[0][-500:]
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.pt"))


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_at_one_step_with_a_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    command = [*TORCHRUN, "-m", "ganlab", "train", "debug=fast", "data=gaussians", "model=mlp"]
    command += ["trainer.steps=100000", "trainer.log_every=10", f"hydra.run.dir={run_dir}"]
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until training is under way
            if "step 20/" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        proc.wait(timeout=120)
    assert proc.returncode != 0
    assert "stopped by SIGTERM" in rest, rest[-3000:]
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert 20 <= state["step"] < 100000
    assert read_status_state(run_dir) == "interrupted"


def read_status_state(run_dir: Path) -> str:
    from ganlab.status import read_status

    record = read_status(run_dir)
    assert record is not None
    return record["state"]


def test_each_rank_trains_on_the_gpu_of_its_local_rank() -> None:
    second = Dist(rank=3, world_size=4, local_rank=1)
    assert local_device(torch.device("cuda"), second, gpus=2) == torch.device("cuda", 1)
    assert local_device(torch.device("cuda:1"), second, gpus=2) == torch.device("cuda", 1)
    assert local_device(torch.device("cpu"), second, gpus=2) == torch.device("cpu")
    assert local_device(torch.device("cuda:0"), Dist(), gpus=2) == torch.device("cuda", 0)  # one process: as asked
    with pytest.raises(ConfigError, match=r"trainer.device=cuda:0 under torchrun.*this one cuda:1"):
        local_device(torch.device("cuda:0"), second, gpus=2)  # every rank on GPU 0 would hang NCCL
    with pytest.raises(ConfigError, match=r"LOCAL_RANK=1, but only 1 GPU\(s\) are visible.*--nproc_per_node=1"):
        local_device(torch.device("cuda"), second, gpus=1)


def test_sync_bn_leaves_a_penalised_discriminator_its_own_batchnorm() -> None:
    # SyncBatchNorm has no double backward (pytorch/pytorch#61222), which R1/R2/the gradient penalty need.
    parts = build(compose_cfg("loss=gan", "loss.r1=1.0"))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in parts.D.modules())
    assert not d_takes_sync_batchnorm(parts.loss, parts.D)
    assert d_takes_sync_batchnorm(build(compose_cfg("loss=gan")).loss, parts.D)
    wgan_gp = build(compose_cfg("loss=wgan_gp"))
    assert d_takes_sync_batchnorm(wgan_gp.loss, wgan_gp.D)  # its D has no BatchNorm: nothing to keep


def rank_pid(torchrun_pid: int, rank: int) -> int:
    """The pid of a torchrun's worker process of that rank (its environment says RANK=<rank>)."""
    children = Path(f"/proc/{torchrun_pid}/task/{torchrun_pid}/children").read_text().split()
    for pid in children:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no rank {rank} among {children}")


def run_until_step_20_then(signum: int, rank: int, run_dir: Path, cwd: Path) -> str:
    """A two-rank run sent `signum` to one rank alone once it has logged step 20; what it printed after that."""
    command = [*TORCHRUN, "-m", "ganlab", "train", "debug=fast", "data=gaussians", "model=mlp"]
    command += [
        "trainer.steps=100000",
        "trainer.log_every=10",
        "trainer.checkpoint_every=10",
        f"hydra.run.dir={run_dir}",
    ]
    with subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "step 20/" in line:
                break
        os.kill(rank_pid(proc.pid, rank), signum)
        rest = proc.stdout.read()
        proc.wait(timeout=120)
    assert proc.returncode != 0
    return rest


@pytest.mark.slow
def test_a_rank_killed_mid_run_leaves_the_other_a_sentence_not_gloos_traceback(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    said = run_until_step_20_then(signal.SIGKILL, 1, run_dir, tmp_path)
    assert "ganlab: rank 0 lost another rank of this torchrun at step " in said, said[-3000:]
    assert "[rank0]: Traceback" not in said
    from ganlab.status import read_status

    record = read_status(run_dir)
    assert record is not None and record["state"] == "crashed"
    assert record["message"].startswith("rank 0 lost another rank of this torchrun at step ")
    assert f"The checkpoint of step {record['saved_step']} is kept" in record["message"]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == record["saved_step"] >= 20


@pytest.mark.slow
def test_sigterm_to_one_rank_names_where_the_stop_came_from_on_the_others(tmp_path: Path) -> None:
    """Rank 0 stops with rank 1 (the ranks agree at each step) but had no signal itself: it said "stopped by  at"."""
    said = run_until_step_20_then(signal.SIGTERM, 1, tmp_path / "run", tmp_path)
    assert "stopped by a signal to another rank at step " in said, said[-3000:]
    assert read_status_state(tmp_path / "run") == "interrupted"
