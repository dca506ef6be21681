"""init= and FreezeD (issue 21): a new run starts from a trained run's G, D and G_ema; FreezeD keeps D's first
blocks bitwise as they came; mismatched shapes are refused with the layers named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main
from ganlab.errors import ConfigError
from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.train import train
from ganlab.transfer.freeze_d import discriminator_blocks
from ganlab.transfer.init import load_matching
from tests.conftest import compose_cfg, exits_2


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("pretrained")
    train(compose_cfg("trainer.steps=2", "trainer.ema=0.9"), run)
    return run


def test_init_starts_a_new_run_from_g_d_and_g_ema_and_freezed_keeps_d_s_first_block(
    pretrained: Path, tmp_path: Path
) -> None:
    source = load_checkpoint(pretrained / "checkpoints" / "last.pt")
    overrides = [f"init={pretrained}", "trainer.ema=0.9", "model.discriminator.freeze=1", "data.limit=20"]
    train(compose_cfg(*overrides, "trainer.steps=3"), tmp_path)
    tuned = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert tuned["step"] == 3 and tuned["opt_D"]["state"]  # its own step count and optimizer
    frozen = [key for key in source["D"] if key.startswith("net.0.")]  # block 1: the input convolution
    assert frozen and all(torch.equal(source["D"][key], tuned["D"][key]) for key in frozen)
    assert not torch.equal(source["D"]["net.2.weight"], tuned["D"]["net.2.weight"])  # the rest learned
    # Started from the pretrained weights, not from a fresh draw: a scratch run's first block differs.
    train(compose_cfg("trainer.ema=0.9", "trainer.steps=1", "seed=1"), tmp_path / "scratch")
    scratch = load_checkpoint(tmp_path / "scratch" / "checkpoints" / "last.pt")
    assert not torch.equal(scratch["D"]["net.0.weight"], tuned["D"]["net.0.weight"])
    # D's optimizer holds only the learning parameters
    learning = sum(1 for key in tuned["D"] if key.endswith(("weight", "bias")) and not key.startswith("net.0."))
    assert len(tuned["opt_D"]["param_groups"][0]["params"]) == learning


def test_init_loads_every_network_of_the_checkpoint(pretrained: Path) -> None:
    from ganlab.build import build
    from ganlab.transfer.init import initialize_from

    source = load_checkpoint(pretrained / "checkpoints" / "last.pt")
    parts = build(compose_cfg("trainer.ema=0.9", "seed=7"))
    initialize_from(str(pretrained), parts.G, parts.D, parts.ema.model)
    for name, net in (("G", parts.G), ("D", parts.D), ("G_ema", parts.ema.model)):
        assert all(torch.equal(value, source[name][key]) for key, value in net.state_dict().items()), name
    assert not torch.equal(source["G"]["net.0.weight"], source["G_ema"]["net.0.weight"])  # three different sets


def test_init_from_a_model_of_other_shapes_names_the_layers(
    pretrained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = exits_2(["train", "debug=fast", f"init={pretrained}", "model.discriminator.width=16"], capsys)
    assert "init=" in err and "D has other layers than the checkpoint's" in err
    assert "net.0.weight: (16, 1, 4, 4) here, (8, 1, 4, 4) in the checkpoint" in err
    err = exits_2(["train", "debug=fast", f"init={pretrained / 'nothing.pt'}"], capsys)
    assert "init=" in err


def test_a_resumed_run_keeps_the_seed_and_init_it_began_with(
    pretrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """resume= continues a run's weights and random state: another seed or init= would be recorded without having
    acted (the fuzzer's `init=<other run> resume=<run>` exited 0 with init ignored), so both are refused; the
    same command again (resume=auto with the init= it began with) continues."""
    run = tmp_path / "run"
    began = ["train", "debug=fast", f"init={pretrained}", "trainer.steps=1", f"hydra.run.dir={run}"]
    main(began)
    main([*began[:-2], "trainer.steps=2", "resume=auto", f"hydra.run.dir={run}"])
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    err = exits_2(["train", f"resume={run}", "trainer.steps=3", "seed=5"], capsys)
    assert "seed=5: resume=" in err and "began with seed=0" in err
    err = exits_2(["train", f"resume={pretrained}", "trainer.steps=3", f"init={run}"], capsys)
    assert f"init={run}: resume=" in err and "began from scratch" in err
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2


def test_another_number_of_classes_restarts_only_the_class_embeddings(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    ten, three = DCGANGenerator(8, (1, 16, 16), width=8, num_classes=10), DCGANGenerator(8, (1, 16, 16), width=8,
                                                                                            num_classes=3)  # fmt: skip
    before = three.class_embed.weight.clone()
    with caplog.at_level(logging.INFO, logger="ganlab"):
        load_matching(three, ten.state_dict(), "G", "run")
    assert torch.equal(three.class_embed.weight, before)  # kept its own initialisation
    for key, value in ten.state_dict().items():
        if not key.startswith("class_embed"):
            assert torch.equal(three.state_dict()[key], value), key
    assert "G's class embeddings (class_embed.weight) start afresh" in caplog.text


def test_freeze_counts_blocks_from_the_input_and_refuses_too_many() -> None:
    from ganlab.transfer.freeze_d import freeze_blocks

    D = DCGANDiscriminator((1, 16, 16), width=8)
    blocks = discriminator_blocks(D)
    assert [type(block[0]).__name__ for block in blocks] == ["Conv2d", "Conv2d", "Conv2d"]
    frozen = freeze_blocks(D, 2)
    assert {id(p) for p in frozen} == {id(p) for block in blocks[:2] for p in block.parameters()}
    assert all(p.requires_grad for p in blocks[2].parameters())
    with pytest.raises(ConfigError, match="has 3 blocks; freeze 0 to 2"):
        freeze_blocks(DCGANDiscriminator((1, 16, 16), width=8), 3)
