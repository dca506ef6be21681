"""Super-resolution end to end: the paired data, the content terms, SRResNet's pre-training stage, the
input | output | target pictures, and the evaluation against bicubic upsampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ganlab.checkpoint import load_checkpoint
from ganlab.condition import Batch
from ganlab.data.base import split_indices
from ganlab.data.resize import downsample_bicubic, upsample_bicubic
from ganlab.data.super_resolution import SuperResolutionData
from ganlab.errors import ConfigError
from ganlab.evaluation import make_evaluator
from ganlab.metrics.restoration import psnr
from ganlab.train import train
from tests.conftest import cli_exit, compose_cfg, exits_2, image_conditioned, options, read_events

SR = ["model=srresnet", "data=super_resolution", "data.image_size=16", "data.scale=4"]


@pytest.fixture(scope="module")
def digits_x4() -> SuperResolutionData:
    return SuperResolutionData("digits", scale=4, image_size=16)


def test_pairs_are_high_res_images_and_their_bicubic_copies(digits_x4: SuperResolutionData) -> None:
    torch.manual_seed(0)
    high, low = digits_x4.sample_pair(8)
    assert high.shape == (8, 1, 16, 16) and low.shape == (8, 1, 4, 4)
    assert torch.allclose(low, downsample_bicubic(high, 4).clamp(-1, 1))
    assert digits_x4.shape == (1, 16, 16) and digits_x4.num_classes is None


def image_tensors(obj: object, depth: int = 4, seen: set[int] | None = None) -> dict[int, torch.Tensor]:
    """Every batch-of-images tensor (4-d) reachable from obj through attributes, dicts and sequences, by storage."""
    seen = set() if seen is None else seen
    found: dict[int, torch.Tensor] = {}
    if id(obj) in seen or depth < 0:
        return found
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return {obj.untyped_storage().data_ptr(): obj} if obj.dim() == 4 else {}
    children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else None
    if children is None:
        children = vars(obj).values() if hasattr(obj, "__dict__") and not isinstance(obj, type) else ()
    for child in children:
        found |= image_tensors(child, depth - 1, seen)
    return found


def test_the_images_are_held_once_split_not_beside_their_source() -> None:
    """Training and held-out images are copies of the source's; the source goes, so that an in-memory set (on a
    GPU: device memory, planned by data.cache=auto for one copy) is held once, not twice."""
    from ganlab.data.unpaired import UnpairedData

    for data, parts in (
        (SuperResolutionData("digits", scale=4, image_size=16), lambda d: (d.train.images, d.heldout_images)),
        (UnpairedData(synthetic_options={"n": 50}), lambda d: (d.real.images, d.heldout_images, d.synthetic.images)),
    ):
        held = image_tensors(data)
        assert sum(t.nbytes for t in held.values()) == sum(t.nbytes for t in parts(data)), type(data).__name__
        assert data.fingerprint()  # still keys the cached real features


def test_the_held_out_images_never_train_and_are_the_same_for_every_run(digits_x4: SuperResolutionData) -> None:
    train_idx, held_idx = split_indices(1797, 0.2)
    assert len(held_idx) == 359 and not set(train_idx.tolist()) & set(held_idx.tolist())
    assert len(digits_x4) == 1797 - 359 and digits_x4.evaluation_size == 359
    again = SuperResolutionData("digits", scale=4, image_size=16)
    assert torch.equal(again.heldout_images, digits_x4.heldout_images)
    assert digits_x4.held_out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 3}, "data.scale must be one of 2, 4, 8"),
        ({"scale": 8, "image_size": 8}, "at least 2 low-res pixels"),
        ({"source": "gaussians"}, "super-resolution wraps one of"),
        ({"heldout": 1.0}, "data.heldout"),
    ],
)
def test_bad_super_resolution_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SuperResolutionData(**{"image_size": 16, **kwargs})


def test_content_terms_against_hand_values(digits_x4: SuperResolutionData) -> None:
    from ganlab.content.l1 import L1Content
    from ganlab.content.mse import MSEContent
    from ganlab.content.self_regularization import SelfRegularizationContent

    out = torch.tensor([[[[0.5, -0.5], [1.0, 0.0]]]])
    target = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]]])
    given = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]]])
    batch = Batch(target, given)
    term, stats = L1Content()(out, batch)
    assert stats["loss/content"].item() == pytest.approx(0.5) and term.item() == pytest.approx(50.0)  # lambda 100
    assert MSEContent()(out, batch)[0].item() == pytest.approx((0.25 + 0.25 + 1.0) / 4)
    assert SelfRegularizationContent(weight=2.0)(out, batch)[0].item() == pytest.approx(2 * (0 + 1 + 0.5 + 0.5) / 4)


def test_perceptual_distance_is_measured_in_the_digits_classifiers_features(digits_x4: SuperResolutionData) -> None:
    from ganlab.content.perceptual import PerceptualContent
    from ganlab.metrics.classifier import load_classifier
    from ganlab.metrics.extractors import SHIPPED_WEIGHTS

    term = PerceptualContent(weight=3.0, network="digits")
    term.check(digits_x4, digits_x4.shape)
    high, _ = digits_x4.sample_pair(4)
    noisy = (high + 0.3 * torch.randn_like(high)).clamp(-1, 1)
    net, _ = load_classifier(SHIPPED_WEIGHTS / "digits.pt")
    by_hand = (net.conv[:-2](noisy) - net.conv[:-2](high)).square().mean()  # 16x16: the classifier's own size
    value, stats = term(noisy, Batch(high, None))
    assert stats["loss/content"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert value.item() == pytest.approx(3 * by_hand.item(), rel=1e-5)
    assert term(high, Batch(high, None))[0].item() == 0.0


def test_vgg19_features_are_torchvisions_layout() -> None:
    """The checkpoint torchvision downloads (vgg19-dcbb9e9d.pth) loads into ganlab's VGG19 features: its 16 convs'
    names and shapes, as `torchvision.models.vgg19().features.state_dict()` has them (importing it takes seconds)."""
    from ganlab.content.perceptual import vgg19_features

    convs = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
             (16, 256, 256), (19, 256, 512), (21, 512, 512), (23, 512, 512), (25, 512, 512), (28, 512, 512),
             (30, 512, 512), (32, 512, 512), (34, 512, 512)]  # fmt: skip
    theirs = {}
    for index, c_in, c_out in convs:
        theirs[f"{index}.weight"] = (c_out, c_in, 3, 3)
        theirs[f"{index}.bias"] = (c_out,)
    assert {k: tuple(v.shape) for k, v in vgg19_features().state_dict().items()} == theirs


def test_vgg_features_read_grey_images_as_imagenet_rgb() -> None:
    from ganlab.content.perceptual import VGG_RESCALE, VGGFeatures, vgg19_features

    torch.manual_seed(0)
    layers = vgg19_features()
    features = VGGFeatures({f"features.{k}": v for k, v in layers.state_dict().items()}, "relu2_2").eval()
    grey = torch.rand(2, 1, 16, 16) * 2 - 1
    rgb = (grey.expand(-1, 3, -1, -1) + 1) / 2
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    by_hand = layers[:9]((rgb - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)) * VGG_RESCALE
    assert torch.allclose(features(grey), by_hand, atol=1e-6)
    assert features(grey).shape == (2, 128, 8, 8)  # relu2_2: after one pooling


def test_content_terms_refuse_data_without_pairs() -> None:
    from ganlab.build import build

    with pytest.raises(ConfigError, match="needs image-conditioned data"):
        build(compose_cfg("content=l1", "data.image_size=16"))
    with pytest.raises(ConfigError, match="must have the same shape"):
        build(compose_cfg(*SR, "content=self_regularization"))
    with pytest.raises(ConfigError, match="pre-training fits G's output to a paired target"):
        build(compose_cfg("trainer.pretrain_steps=2", "data.image_size=16"))


def test_pretraining_trains_g_alone_then_the_game_begins(tmp_path: Path) -> None:
    cfg = compose_cfg(*SR, "content=mse", "trainer.steps=4", "trainer.pretrain_steps=2", "trainer.log_every=1")
    torch.manual_seed(cfg.seed)
    from ganlab.build import build, seed_everything

    seed_everything(cfg.seed)
    D_before = {k: v.clone() for k, v in build(cfg).D.state_dict().items()}
    only_pretraining = compose_cfg(*SR, "content=mse", "trainer.steps=2", "trainer.pretrain_steps=2")
    train(only_pretraining, tmp_path / "pre")
    D_after = load_checkpoint(tmp_path / "pre" / "checkpoints" / "last.pt")["D"]
    assert all(torch.equal(D_before[k], D_after[k]) for k in D_before)  # D untouched while G pre-trains

    train(cfg, tmp_path / "run")
    scalars, images = read_events(tmp_path / "run")
    assert [s for s, _ in scalars["loss/pretrain"]] == [1, 2]
    assert all(rate > 0 for _, rate in scalars["perf/images_per_s"])  # G's pre-training draws data too
    assert [s for s, _ in scalars["D/real"]] == [3, 4] and [s for s, _ in scalars["loss/content"]] == [3, 4]
    assert images["samples"] == [2, 4]


def test_the_pictures_are_input_output_target_triplets(tmp_path: Path) -> None:
    from ganlab.build import build
    from ganlab.generation import FixedInputs

    cfg = compose_cfg(*SR, "trainer.num_samples=3")
    parts = build(cfg)
    fixed = FixedInputs.for_run(parts, 3, 0)
    high, low = parts.data.picture_pairs(3)
    assert torch.equal(fixed.targets, high) and torch.equal(fixed.labels, low)
    samples = fixed.generate(parts.G)
    picture = fixed.picture(samples)
    assert picture.shape == (3, 2 + 3 * 18, 2 + 3 * 18)  # a triplet a row, 16 px tiles + 2 px padding
    first_input = low[0].repeat_interleave(4, -1).repeat_interleave(4, -2).add(1).div(2)
    assert torch.allclose(picture[0, 2:18, 2:18], first_input[0])
    assert torch.allclose(picture[0, 2:18, 38:54], high[0, 0].add(1).div(2))


class Bicubic(nn.Module):
    """A 'generator' that upsamples bicubically: its scores must equal the bicubic baseline's."""

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return upsample_bicubic(condition, 4)


