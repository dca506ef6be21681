"""`features=digits|mnist|fashion_mnist`: a small CNN classifier trained by ganlab on the real training set.

Its 64-d penultimate activations stand in for Inception's pool features (FID, KID, precision/recall) and its
logits for Inception's (Inception Score, and the class histogram of the samples). This is the offline
counterpart of FID for the small greyscale sets, in the spirit of the "MNIST Inception Score" of the
GAN literature: numbers compare runs within ganlab, not with Inception-based figures in papers.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.checkpoint import atomic_torch_save
from ganlab.errors import ConfigError

log = logging.getLogger("ganlab")
FORMAT = "ganlab-classifier-v1"


class FeatureClassifier(nn.Module):
    """Two conv blocks (3x3 convs, ReLU, 2x2 max-pool), a 64-d feature layer, a linear classifier.

    Inputs are images in [-1, 1] of any size: they are resized to the resolution it was trained at."""

    def __init__(
        self, channels: int = 1, resolution: int = 16, num_classes: int = 10, width: int = 16, feature_dim: int = 64
    ) -> None:
        super().__init__()
        if resolution % 4:
            raise ValueError(f"the classifier's resolution must be a multiple of 4, got {resolution}")
        self.channels, self.resolution, self.num_classes = channels, resolution, num_classes
        self.hparams = dict(
            channels=channels, resolution=resolution, num_classes=num_classes, width=width, feature_dim=feature_dim
        )
        w = width
        self.conv = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )  # fmt: skip
        self.features = nn.Sequential(nn.Linear(2 * w * (resolution // 4) ** 2, feature_dim), nn.ReLU(True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)
        # Features are divided by their RMS over the real training images, set after training: the metrics
        # then have a scale that does not depend on how large this network's activations happened to grow
        # (KID's cubic kernel is especially sensitive to it).
        self.register_buffer("feature_scale", torch.ones(()))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(N, C, H, W) in [-1, 1] -> (features (N, feature_dim), logits (N, num_classes))."""
        if images.shape[1] != self.channels:
            raise ConfigError(
                f"this feature classifier reads {self.channels}-channel images, got {images.shape[1]} channels; "
                "use features=inception for colour images."
            )
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = F.interpolate(
                images.float(), size=(self.resolution, self.resolution), mode="bilinear", antialias=True
            )
        features = self.features(self.conv(images))
        return features / self.feature_scale, self.head(self.dropout(features))


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random shifts of up to 1/8 of the side, rotations up to 10 degrees and scalings of +-10 %: what a
    generator's imperfect strokes look like, so that the classifier does not over-fit the exact pixels."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 0.25  # grid units: 2 = the whole side
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, align_corners=False, padding_mode="zeros") - 1  # pad with background


def train_classifier(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    resolution: int,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    holdout: float = 0.1,
    seed: int = 0,
) -> tuple[FeatureClassifier, dict[str, Any]]:
    """Train on all but a `holdout` share of (images in [-1, 1], labels), on the CPU; report the held-out
    accuracy in the returned metadata. The global RNG is left as it was (a training run may call this)."""
    with torch.random.fork_rng(devices=[]):
        return _train(images, labels, num_classes, resolution, epochs, batch_size, lr, holdout, seed)


def _train(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    resolution: int,
    epochs: int,
    batch_size: int,
    lr: float,
    holdout: float,
    seed: int,
) -> tuple[FeatureClassifier, dict[str, Any]]:
    gen = torch.Generator().manual_seed(seed)
    images = images.float().cpu()
    if images.shape[-1] != resolution:
        images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", antialias=True)
    labels = labels.long().cpu()
    order = torch.randperm(len(images), generator=gen)
    n_test = max(1, int(len(images) * holdout))
    test, fit = order[:n_test], order[n_test:]
    # The weights' initialisation, on the CPU. Not torch.manual_seed: it seeds every GPU as well, which the CPU-only
    # fork_rng around this does not restore, so a GPU run's batches and noise would restart at each evaluation.
    torch.random.default_generator.manual_seed(seed)
    model = FeatureClassifier(images.shape[1], resolution, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * math.ceil(len(fit) / batch_size)
    )
    model.train()
    for _ in range(epochs):
        for idx in fit[torch.randperm(len(fit), generator=gen)].split(batch_size):
            _, logits = model(augment(images[idx], gen))
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        features = torch.cat([model(images[i])[0] for i in fit.split(1024)])
        model.feature_scale.copy_(features.square().mean().sqrt())
        predicted = torch.cat([model(images[i])[1].argmax(1) for i in test.split(1024)])
    accuracy = float((predicted == labels[test]).float().mean())
    meta = {"test_accuracy": accuracy, "train_size": len(fit), "test_size": n_test, "epochs": epochs, "seed": seed}
    return model, meta


def save_classifier(model: FeatureClassifier, meta: dict[str, Any], path: Path) -> None:
    atomic_torch_save({"format": FORMAT, "hparams": model.hparams, "state_dict": model.state_dict(), **meta}, path)


def load_classifier(path: Path) -> tuple[FeatureClassifier, dict[str, Any]]:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(f"{path} is not a readable ganlab feature classifier ({type(err).__name__}).") from err
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a ganlab feature classifier (format {FORMAT} expected).")
    model = FeatureClassifier(**saved["hparams"])
    model.load_state_dict(saved["state_dict"])
    model.eval().requires_grad_(False)
    return model, {k: v for k, v in saved.items() if k not in ("state_dict", "hparams", "format")}
