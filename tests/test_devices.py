"""The device contract: a resolved CUDA device always carries its index. CUDA's own APIs (set_device, the RNG
states, memory statistics) refuse a bare `cuda`, which crashed every run on the first GPU tried. CUDA's
availability is patched here so that the contract is fixed on machines without a GPU."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from ganlab.build import resolve_device
from ganlab.distributed import Dist, local_device
from ganlab.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "ganlab"


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that reports two GPUs, the second one current (as after torch.cuda.set_device(1))."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)


@pytest.mark.parametrize("name", ["auto", "cuda"])
def test_auto_and_bare_cuda_resolve_to_the_current_gpu_with_its_index(two_gpus: None, name: str) -> None:
    device = resolve_device(name)
    assert device == torch.device("cuda", 1) and device.index == 1


def test_an_explicit_index_is_kept_and_checked(two_gpus: None) -> None:
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match=r"device=cuda:2: this process sees 2 GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2", option="device")


def test_local_device_hands_out_an_index_in_one_process_and_under_torchrun(two_gpus: None) -> None:
    assert local_device(torch.device("cuda"), Dist()).index == 1  # one process: the current GPU
    assert local_device(torch.device("cuda"), Dist(rank=0, world_size=2, local_rank=0)).index == 0
    assert local_device(torch.device("cpu"), Dist()) == torch.device("cpu")


def test_sample_and_eval_resolve_their_device_through_the_same_contract(two_gpus: None) -> None:
    from ganlab.commands import evaluate, sample

    for module in (sample, evaluate):
        assert module.resolve_device is resolve_device


def test_no_bare_cuda_device_is_built_anywhere_in_the_package() -> None:
    """The audit, kept: every `torch.device("cuda"...)` in ganlab/ carries an index or goes straight through
    local_device(), which adds one. A new bare `torch.device("cuda")` fails here."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) == "torch.device"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "cuda"
            ):
                found.append((path.name, ast.unparse(node)))
    bare = [(name, call) for name, call in found if call == "torch.device('cuda')"]
    assert bare == [("build.py", "torch.device('cuda')")]  # resolve_device: local_device(torch.device("cuda"))
    assert "local_device(torch.device('cuda'))" in ast.unparse(ast.parse((PACKAGE / "build.py").read_text()))
