"""The `features=` choice: which network turns images into features (and class logits) for the metrics.

- `inception`: the standard FID InceptionV3 (`inception.py`), for any images; comparable with papers.
- `digits`: a classifier trained on the bundled digits; its weights ship in the package.
- `mnist`, `fashion_mnist`: classifiers trained on the real training set on first use, then cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from ganlab.cache import cache_dir
from ganlab.errors import ConfigError
from ganlab.metrics.classifier import load_classifier, save_classifier, train_classifier
from ganlab.targets import option_name

log = logging.getLogger("ganlab")

SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights"
# Dataset -> (resolution the classifier reads, training epochs, batch size). Digits are 8x8 upsampled: 16 keeps
# all their detail. MNIST-size sets are read at 16x16 too, which keeps first-use training to a minute or two on
# a CPU (28x28 took over 10 minutes on 2 cores) while a CNN still tells their classes apart.
CLASSIFIERS = {"digits": (16, 60, 64), "mnist": (16, 3, 128), "fashion_mnist": (16, 5, 128)}
EXTRACTORS = ("inception", *CLASSIFIERS)


@dataclass
class Extractor:
    name: str
    version: str  # identifies the weights: part of the key of cached real features
    net: nn.Module
    dataset_classes: bool  # the logits are the data's own classes: report the samples' class histogram

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        with full_float32(images.device.type):
            features, logits = self.net(images)
        return features.float(), logits.float()


@contextlib.contextmanager
def full_float32(device_type: str) -> Iterator[None]:
    """The extractor's arithmetic in plain float32 wherever it runs: no autocast (an evaluation during a bf16 run),
    no TF32 (cuDNN convolutions take it by default on an Ampere or later GPU). Features, and the FID made of
    them, then match the CPU's and the papers' to float32 rounding, and the cached real features (computed on
    one device) stay comparable with fakes computed on another."""
    with no_tf32(), torch.autocast(device_type, enabled=False):
        yield


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """float32 matrix products and convolutions in IEEE float32 (no TF32), the settings put back as they were."""
    switches = _tf32_switches()
    saved = [getattr(backend, name) for backend, name, _ in switches]
    try:
        for backend, name, off in switches:
            setattr(backend, name, off)
        yield
    finally:
        for (backend, name, _), value in zip(switches, saved, strict=True):
            setattr(backend, name, value)


def _tf32_switches() -> list[tuple[Any, str, Any]]:
    """(backend, setting, its no-TF32 value): the `allow_tf32` flags, unless the program has set torch's newer
    per-backend `fp32_precision` (torch 2.9 and later), after which reading the flags raises ("a mix of the
    legacy and new APIs"): then the newer settings."""
    try:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32  # noqa: B018
    except RuntimeError:
        newer = (torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.cudnn.rnn)
        return [(backend, "fp32_precision", "ieee") for backend in newer]
    return [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]


def data_name(data_cfg: Any) -> str:
    """`data=mnist` for a node whose `_target_` is `ganlab.data.mnist.MNISTData`; a source from elsewhere -> its
    class path (targets.option_name)."""
    return option_name(str(data_cfg["_target_"]))


def default_features(data_cfg: Any, points: bool) -> str | None:
    """None for 2-D data (mode metrics need no features); the data's own classifier if ganlab has one;
    else inception."""
    if points:
        return None
    name = data_name(data_cfg)
    return name if name in CLASSIFIERS else "inception"


DIGIT_SETS = {"digits", "mnist"}  # the same ten classes, 0-9


def get_extractor(name: str, data_cfg: Any, device: torch.device, option: str = "features") -> Extractor:
    if name not in EXTRACTORS:
        raise ConfigError(f"{option}={name!r} is not a feature extractor ganlab knows; choose one of {EXTRACTORS}.")
    if name == "inception":
        from ganlab.metrics.inception import InceptionFeatures, fetch_weights

        path = fetch_weights()
        return Extractor(name, path.stem, InceptionFeatures(path).eval().to(device), dataset_classes=False)
    path = classifier_path(name, data_cfg)
    net, _ = load_classifier(path)
    # The class histogram means something only when the classifier's classes are the data's own.
    own = data_name(data_cfg)
    same_classes = name == own or {name, own} <= DIGIT_SETS
    return Extractor(name, f"{path.stem}-{_file_digest(path)}", net.to(device), dataset_classes=same_classes)


def classifier_path(name: str, data_cfg: Any) -> Path:
    """The shipped digits classifier, or the cached one for `name`, trained now if it is not there yet."""
    if name == "digits":
        path = SHIPPED_WEIGHTS / "digits.pt"
        if not path.is_file():
            raise ConfigError(f"{path} is missing from this install; recreate it: python scripts/train_classifier.py")
        return path
    images, labels = classifier_training_set(name, data_cfg)
    resolution, epochs, batch_size = CLASSIFIERS[name]
    fingerprint = hashlib.sha256(images.numpy().tobytes() + labels.numpy().tobytes()).hexdigest()[:12]
    path = cache_dir() / "classifiers" / f"{name}-{resolution}px-{fingerprint}.pt"
    if not path.is_file():
        log.info("training the %s feature classifier once (%d images, %d epochs); it is cached at %s",
                 name, len(images), epochs, path)  # fmt: skip
        model, meta = train_classifier(images, labels, 10, resolution, epochs, batch_size=batch_size)
        save_classifier(model, {**meta, "dataset": name}, path)
        log.info("%s feature classifier: held-out accuracy %.4f", name, meta["test_accuracy"])
    return path


def classifier_training_set(name: str, data_cfg: Any) -> tuple[Tensor, Tensor]:
    """The training split of `name` at the classifier's resolution, as uint8 or float images and labels.

    The run's own data node is used when it is that dataset (its root); otherwise ganlab's default config."""
    from ganlab.config import CONF_DIR
    from ganlab.data.selection import without_selection
    from ganlab.protocols import InMemoryImageSource
    from ganlab.targets import instantiate_node

    own = data_name(data_cfg) == name
    node = data_cfg if own else OmegaConf.load(CONF_DIR / "data" / f"{name}.yaml")
    node = OmegaConf.merge(node, {"image_size": CLASSIFIERS[name][0]})
    try:
        data: InMemoryImageSource = instantiate_node(without_selection(node), device="cpu")  # the whole split
    except ConfigError as err:
        if own:
            raise
        # The run's data is another set: say that the feature classifier, not the run, needs these files.
        raise ConfigError(
            f"features={name} trains its feature classifier on {name}'s training set, which could not be read "
            f"({err}) Choose features= of the run's own data, or make {name}'s files available."
        ) from err
    images = data.images if data.images.dtype != torch.uint8 else data.images.float().mul(2 / 255).sub(1)
    return images.contiguous(), data.labels.contiguous()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
