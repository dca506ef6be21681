"""Every preset in conf/experiment composes; the CPU ones train a few steps, the dataset-bound ones build their
networks at full size; and the papers' hyperparameters are what the presets say."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ganlab.build import make_discriminator
from ganlab.checkpoint import load_checkpoint
from ganlab.targets import instantiate_node
from ganlab.train import train
from tests.conftest import compose_cfg, exits_2, options

PRESETS = options("experiment")
OFFLINE = ["ring8", "grid25", "dcgan_digits", "cgan_digits", "progan_digits", "stylegan2_digits"]  # no download
IMAGE_TO_IMAGE_PRESETS = ["srgan_digits", "simgan_digits"]  # offline too; their networks are given images
SEQUENCE_PRESETS = ["rcgan_sines", "crnngan_sines"]  # offline too; their networks are recurrent


def test_the_presets_the_readme_lists_exist() -> None:
    assert set(PRESETS) >= {"ring8", "grid25", "dcgan_digits", "dcgan_mnist", "wgan_gp_cifar10", "sngan_cifar10"}
    assert "cgan_digits" in PRESETS
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in PRESETS)


@pytest.mark.parametrize("preset", OFFLINE)
def test_offline_presets_train(preset: str, tmp_path: Path) -> None:
    smaller = [] if preset in ("ring8", "grid25") else ["data.image_size=16"]
    cfg = compose_cfg(f"experiment={preset}", "trainer.monitor=null", *smaller)
    assert cfg.trainer.steps == 4  # debug=fast comes after the preset
    train(cfg, tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["G_ema"] is not None  # every offline preset averages G
    assert (state["num_classes"] == 10) == (preset == "cgan_digits")


@pytest.mark.parametrize(
    "preset", [p for p in PRESETS if p not in [*IMAGE_TO_IMAGE_PRESETS, *SEQUENCE_PRESETS, "srgan_folder"]]
)
def test_presets_compose_to_their_models(preset: str) -> None:
    cfg = compose_cfg(f"experiment={preset}", fast=False)
    shape = {"gaussians": (2,), "cifar10": (3, 32, 32)}.get(cfg.data._target_.split(".")[-2], (1, 32, 32))
    labels = {"num_classes": 10} if cfg.model.conditional else {}
    G = instantiate_node(cfg.model.generator, out_shape=shape, **labels)
    D = make_discriminator(cfg.model.discriminator, shape, **labels)
    z = torch.randn(2, cfg.model.z_dim)
    y = torch.tensor([0, 1]) if labels else None
    with torch.no_grad():
        x = G(z) if y is None else G(z, y)
        assert x.shape == (2, *shape)
        assert (D(x) if y is None else D(x, y)).shape == (2,)


@pytest.mark.parametrize("preset", SEQUENCE_PRESETS)
def test_sequence_presets_build_at_full_size_on_timegans_sines(preset: str) -> None:
    """Built as the preset says; their options train in tests/test_sequence_training.py."""
    from ganlab.build import build

    full = build(compose_cfg(f"experiment={preset}", "trainer.device=cpu", fast=False))
    assert full.data.shape == (24, 5) and len(full.data) == 10_000 and full.n_critic == 3
    assert full.z_dim == 24 * 5 + 16  # five noise values at every step and 16 for the whole sequence
    with torch.no_grad():
        x = full.G(torch.randn(2, full.z_dim))
        assert x.shape == (2, 24, 5) and full.D(x).shape == (2, 24)  # D scores every step
    assert full.D.rnn.bidirectional == (preset == "crnngan_sines")


@pytest.mark.parametrize("preset", IMAGE_TO_IMAGE_PRESETS)
def test_image_to_image_presets_build_at_full_size(preset: str) -> None:
    """Built as the preset says (its networks at full size, given their data's images); their parts train in
    tests/test_super_resolution.py and tests/test_refinement.py."""
    from ganlab.build import build

    full = build(compose_cfg(f"experiment={preset}", "trainer.device=cpu", fast=False))
    batch = full.conditioning.real_batch(full.data, 2)
    with torch.no_grad():
        assert full.G(torch.zeros(2, full.z_dim), batch.condition).shape == batch.real.shape
    assert (full.content is not None) and (full.pretrain is not None) == (preset == "srgan_digits")
    assert (full.history is not None) == (preset == "simgan_digits")


def test_srgan_folder_builds_the_papers_networks() -> None:
    """The GPU preset at full size: SRResNet of 16 blocks (1.55M weights) from 24x24 to 96x96, VGG-style D."""
    cfg = compose_cfg("experiment=srgan_folder", "data.source_options.root=/data", fast=False)
    G = instantiate_node(cfg.model.generator, out_shape=(3, 96, 96))
    D = make_discriminator(cfg.model.discriminator, (3, 96, 96))
    assert sum(p.numel() for p in G.parameters()) == pytest.approx(1.55e6, rel=0.01)
    with torch.no_grad():
        high = G(torch.zeros(2, 1), torch.zeros(2, 3, 24, 24))
        assert high.shape == (2, 3, 96, 96) and D(high).shape == (2,)
    assert cfg.content.network == "vgg19" and cfg.content.layer == "relu5_4" and cfg.trainer.pretrain_steps == 100_000


def test_image_to_image_presets_carry_their_papers_recipes() -> None:
    srgan = compose_cfg("experiment=srgan_digits", fast=False)
    assert srgan.trainer.pretrain_content == "mse" and srgan.content._target_.endswith("PerceptualContent")
    assert srgan.content.weight == 1000 and srgan.trainer.batch_size == 16  # the paper's 1e-3 adversarial weight
    assert srgan.trainer.keep_every == srgan.trainer.pretrain_steps  # the SRResNet stage is kept for eval
    simgan = compose_cfg("experiment=simgan_digits", fast=False)
    assert simgan.trainer.history_buffer.ratio == 0.5 and simgan.content._target_.endswith("SelfRegularizationContent")
    assert simgan.model.discriminator.width == 16


def test_paper_hyperparameters() -> None:
    sngan = compose_cfg("experiment=sngan_cifar10", fast=False)
    assert OmegaConf.to_container(sngan.optimizer.betas_d) == [0.0, 0.9] and sngan.optimizer.lr_g == 2e-4
    assert sngan.model.spectral_norm and sngan.loss._target_.endswith("HingeLoss") and sngan.loss.n_critic == 5
    assert sngan.trainer.steps == 50_000 and sngan.trainer.lr_schedule_g == "linear"
    assert sngan.model.generator.width == 256 and sngan.model.discriminator.width == 128 and sngan.model.z_dim == 128
    wgan = compose_cfg("experiment=wgan_gp_cifar10", fast=False)
    assert wgan.loss._target_.endswith("WGANGPLoss") and wgan.loss.gp_weight == 10 and wgan.loss.n_critic == 5
    assert wgan.trainer.steps == 100_000 and wgan.trainer.batch_size == 64 and not wgan.model.spectral_norm
    dcgan = compose_cfg("experiment=dcgan_mnist", fast=False)
    assert dcgan.trainer.batch_size == 128 and OmegaConf.to_container(dcgan.optimizer.betas_g) == [0.5, 0.999]


def test_progan_and_stylegan2_presets_carry_their_papers_recipes() -> None:
    progan = compose_cfg("experiment=progan_digits", fast=False)
    assert progan.loss._target_.endswith("WGANGPLoss") and progan.loss.drift == 0.001 and progan.loss.n_critic == 1
    assert progan.optimizer.lr_g == 1e-3 and OmegaConf.to_container(progan.optimizer.betas_d) == [0.0, 0.99]
    stylegan2 = compose_cfg("experiment=stylegan2_digits", fast=False)
    assert list(stylegan2.stabilizers) == ["path_length"] and stylegan2.stabilizers.path_length.every == 4
    assert stylegan2.loss.reg_every == 16 and stylegan2.model.generator.style_mixing == 0.9


@pytest.mark.parametrize("size", [64, 128, 256])
def test_stylegan2_folder_scales_the_papers_settings_with_the_resolution_as_cfg_auto(size: int) -> None:
    """stylegan2-ada's --cfg=auto for one GPU, computed here by hand: batch min(4096/res, 32), gamma
    0.0002 res^2 / batch, EMA batch * 10/32 kimg, lr 0.0025, fmaps 0.5 (channel_base 16384) below 512 px."""
    cfg = compose_cfg("experiment=stylegan2_folder", "data.root=/data", f"data.image_size={size}", fast=False)
    batch = {64: 32, 128: 32, 256: 16}[size]
    assert cfg.trainer.batch_size == batch
    assert cfg.loss.r1 == pytest.approx({64: 0.0256, 128: 0.1024, 256: 0.8192}[size])
    assert cfg.trainer.ema_half_life == pytest.approx(batch * 10 / 32 * 1000)
    assert cfg.optimizer.lr_g == cfg.optimizer.lr_d == 0.0025
    assert cfg.model.channel_base == 16384 and cfg.model.generator.mapping_layers == 2
    assert cfg.model.discriminator.minibatch_std == 4 and list(cfg.stabilizers) == ["path_length"]
    assert compose_cfg("experiment=stylegan2_folder", "data.root=/d", "trainer.batch_size=8").trainer.batch_size == 8


def test_stylegan2_folder_at_a_size_it_cannot_scale_is_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "experiment=stylegan2_folder", "data.image_size=100", "data.root=/nonexistent"]
    err = exits_2([*argv, "trainer.device=cpu"], capsys)
    assert "data.image_size must be a power of two >= 8: 100" in err


def test_the_classic_mlp_gan_has_the_reference_architecture() -> None:
    cfg = compose_cfg("experiment=mlp_mnist", fast=False)
    G = instantiate_node(cfg.model.generator, out_shape=(1, 28, 28))
    D = make_discriminator(cfg.model.discriminator, (1, 28, 28))
    linears = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert [m.num_features for m in G.modules() if isinstance(m, torch.nn.BatchNorm1d)] == [256, 512, 1024]
    assert all(m.negative_slope == 0.2 for m in G.modules() if isinstance(m, torch.nn.LeakyReLU))
    assert [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, torch.nn.Linear)] == [
        (784, 512),
        (512, 256),
        (256, 1),
    ]
    assert cfg.trainer.batch_size == 64 and cfg.optimizer.lr_g == 2e-4
