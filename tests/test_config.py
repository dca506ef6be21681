"""Every option of every group composes and instantiates; a new YAML is tested by being added."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.build import build
from ganlab.condition import call
from ganlab.config import GROUPS, check_run_knobs
from ganlab.data.torchvision_sets import load_torchvision_images
from ganlab.errors import ConfigError
from tests.conftest import IMAGE_TO_IMAGE, compose_cfg, image_conditioned, options, write_png_folder


def test_every_group_has_options() -> None:
    assert {"dcgan", "mlp", "progan", "resnet"} <= set(options("model"))
    assert options("loss") == ["gan", "hinge", "lsgan", "minimax", "wgan", "wgan_gp"]
    assert options("optimizer") == ["adam", "rmsprop", "sgd"]
    assert set(options("data")) >= {"gaussians", "digits", "mnist", "fashion_mnist", "cifar10", "image_folder"}


def test_default_composition() -> None:
    cfg = compose_cfg(fast=False)
    assert cfg.model.generator._target_.endswith("DCGANGenerator")
    assert cfg.loss._target_.endswith("gan.NonSaturatingLoss")
    assert cfg.optimizer.generator._target_ == "torch.optim.Adam"
    assert cfg.data._target_.endswith("DigitsData")
    assert cfg.trainer.n_critic is None and cfg.trainer.device == "auto"


def _extra_overrides(group: str, option: str, tmp_path: Path, mnist_root: Path) -> list[str]:
    if group == "model" and option in IMAGE_TO_IMAGE:
        return image_conditioned(option, tmp_path)
    if group == "data" and option in IMAGE_TO_IMAGE.values():
        model = next(m for m, d in IMAGE_TO_IMAGE.items() if d == option)
        return [f"model={model}", *image_conditioned(model, tmp_path)]
    if (group, option) == ("model", "resnet"):
        return ["data.image_size=32"]  # the ResNets are for 32x32 and 64x64 images
    if (group, option) == ("model", "rnn"):
        return ["data=sines", "data.n=50"]  # a recurrent model for sequences
    if group != "data":
        return []
    if option == "gaussians":
        return ["model=mlp"]
    if option == "sines":
        return ["model=rnn", "data.n=50"]
    if option == "csv":
        (tmp_path / "series.csv").write_text("a,b\n" + "".join(f"{i},{i * i % 7}\n" for i in range(40)))
        return ["model=rnn", f"data.path={tmp_path / 'series.csv'}", "data.length=8"]
    if option == "image_folder":
        write_png_folder(tmp_path / "imgs")
        return [f"data.root={tmp_path / 'imgs'}", "data.image_size=16", "data.num_workers=0"]
    if option in ("mnist", "fashion_mnist"):
        return [f"data.root={mnist_root}", "data.download=false"]
    return []


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in GROUPS for o in options(g) if (g, o) != ("data", "cifar10")],
)
def test_option_composes_and_builds(group: str, option: str, tmp_path: Path, mnist_root: Path) -> None:
    cfg = compose_cfg(f"{group}={option}", *_extra_overrides(group, option, tmp_path, mnist_root))
    parts = build(cfg)
    z = torch.randn(3, parts.z_dim)
    batch = parts.conditioning.real_batch(parts.data, 3)  # an image-to-image G is given an image
    fake = call(parts.G, z, batch.condition)
    assert fake.shape == (3, *parts.data.shape)
    scores = call(parts.D, fake, batch.condition)
    assert scores.shape[0] == 3 and (
        scores.dim() == 1 or option in ("refiner", "unet", "unpaired", "paired_folder", "rnn", "sines", "csv")
    )
    assert parts.data.sample(3).shape == fake.shape
    assert parts.n_critic == cfg.loss.n_critic
    assert parts.opt_g.param_groups[0]["lr"] == cfg.optimizer.lr_g
    assert parts.opt_d.param_groups[0]["lr"] == cfg.optimizer.lr_d


def test_cifar10_composes_and_reports_missing_files(tmp_path: Path) -> None:
    """torchvision verifies CIFAR-10's checksums, so it cannot be faked offline: check the message instead,
    and the channel-last -> channel-first conversion on an array laid out like CIFAR-10's."""
    cfg = compose_cfg("data=cifar10", f"data.root={tmp_path}", "data.download=false")
    assert cfg.data.image_size == 32
    with pytest.raises(ConfigError, match="cifar10.*data.download=true"):
        build(cfg)

    class CifarLike:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            self.data = torch.arange(2 * 8 * 8 * 3, dtype=torch.uint8).reshape(2, 8, 8, 3).numpy()
            self.targets = [3, 7]

    images, labels = load_torchvision_images(CifarLike, "cifar10", str(tmp_path), False, 8)
    assert images.shape == (2, 3, 8, 8) and labels.tolist() == [3, 7]
    assert images[0, 1, 0, 0].item() == 1 and images[0, 0, 0, 1].item() == 3  # channel c of pixel p = 3p + c


