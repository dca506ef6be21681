"""SimGAN's parts: unpaired data, the history buffer (exact across resume) and the refinement test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ganlab.checkpoint import load_checkpoint
from ganlab.data.base import to_model_range
from ganlab.data.unpaired import UnpairedData
from ganlab.errors import ConfigError
from ganlab.evaluation import make_evaluator
from ganlab.stabilizers.history_buffer import HistoryBuffer
from ganlab.train import train
from tests.conftest import compose_cfg, exits_2, read_events

SIMGAN = [
    "model=refiner",
    "data=unpaired",
    "+data.synthetic_options.n=200",
    "content=self_regularization",
    "trainer.history_buffer.size=12",
]


@pytest.fixture(scope="module")
def unpaired() -> UnpairedData:
    return UnpairedData(synthetic_options={"n": 200})


def test_unpaired_batches_are_real_digits_and_rendered_ones(unpaired: UnpairedData) -> None:
    real, synthetic = unpaired.sample_pair(6)
    assert real.shape == synthetic.shape == (6, 1, 16, 16)
    assert len(unpaired) == 1797 - 359 and len(unpaired.heldout_images) == 359
    assert unpaired.synthetic.labels.bincount().tolist() == [20] * 10  # the synthetic labels are kept
    # the real side is drawn from the digits' training share, the synthetic side from the rendered ones
    assert any(torch.equal(real[0], r) for r in to_model_range(unpaired.real.images))
    assert any(torch.equal(synthetic[0], s) for s in to_model_range(unpaired.synthetic.images))


def test_unpaired_sources_must_agree_in_shape() -> None:
    with pytest.raises(ConfigError, match="must agree"):
        UnpairedData(real="digits", synthetic="digits", synthetic_options={"image_size": 8}, image_size=16)
    with pytest.raises(ConfigError, match="data.real='gaussians'"):
        UnpairedData(real="gaussians")


def test_the_history_buffer_mixes_earlier_outputs_in() -> None:
    torch.manual_seed(0)
    buffer = HistoryBuffer(size=4, ratio=0.5, shape=(1, 2, 2), device=torch.device("cpu"))
    first = torch.full((4, 1, 2, 2), 1.0)
    assert torch.equal(buffer.mix(first), first)  # empty: the history share falls back to current outputs
    assert buffer.filled.item() == 2 and torch.equal(buffer.images[:2], first[:2])
    second = torch.full((4, 1, 2, 2), 2.0)
    mixed = buffer.mix(second)
    assert torch.equal(mixed[2:], second[2:])  # the current half
    assert set(mixed[:2].flatten().tolist()) <= {1.0, 2.0}  # earlier outputs where the picks hit filled entries
    assert buffer.filled.item() == 4 and torch.equal(buffer.images[2:], second[:2])
    for _ in range(20):  # full: the history half is all earlier outputs, and new ones take random places
        third = torch.full((4, 1, 2, 2), 3.0)
        assert not (buffer.mix(third)[:2] == 3.0).any() or (buffer.images == 3.0).any()
    with pytest.raises(ConfigError, match="ratio must be in"):
        HistoryBuffer(4, 0.0, (1,), torch.device("cpu"))


@pytest.mark.parametrize("filled_before", [0, 10, 16])  # empty, the write crossing the end, full
def test_outputs_stored_in_one_write_take_distinct_places(filled_before: int) -> None:
    """Each write keeps all of its outputs (on CUDA, two at one place would be a nondeterministic race), and
    overwrites only entries already written."""
    torch.manual_seed(0)
    buffer = HistoryBuffer(size=16, ratio=0.5, shape=(1,), device=torch.device("cpu"))
    buffer.images.copy_(-torch.arange(1.0, 17.0).view(16, 1))
    buffer.filled.fill_(filled_before)
    for write in range(1, 21):
        batch = (100 * write + torch.arange(16.0)).view(16, 1)
        buffer.mix(batch)
        stored = set(buffer.images.flatten().tolist())
        assert set(batch[:8].flatten().tolist()) <= stored, write
        if write == 1 and filled_before == 10:  # 6 appended at 10..15, 2 over distinct entries of 0..9
            assert stored - set(batch[:8].flatten().tolist()) < set(range(-10, 0))
            assert len(stored) == 16


def test_the_history_buffer_is_exact_across_resume(tmp_path: Path) -> None:
    whole = compose_cfg(*SIMGAN, "trainer.steps=6", "trainer.checkpoint_every=3")
    train(whole, tmp_path / "whole")
    first = compose_cfg(*SIMGAN, "trainer.steps=3")
    train(first, tmp_path / "cut")
    resumed = compose_cfg(*SIMGAN, "trainer.steps=6", "trainer.checkpoint_every=3", f"resume={tmp_path / 'cut'}")
    train(resumed, tmp_path / "cut")
    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert a["history_buffer"]["filled"].item() == 12  # 6 steps x 4 of 8 fakes, at most 12
    assert torch.equal(a["history_buffer"]["images"], b["history_buffer"]["images"])
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert all(torch.equal(a["D"][k], b["D"][k]) for k in a["D"])


def test_resume_with_another_history_size_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(compose_cfg(*SIMGAN, "trainer.steps=2"), tmp_path)
    err = exits_2(["train", *SIMGAN, "debug=fast", "trainer.history_buffer.size=20", f"resume={tmp_path}"], capsys)
    assert "history" in err


class Identity(nn.Module):
    """A refiner that changes nothing: refined equals raw."""

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return condition


def test_the_refinement_test_scores_an_identity_refiner_as_the_raw_images(
    unpaired: UnpairedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluator = make_evaluator(unpaired, None, "digits", n=200)
    assert evaluator.primary == "real_accuracy"
    # A training run evaluates between its steps: the evaluation must leave the run's random numbers alone, the
    # CPU's (restored here) and the GPUs' (torch.manual_seed would reseed them too; tests/test_gpu.py checks it there)
    seeded_gpus = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded_gpus.append)
    monkeypatch.setattr(torch.cuda, "manual_seed", seeded_gpus.append)
    cpu_state = torch.get_rng_state()
    metrics = evaluator(Identity(), 1).metrics
    assert seeded_gpus == [] and torch.equal(torch.get_rng_state(), cpu_state)
    assert metrics["real_accuracy"] == metrics["real_accuracy_raw"]  # the same classifier, seed and images
    assert metrics["fid_digits"] == pytest.approx(metrics["fid_digits_raw"])
    assert 0.1 < metrics["real_accuracy"] < 1  # 200 rendered digits already teach something about real ones


def test_a_simgan_run_trains_and_reports_the_refinement_test(tmp_path: Path) -> None:
    cfg = compose_cfg(*SIMGAN, "trainer.eval_every=4", "trainer.eval_n=100")
    train(cfg, tmp_path)
    scalars, images = read_events(tmp_path)
    assert {"metrics/real_accuracy", "metrics/real_accuracy_raw", "metrics/fid_digits", "loss/content"} <= set(scalars)
    assert images["samples"] == [2, 4]
