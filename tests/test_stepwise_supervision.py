"""`stabilizers=[supervised]`, TimeGAN's stepwise supervised loss on a feedback G: teacher forcing reads the real
step before and nothing later, the term is the weighted RMSE computed by hand, and it trains and resumes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ganlab.cli import main
from ganlab.errors import ConfigError
from ganlab.models.rnn import RNNDiscriminator, RNNGenerator
from ganlab.stabilizers.supervised import StepwiseSupervision
from ganlab.train import train
from tests.conftest import assert_same_networks, compose_cfg, read_events, straight_and_resumed_from_step_4

SUPERVISED = ["model=rnn", "data=sines", "data.n=64", "model.generator.feedback=true", "stabilizers=[supervised]"]


def feedback_generator(**kwargs: object) -> RNNGenerator:
    torch.manual_seed(0)
    return RNNGenerator(3, (6, 2), feedback=True, output="linear", z_static=2, layers=2, **kwargs)


def test_fed_its_own_steps_g_writes_what_it_writes_free() -> None:
    G = feedback_generator()
    z = torch.randn(4, G.latent_size)
    with torch.no_grad():
        free = G(z)
        assert torch.allclose(G.teacher_forced(free, z), free, atol=1e-6)


def test_each_step_reads_only_the_real_steps_before_it() -> None:
    G = feedback_generator()
    z, real = torch.randn(4, G.latent_size), torch.rand(4, 6, 2)
    with torch.no_grad():
        written = G.teacher_forced(real, z)
        for t in range(6):
            changed = real.clone()
            changed[:, t] += 0.5
            moved = (G.teacher_forced(changed, z) - written).abs().amax(dim=(0, 2)) > 0
            assert not moved[: t + 1].any() and moved[t + 1 :].all(), t


def test_the_term_is_the_weighted_rmse_of_the_steps_after_the_first() -> None:
    G = feedback_generator()
    z, real, fake = torch.randn(4, G.latent_size), torch.rand(4, 6, 2), torch.rand(4, 6, 2)
    term = StepwiseSupervision(weight=7.0)
    term.bind_networks(G, RNNDiscriminator((6, 2)))
    assert term.d_term(None, real, fake) == (None, {})
    value, stats = term.g_regularizer(G, z, None)
    with torch.no_grad():
        by_hand = G.teacher_forced(real, z)[:, 1:] - real[:, 1:]
    rmse = math.sqrt(sum(float(v) ** 2 for v in by_hand.flatten()) / by_hand.numel())
    assert stats["loss/supervised"].item() == pytest.approx(rmse, rel=1e-5)
    assert value.item() == pytest.approx(7.0 * rmse, rel=1e-5)
    value.backward()
    assert G.cells[0].weight_ih.grad.abs().sum() > 0  # it trains G


def test_it_refuses_a_g_that_does_not_read_the_step_before(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="feedback=true"):
        StepwiseSupervision().bind_networks(RNNGenerator(3, (6, 2)), RNNDiscriminator((6, 2)))
    with pytest.raises(ConfigError, match="must be a finite number >= 0"):
        StepwiseSupervision(weight=-1.0)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "debug=fast", "model=rnn", "data=sines", "data.n=64", "stabilizers=[supervised]"])
    assert exit_info.value.code == 2 and "feedback=true" in capsys.readouterr().err


def test_a_supervised_feedback_g_trains(tmp_path: Path) -> None:
    train(compose_cfg(*SUPERVISED), tmp_path)
    scalars, _ = read_events(tmp_path)
    assert [step for step, _ in scalars["loss/supervised"]] == [2, 4]
    assert all(0 < value < 1 for _, value in scalars["loss/supervised"])  # an RMSE of values in [0, 1]


@pytest.mark.slow  # three runs of the unrolled G
def test_resume_is_bitwise(tmp_path: Path) -> None:
    straight, resumed = straight_and_resumed_from_step_4(SUPERVISED, tmp_path)
    assert_same_networks(straight, resumed, nets=("G", "D"))