def test_integer_betas_as_typed_on_the_command_line() -> None:
    parts = build(compose_cfg("optimizer.betas_g=[0,0.9]", "optimizer.betas_d=[0,0.9]"))
    assert parts.opt_g.param_groups[0]["betas"] == (0.0, 0.9)
    assert parts.opt_d.param_groups[0]["betas"] == (0.0, 0.9)


def test_n_critic_follows_the_loss_unless_set() -> None:
    assert build(compose_cfg("loss=wgan_gp")).n_critic == 5
    assert build(compose_cfg("loss=wgan")).n_critic == 5
    assert build(compose_cfg("loss=hinge")).n_critic == 1
    assert build(compose_cfg("loss=wgan_gp", "trainer.n_critic=2")).n_critic == 2


def test_wgan_gp_picks_layer_norm_in_dcgan_discriminator() -> None:
    cfg = compose_cfg("loss=wgan_gp")
    assert cfg.model.discriminator.norm == "layer"
    D = build(cfg).D
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in D.modules())
    assert compose_cfg("loss=gan").model.discriminator.norm == "batch"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.lr_d=0"], "optimizer.lr_d must be a finite number > 0"),
        (["optimizer=sgd", "optimizer.lr_g=-1e-3"], "optimizer.lr_g must be a finite number > 0"),
        (["trainer.n_critic=0"], "trainer.n_critic must be >= 1"),
        (["trainer.steps=0"], "trainer.steps must be >= 1"),
        (["trainer.batch_size=0"], "trainer.batch_size must be >= 1"),
        (["data=gaussians"], "model=dcgan needs image data"),
        (["data.image_size=24"], "power of two"),
        (["loss=wgan_gp", "model.discriminator.norm=batch"], "BatchNorm in D"),
        (["optimizer.betas_d=[1.5,0.9]"], "beta"),
        (["trainer.device=cuda:7"] if not torch.cuda.is_available() else ["trainer.device=nonsense"], "device"),
    ],
)
def test_bad_values_are_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(compose_cfg(*overrides))


def test_run_knobs_checked_before_anything_is_built() -> None:
    with pytest.raises(ConfigError, match="trainer.log_every"):
        check_run_knobs(compose_cfg("trainer.log_every=0"))


def test_the_readme_table_gives_the_schema_defaults() -> None:
    """The run knobs' defaults live in the schema alone; the README's table of them must say the same."""
    import dataclasses
    import re

    from ganlab.config import AugmentSchema, GrowSchema, HistoryBufferSchema, TrainerSchema, TrainSchema

    def shown(value: object) -> str:  # as YAML writes it (0 is not false here: `is`, not a dict lookup)
        for constant, text in ((None, "null"), (True, "true"), (False, "false")):
            if value is constant:
                return text
        return str(value)

    nested = {"grow": GrowSchema, "history_buffer": HistoryBufferSchema}
    defaults = {f"trainer.{f.name}": f for f in dataclasses.fields(TrainerSchema) if f.name not in nested}
    for name, schema in nested.items():
        defaults |= {f"trainer.{name}.{f.name}": f for f in dataclasses.fields(schema)}
    defaults |= {f"augment.{f.name}": f for f in dataclasses.fields(AugmentSchema)}
    defaults |= {f.name: f for f in dataclasses.fields(TrainSchema) if f.name in ("seed", "resume", "init")}
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    documented = {}
    for keys, default in re.findall(r"^\| ((?:`[\w.]+`(?:, )?)+) \| ([^|]*) \|", readme, flags=re.M):
        for key in re.findall(r"`([\w.]+)`", keys):
            documented[key] = default.strip()
    for key, field in defaults.items():
        value = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        assert key in documented, f"{key} is missing from the README's table of run knobs"
        assert documented[key] == shown(value), f"{key}: README says {documented[key]}, the schema {shown(value)}"


@pytest.mark.parametrize("group", ["model", "loss", "optimizer", "data", "content"])
def test_every_option_follows_the_naming_rule(group: str) -> None:
    """conf/<group>/<name>.yaml targets ganlab/<group>/<name>.py (or torch.optim.<Name>): the rule that lets a
    newcomer find a loss from its config name, and that option_name() reads the option back by."""
    from omegaconf import OmegaConf

    from ganlab.config import CONF_DIR
    from ganlab.targets import option_name

    for name in options(group):
        node = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
        if group == "content" and name == "none":
            assert not node, "content=none is the empty option: no term"
            continue
        node = node.get(group, node)  # a `# @package _global_` option (model=progan also picks its loss)
        target = node.generator._target_ if group in ("model", "optimizer") else node._target_
        assert option_name(target) == name, f"{group}={name} targets {target}"
