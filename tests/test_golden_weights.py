"""The weights that the built-in families train to stay the same across refactors of the loop.

tests/golden/<case>.pt holds, for each case below, the networks after a few steps as the code trained them when
the file was written (`python -m tests.golden.write`), with the composed config and the machine's numerics. A
change that only moves code must reproduce them bitwise. On a machine whose CPU kernels differ (another
instruction set, another torch), float results legitimately differ in the last bits: there the test still
demands agreement to float32 rounding over a few steps, and says so.

Rewrite the files only for a change that is meant to alter what training computes, and say so in its commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import compose_cfg

GOLDEN = Path(__file__).parent / "golden"
NETS = ("G", "D", "G_ema")
# Classes renamed since the files were written (the same code under a clearer name), as the configs name them.
RENAMED_TARGETS = {"ganlab.losses.gan.GANLoss": "ganlab.losses.gan.NonSaturatingLoss"}
# Config keys added since, with the value that changes nothing (the hook-based stabilisers: none; the growth
# schedule, which only model=progan reads; WGAN-GP's drift term: off; no content term, pre-training or history
# buffer, which only image-conditioned models use), by path.
ADDED_KEYS = {
    ("stabilizers",): {},
    ("trainer", "grow"): {"fade_images": 800_000, "stable_images": 800_000},
    ("loss", "drift"): 0.0,  # only where the loss is WGAN-GP
    ("content",): {},
    ("trainer", "pretrain_steps"): 0,
    ("trainer", "pretrain_content"): "mse",
    ("trainer", "history_buffer"): {"size": 0, "ratio": 0.5},
    ("trainer", "eval_repeats"): None,
    ("trainer", "eval_post_hoc_steps"): None,
    ("augment", "ada"): False,
    ("augment", "ada_groups"): ["blit", "geom", "color"],
    ("augment", "ada_p"): 0.0,
    ("augment", "ada_target"): 0.6,
    ("augment", "ada_kimg"): 500.0,
    ("augment", "ada_interval"): 4,
    ("init",): None,
    ("model", "discriminator", "freeze"): 0,
    ("data", "classes"): None,  # the data keys: only image sets (IMAGE_SETS)
    ("data", "limit"): None,
    ("data", "xflip"): False,
}
IMAGE_SETS = ("DigitsData", "MNISTData", "FashionMNISTData", "CIFAR10Data", "ImageFolderData")
# One case per family and per stabiliser path through the step; evaluation off (it draws no training random
# numbers, but costs seconds).
CASES: dict[str, list[str]] = {
    "ring8": ["experiment=ring8", "trainer.steps=6", "trainer.batch_size=32", "trainer.monitor=null"],
    "dcgan_digits": ["experiment=dcgan_digits", "trainer.steps=6", "trainer.monitor=null"],
    "cgan_digits": ["experiment=cgan_digits", "trainer.steps=6", "trainer.monitor=null"],
    "stabilisers": [
        "loss=wgan_gp",
        "model.spectral_norm=true",
        "augment.diffaugment=[color,translation]",
        "augment.instance_noise=0.1",
        "trainer.ema=0.9",
        "trainer.lr_schedule_g=linear",
        "trainer.clip_grad_norm=1.0",
        "trainer.steps=6",
    ],
    "mlp_points_rmsprop": [
        "model=mlp",
        "data=gaussians",
        "optimizer=rmsprop",
        "loss=hinge",
        "trainer.steps=6",
    ],
}


def numerics() -> dict[str, object]:
    """What decides the last bits of CPU float results: torch's version, the kernels' instruction set, threads."""
    return {
        "torch": torch.__version__.split("+")[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def train_case(name: str, run_dir: Path) -> dict[str, object]:
    """Train one case; its composed config and final networks."""
    from ganlab.checkpoint import load_checkpoint
    from ganlab.train import train

    cfg = compose_cfg(*CASES[name])
    train(cfg, run_dir)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return {
        "config": OmegaConf.to_container(cfg, resolve=True),
        **{net: state[net] for net in NETS if state.get(net) is not None},
    }


def with_added_keys(config: dict) -> dict:
    """The config as composed now: the keys added since the file was written, with their neutral values."""
    config = dict(config)
    for path, value in ADDED_KEYS.items():
        node = config
        for key in path[:-1]:
            node[key] = dict(node[key])
            node = node[key]
        if path[-1] == "drift" and not node.get("_target_", "").endswith("WGANGPLoss"):
            continue
        if path[0] == "data" and not node.get("_target_", "").endswith(IMAGE_SETS):
            continue
        node[path[-1]] = value
    return config


def renamed(node: object) -> object:
    if isinstance(node, dict):
        return {k: RENAMED_TARGETS.get(v, v) if k == "_target_" else renamed(v) for k, v in node.items()}
    return [renamed(v) for v in node] if isinstance(node, list) else node


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_reproduces_the_golden_weights(name: str, tmp_path: Path) -> None:
    golden = torch.load(GOLDEN / f"{name}.pt", weights_only=True)
    now = train_case(name, tmp_path / name)
    expected = with_added_keys(renamed(golden["config"]))
    assert now["config"] == expected, "the case composes another config than when it was written"
    assert [net for net in NETS if net in now] == [net for net in NETS if net in golden]
    bitwise = golden["numerics"] == numerics()
    for net in NETS:
        for key, expected in golden.get(net, {}).items():
            got = now[net][key]
            if bitwise or not expected.is_floating_point():
                assert torch.equal(got, expected), f"{name}: {net}.{key} differs from the golden weights"
            else:  # other kernels: the same training to float32 rounding, accumulated over a few Adam steps
                torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5, msg=f"{name}: {net}.{key}")
