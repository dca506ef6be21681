"""Feature extractors and the evaluator: the digits classifier really reads digits, FID separates real from
noise, caches are reused, MNIST's classifier is trained once, and Inception's weights are handled safely."""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from ganlab.data.digits import DigitsData
from ganlab.errors import ConfigError
from ganlab.evaluation import Evaluator
from ganlab.metrics.classifier import load_classifier
from ganlab.metrics.extractors import SHIPPED_WEIGHTS, get_extractor
from ganlab.metrics.fidelity import fid
from tests.conftest import DIGITS_IMAGE_METRICS, compose_cfg

DIGITS_CFG = OmegaConf.create({"_target_": "ganlab.data.digits.DigitsData", "image_size": 16})


class Replay(nn.Module):
    """A stand-in generator: returns what `draw(batch)` gives, ignoring z."""

    def __init__(self, draw) -> None:  # noqa: ANN001
        super().__init__()
        self.draw = draw

    def forward(self, z: Tensor) -> Tensor:
        return self.draw(len(z))


def test_the_shipped_digits_classifier_reads_digits() -> None:
    model, meta = load_classifier(SHIPPED_WEIGHTS / "digits.pt")  # torch.load(weights_only=True) inside
    assert meta["test_accuracy"] >= 0.97
    data = DigitsData(image_size=16)
    with torch.no_grad():
        predicted = model(data.images)[1].argmax(1)
    assert (predicted == data.labels).float().mean() >= 0.97
    # Other resolutions are resized to the classifier's: digits at 32x32 read as well.
    big = DigitsData(image_size=32)
    with torch.no_grad():
        assert (model(big.images)[1].argmax(1) == big.labels).float().mean() >= 0.95


