"""CUDA paths, run with `pytest -m gpu` on a machine with a GPU (skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.train import train
from tests.conftest import compose_cfg, read_events

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("loss", ["gan", "wgan_gp"])
def test_train_and_resume_on_cuda(loss: str, tmp_path: Path) -> None:
    common = [f"loss={loss}", "trainer.device=auto", "trainer.log_every=1"]
    train(compose_cfg(*common, "trainer.steps=4"), tmp_path)
    train(compose_cfg(*common, "trainer.steps=8", f"resume={tmp_path}"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 8 and state["rng"]["cuda"]  # the CUDA generator states are saved
    assert [s for s, _ in read_events(tmp_path)[0]["loss/D"]] == list(range(1, 9))


def test_data_lives_on_the_device() -> None:
    from ganlab.build import build

    parts = build(compose_cfg("trainer.device=cuda"))
    assert parts.data.sample(4).device.type == "cuda"
    assert next(parts.G.parameters()).device.type == "cuda"
