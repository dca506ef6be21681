"""The condition seam (ganlab/condition.py): a family whose data brings its own conditioning plugs into the
unchanged loop. Here a paired family written in this file, as a new family's modules would be: a data source of
(target, condition) pairs, G(z, condition), D(x, condition), and a loss with a content term on the pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.checkpoint import load_checkpoint
from ganlab.condition import Batch, ClassConditional, Unconditional, conditioning_for, given, grid_labels
from ganlab.losses.gan import NonSaturatingLoss
from ganlab.train import train
from tests.conftest import compose_cfg

SEEN: dict[str, list] = {"G": [], "D": [], "g_batches": []}


class Doubling:
    """Paired data: the condition c ~ N(0, I) in 2-D, the real sample paired to it is 2c."""

    def __init__(self, device: torch.device | str = "cpu", **ignored: object) -> None:
        self.device = torch.device(device)
        self.shape = (2,)
        self.num_classes = None

    def sample(self, batch_size: int) -> Tensor:
        return self.sample_pairs(batch_size).real

    def sample_pairs(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        condition = torch.randn(batch_size, 2, generator=generator).to(self.device)
        return Batch(2 * condition, condition)

    def conditioning(self) -> Paired:
        return Paired()


class Paired:
    """D's updates and G's both take fresh pairs; pictures show fixed conditions."""

    def real_batch(self, data: Doubling, batch_size: int) -> Batch:
        return data.sample_pairs(batch_size)

    def g_batch(self, data: Doubling, batch_size: int, device: torch.device) -> Batch:
        return data.sample_pairs(batch_size)

    def picture_conditions(self, data: Doubling, n: int, columns: int | None, device: torch.device) -> Tensor:
        return data.sample_pairs(n, torch.Generator().manual_seed(0)).condition


class ConditionedG(nn.Module):
    def __init__(self, z_dim: int, out_shape: tuple[int, ...], **ignored: object) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim + 2, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        SEEN["G"].append(condition.shape)
        return self.net(torch.cat([z, condition], dim=1))


class ConditionedD(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], **ignored: object) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        SEEN["D"].append(condition.shape)
        return self.net(torch.cat([x, condition], dim=1)).squeeze(1)


class WithContent(NonSaturatingLoss):
    """The adversarial loss plus an L1 content term between G's output and the real sample of its condition."""

    def g_loss(self, D, fake: Tensor, batch: Batch | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        SEEN["g_batches"].append(batch)
        loss, stats = super().g_loss(D, fake, batch)
        content = F.l1_loss(fake, batch.real)
        stats["loss/content"] = content.detach()
        return loss + 10.0 * content, stats


def paired_run(*extra: str) -> list[str]:
    here = "tests.test_condition"
    return [
        "model=mlp",
        "data=gaussians",
        f"data._target_={here}.Doubling",
        f"model.generator._target_={here}.ConditionedG",
        f"model.discriminator._target_={here}.ConditionedD",
        f"loss._target_={here}.WithContent",
        "trainer.batch_size=32",
        "model.z_dim=4",
        "optimizer.lr_g=0.005",
        *extra,
    ]


def content_error(run_dir: Path) -> float:
    """G's mean distance from the paired target on fresh pairs, from the run's last checkpoint."""
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    G = ConditionedG(state["config"]["model"]["z_dim"], (2,))
    G.load_state_dict(state["G"])
    pairs = Doubling().sample_pairs(512, torch.Generator().manual_seed(1))
    with torch.no_grad():
        fake = G(
            torch.randn(512, G.net[0].in_features - 2, generator=torch.Generator().manual_seed(2)), pairs.condition
        )
    return float((fake - pairs.real).abs().mean())


def test_a_paired_family_trains_through_the_unchanged_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANLAB_TRUSTED_TARGETS", "tests.")
    for seen in SEEN.values():
        seen.clear()
    train(compose_cfg(*paired_run("trainer.steps=1")), tmp_path / "start")
    start = content_error(tmp_path / "start")
    for seen in SEEN.values():
        seen.clear()
    train(compose_cfg(*paired_run("trainer.steps=150", "trainer.log_every=50")), tmp_path / "trained")
    # G and D were called with the batch's conditions, in every update and for the pictures
    assert SEEN["G"] and all(shape[1:] == (2,) for shape in SEEN["G"])
    assert SEEN["D"] and all(shape[1:] == (2,) for shape in SEEN["D"])
    # the loss saw G's update's pairs, and its content term pulled G onto them
    assert len(SEEN["g_batches"]) == 150
    assert all(torch.equal(b.real, 2 * b.condition) for b in SEEN["g_batches"])
    trained = content_error(tmp_path / "trained")
    assert trained < 0.5 * start, (start, trained)
    assert (tmp_path / "trained" / "samples" / "step_0000150.png").is_file()


def test_the_built_in_conditionings() -> None:
    class Labelled:
        shape, num_classes = (1, 4, 4), 3

        def sample(self, n: int) -> Tensor:
            return torch.zeros(n, 1, 4, 4)

        def sample_labeled(self, n: int) -> tuple[Tensor, Tensor]:
            return torch.zeros(n, 1, 4, 4), torch.arange(n) % 3

    data = Labelled()
    plain = conditioning_for(data, None)
    assert isinstance(plain, Unconditional)
    assert plain.real_batch(data, 5).condition is None and plain.g_batch(data, 5, torch.device("cpu")).condition is None
    classes = conditioning_for(data, 3)
    assert isinstance(classes, ClassConditional)
    batch = classes.real_batch(data, 5)
    assert batch.condition.tolist() == [0, 1, 2, 0, 1]  # the real batch's own labels go to G's fakes as well
    torch.manual_seed(0)
    drawn = classes.g_batch(data, 3000, torch.device("cpu")).condition
    assert drawn.dtype == torch.int64 and torch.bincount(drawn, minlength=3).min() > 900  # uniform classes
    assert classes.picture_conditions(data, 6, 2, torch.device("cpu")).tolist() == [0, 0, 1, 1, 2, 2]
    assert grid_labels(6, 2, 3).tolist() == [0, 0, 1, 1, 2, 2]
    seen = []
    critic = given(lambda x, c: seen.append(c) or x.sum(), torch.tensor([7]))
    critic(torch.ones(2))
    assert seen[0].tolist() == [7] and given(len, None) is len  # nothing bound without a condition
