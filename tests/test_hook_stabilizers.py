"""Stabilisers that plug in by config alone (ganlab/stabilizers/base.py): consistency regularisation, and a
stabiliser with state written in this file as a user's own would be, selected with `stabilizers=[...]`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from ganlab.checkpoint import load_checkpoint
from ganlab.stabilizers.base import Stabilizer
from ganlab.stabilizers.consistency import ConsistencyRegularization
from ganlab.train import train
from tests.conftest import assert_same_networks, compose_cfg, exits_2, read_events, straight_and_resumed_from_step_4


def test_the_consistency_term_by_hand() -> None:
    """With no shift, T is a horizontal flip of about half the images: the term is the weight times the mean over
    the batch of (D(x) - D(flip x))^2 for the flipped ones, 0 for the others."""
    ramp = torch.arange(4.0).view(1, 1, 1, 4)  # D weighs columns 0..3: a flip changes its score

    def D(x: Tensor) -> Tensor:
        return (x * ramp).sum(dim=(1, 2, 3))

    x = torch.zeros(6, 1, 2, 4)
    x[:, :, :, 0] = torch.arange(1.0, 7.0).view(6, 1, 1)  # image i: value i+1 in column 0 (score 0)
    cr = ConsistencyRegularization(weight=10.0, translation=0.0)
    torch.manual_seed(0)
    flipped = (torch.rand(6) < 0.5).tolist()  # the draws T makes with this seed
    torch.manual_seed(0)
    term, stats = cr.d_term(D, x, x.clone())
    # flipped, image i's value i+1 sits in column 3 of both rows: score 2 * 3 (i + 1), against 0 unflipped
    gaps = [(6.0 * (i + 1)) ** 2 if f else 0.0 for i, f in enumerate(flipped)]
    assert 0 < sum(flipped) < 6
    assert float(stats["loss/cr_real"]) == pytest.approx(sum(gaps) / 6)
    assert float(term) == pytest.approx(10.0 * sum(gaps) / 6)
    symmetric = ConsistencyRegularization(translation=0.0).d_term(lambda x: x.sum(dim=(1, 2, 3)), x, x)[0]
    assert float(symmetric) == 0.0  # a D that cannot tell a flip apart pays nothing


def test_consistency_trains_logs_and_resumes_bitwise(tmp_path: Path) -> None:
    straight, resumed = straight_and_resumed_from_step_4(
        ["stabilizers=[consistency]", "stabilizers.consistency.weight_fake=5.0"], tmp_path
    )
    assert_same_networks(straight, resumed, nets=("G", "D"))
    scalars, _ = read_events(tmp_path / "straight")
    assert {"loss/cr_real", "loss/cr_fake"} <= set(scalars)
    assert all(value >= 0 for _, value in scalars["loss/cr_real"])


def test_consistency_refuses_points_and_bad_weights(capsys: pytest.CaptureFixture[str]) -> None:
    err = exits_2(["train", "debug=fast", "model=mlp", "data=gaussians", "stabilizers=[consistency]"], capsys)
    assert "stabilizers=[consistency] augments images" in err
    err = exits_2(["train", "debug=fast", "stabilizers=[consistency]", "stabilizers.consistency.weight=-1"], capsys)
    assert "stabilizers.consistency.weight must be a finite number >= 0" in err


class CountsUpdates(Stabilizer):
    """A stabiliser with state: it counts G's updates on the device and pulls G's weights a little towards zero
    after each (so that a lost count would show in the weights)."""

    def __init__(self, decay: float = 0.01) -> None:
        self.decay = decay
        self.count = torch.zeros((), dtype=torch.int64)

    def after_g_update(self, G: nn.Module) -> None:
        self.count += 1
        with torch.no_grad():
            factor = 1 - self.decay / (1 + self.count.double())
            for p in G.parameters():
                p.mul_(factor.to(p.dtype))

    def state_dict(self) -> dict:
        return {"count": self.count.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.count = state["count"].clone() if state else torch.zeros((), dtype=torch.int64)


def test_a_users_stabilizer_plugs_in_by_config_and_its_state_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANLAB_TRUSTED_TARGETS", "tests.")
    node = "+stabilizers.counts._target_=tests.test_hook_stabilizers.CountsUpdates"
    straight, resumed = straight_and_resumed_from_step_4([node], tmp_path)
    assert int(straight["stabilizers"]["counts"]["count"]) == 10 == int(resumed["stabilizers"]["counts"]["count"])
    assert_same_networks(straight, resumed, nets=("G", "D"))
    without = tmp_path / "without"
    train(compose_cfg("trainer.steps=10"), without)
    plain = load_checkpoint(without / "checkpoints" / "last.pt")
    assert plain["stabilizers"] == {}
    assert not all(torch.equal(plain["G"][k], straight["G"][k]) for k in plain["G"])  # it acted