def test_the_evaluation_scores_bicubic_as_its_baseline(digits_x4: SuperResolutionData) -> None:
    cfg = compose_cfg(*SR)
    evaluator = make_evaluator(digits_x4, cfg.data, "digits", n=50, batch_size=20)
    assert evaluator.primary == "psnr" and evaluator.n == 50
    result = evaluator(Bicubic(), 1).metrics
    assert result["psnr"] == pytest.approx(result["psnr_bicubic"]) and result["ssim"] == result["ssim_bicubic"]
    assert result["fid_digits"] == pytest.approx(result["fid_digits_bicubic"])
    high = digits_x4.heldout_images[:50]
    up = upsample_bicubic(digits_x4.low_res(high), 4)
    assert result["psnr"] == pytest.approx(psnr(up, high, border=2).mean().item())
    assert 0 < result["ssim"] < 1


def test_train_and_eval_a_super_resolution_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = compose_cfg(*SR, "content=perceptual", "content.network=digits", "trainer.eval_every=4", "trainer.eval_n=20")
    train(cfg, tmp_path)
    scalars, _ = read_events(tmp_path)
    assert {"metrics/psnr", "metrics/ssim", "metrics/fid_digits", "metrics/psnr_bicubic", "loss/content"} <= set(
        scalars
    )
    code, err = cli_exit(["eval", f"run={tmp_path}", "n=20"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "metrics.json").read_text())
    values = {m["metric"]: m for m in report["metrics"]}
    assert values["psnr"]["n_samples"] == 20 and not values["psnr"]["lower_is_better"]
    assert values["fid_digits_bicubic"]["lower_is_better"]
    assert values["psnr_bicubic"]["value"] == pytest.approx(dict(scalars["metrics/psnr_bicubic"])[4], rel=1e-6)


def test_a_class_conditional_super_resolution_model_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = exits_2(["train", *SR, "model.conditional=true", "debug=fast"], capsys)
    assert "conditioned on images, not classes" in err or "needs labelled data" in err


CONTENT_MODEL = {"self_regularization": "refiner"}  # compares with the input: needs an output of the input's size


@pytest.mark.parametrize("content", [c for c in options("content") if c != "none"])  # none: test_train.py
def test_every_content_term_trains(content: str, tmp_path: Path) -> None:
    model = CONTENT_MODEL.get(content, "srresnet")
    offline = ["content.network=digits"] if content == "perceptual" else []
    cfg = compose_cfg(f"model={model}", *image_conditioned(model, tmp_path), f"content={content}", *offline)
    train(cfg, tmp_path / "run")
    scalars, _ = read_events(tmp_path / "run")
    assert "loss/content" in scalars
    assert all(v == v for _, v in scalars["loss/G"])  # finite (NaN != NaN)