def test_digits_fid_of_real_against_real_is_far_below_noise_against_real() -> None:
    data = DigitsData(image_size=16)
    extractor = get_extractor("digits", DIGITS_CFG, torch.device("cpu"))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    half_a, half_b = data.images[order[:898]], data.images[order[898:]]
    real_vs_real = fid(extractor(half_a)[0], extractor(half_b)[0])
    noise = torch.rand(898, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    noise_vs_real = fid(extractor(noise)[0], extractor(half_b)[0])
    blur = torch.nn.functional.avg_pool2d(half_a, 5, stride=1, padding=2)  # digits, but smudged
    blur_vs_real = fid(extractor(blur)[0], extractor(half_b)[0])
    assert real_vs_real < 0.02 * noise_vs_real
    assert real_vs_real < blur_vs_real < noise_vs_real


def test_features_are_computed_in_plain_float32_whatever_the_run_has_set() -> None:
    """Under a bf16 run's autocast and with TF32 allowed (cuDNN's default on a GPU), the extractor still computes
    in float32 without TF32, and gives back the settings it found."""
    from ganlab.metrics.extractors import Extractor

    seen = []

    class Probe(nn.Module):
        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            seen.append(
                (
                    torch.is_autocast_enabled("cpu"),
                    torch.backends.cudnn.allow_tf32,
                    torch.backends.cuda.matmul.allow_tf32,
                )
            )
            y = nn.functional.linear(x.flatten(1), torch.ones(3, x[0].numel()))
            return y, y

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features, _ = Extractor("probe", "1", Probe(), False)(torch.rand(2, 1, 4, 4))
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    assert seen == [(False, False, False)]
    assert features.dtype == torch.float32


def test_evaluator_scores_real_digits_as_good_and_one_class_as_collapsed() -> None:
    data = DigitsData(image_size=16)
    evaluator = Evaluator(data, DIGITS_CFG, "auto", n=1000)
    assert evaluator.features == "digits"
    real = evaluator(Replay(data.sample), z_dim=4).metrics
    ones = data.images[data.labels == 1]
    collapsed = evaluator(Replay(lambda n: ones[torch.randint(len(ones), (n,))]), z_dim=4).metrics
    assert set(real) == DIGITS_IMAGE_METRICS
    assert real["classes"] == 10 and real["class_kl"] < 0.02
    assert collapsed["classes"] == 1 and collapsed["class_kl"] > 2.0  # log(10) = 2.30 for one class
    assert real["fid_digits"] < 0.1 * collapsed["fid_digits"]
    assert real["kid_digits"] < 0.1 * collapsed["kid_digits"]
    assert real["is_digits"] > 8.5 and collapsed["is_digits"] < 1.5
    assert real["recall_digits"] > 0.8 and collapsed["recall_digits"] < 0.3


def test_real_features_are_cached_per_data_and_reused(isolated_caches: Path) -> None:
    data = DigitsData(image_size=16)
    first = Evaluator(data, DIGITS_CFG, "digits", n=300)
    files = list((isolated_caches / "ganlab" / "reference").glob("digits-train-16px-digits-n300-*.pt"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = Evaluator(data, DIGITS_CFG, "digits", n=300)
    assert files[0].stat().st_mtime_ns == stamp  # read, not recomputed
    assert torch.equal(first.reference.features, second.reference.features)
    Evaluator(DigitsData(image_size=32), OmegaConf.merge(DIGITS_CFG, {"image_size": 32}), "digits", n=300)
    assert len(list((isolated_caches / "ganlab" / "reference").glob("digits-train-*-digits-n300-*.pt"))) == 2


def test_evaluation_leaves_the_global_rng_alone() -> None:
    data = DigitsData(image_size=16)
    G = nn.Sequential(nn.Linear(4, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluator = Evaluator(data, DIGITS_CFG, "digits", n=100)
    evaluator(G, z_dim=4)
    assert torch.equal(torch.rand(3), expected)


def test_mnist_classifier_is_trained_on_first_use_then_cached(
    mnist_root: Path, isolated_caches: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ganlab.data.selection import build_data

    cfg = compose_cfg("data=mnist", f"data.root={mnist_root}", "data.download=false", "data.image_size=16").data
    data = build_data(cfg, "cpu")
    with caplog.at_level("INFO", logger="ganlab"):
        Evaluator(data, cfg, "auto", n=20)
    assert "training the mnist feature classifier once" in caplog.text
    cached = list((isolated_caches / "ganlab" / "classifiers").glob("mnist-16px-*.pt"))
    assert len(cached) == 1
    _, meta = load_classifier(cached[0])
    assert meta["dataset"] == "mnist" and meta["test_size"] >= 1
    caplog.clear()
    with caplog.at_level("INFO", logger="ganlab"):
        Evaluator(data, cfg, "mnist", n=20)
    assert "training" not in caplog.text


def test_inception_offline_without_weights_says_where_to_put_them(
    isolated_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)  # what a machine without network sees
    with pytest.raises(ConfigError) as err:
        get_extractor("inception", DIGITS_CFG, torch.device("cpu"))
    message = str(err.value)
    expected_path = isolated_caches / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    assert str(expected_path) in message
    assert "https://github.com/toshas/torch-fidelity/releases/download/" in message
    assert "copy the file to" in message


def random_inception_weights(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state dict with the FID Inception's exact keys and shapes, randomly initialised."""
    import torch_fidelity.feature_extractor_inceptionv3 as module

    with monkeypatch.context() as patch:
        patch.setattr(module, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(module.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
        net = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)


@pytest.mark.slow  # builds Inception-v3 (5 s); the GPU presets' metric, run with -m slow
def test_inception_features_from_a_cached_weights_file(isolated_caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ganlab.metrics.inception import weights_path

    random_inception_weights(weights_path(), monkeypatch)
    data = DigitsData(image_size=16)
    evaluator = Evaluator(data, DIGITS_CFG, "inception", n=12, batch_size=6)
    assert evaluator.reference.features.shape == (12, 2048)
    assert evaluator.reference.logits.shape == (12, 1008)
    assert evaluator.reference.class_share is None  # ImageNet's classes are not the data's
    metrics = evaluator(Replay(data.sample), z_dim=4).metrics
    assert "classes" not in metrics and all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


class _Payload:
    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/ganlab-pwned-marker")


def test_a_malicious_inception_weights_file_is_refused_and_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganlab.metrics.inception import weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # its own: the file must not outlive the test
    MARKER.unlink(missing_ok=True)
    path = weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"Conv2d_1a_3x3.conv.weight": _Payload()}))
    with pytest.raises(ConfigError, match="not a readable weights file"):
        get_extractor("inception", DIGITS_CFG, torch.device("cpu"))
    assert not MARKER.exists()


def test_unknown_extractor_and_bad_sample_counts() -> None:
    data = DigitsData(image_size=16)
    with pytest.raises(ConfigError, match="features='vgg' is not a feature extractor"):
        Evaluator(data, DIGITS_CFG, "vgg", n=100)
    with pytest.raises(ConfigError, match="n must be >= 1"):
        Evaluator(data, DIGITS_CFG, "digits", n=0)
    with pytest.raises(ConfigError, match="n >= 10"):
        Evaluator(data, DIGITS_CFG, "digits", n=5)


def test_a_feature_classifier_whose_data_is_missing_says_it_is_the_classifiers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """features=mnist for a digits run: MNIST's files are the classifier's need, not the run's data."""
    import shutil

    from ganlab import config
    from ganlab.errors import ConfigError
    from ganlab.metrics.extractors import classifier_training_set

    conf = tmp_path / "conf"
    shutil.copytree(config.CONF_DIR, conf)
    mnist = conf / "data" / "mnist.yaml"
    mnist.write_text(mnist.read_text().replace("download: true", "download: false"))  # no network in a test
    monkeypatch.setattr(config, "CONF_DIR", conf)
    monkeypatch.setenv("GANLAB_DATA", str(tmp_path / "nothing_here"))
    with pytest.raises(ConfigError) as refused:
        classifier_training_set("mnist", DIGITS_CFG)
    message = str(refused.value)
    assert message.startswith("features=mnist trains its feature classifier on mnist's training set")
    assert "Choose features= of the run's own data" in message
