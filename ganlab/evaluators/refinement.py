"""Judging refinement (data=unpaired, model=refiner) by SimGAN's own test (Shrivastava et al. 2017, sec. 4.2,
Table 2): does training on refined synthetic images transfer to real ones better than training on raw ones?

The same classifier (ganlab/metrics/classifier.py, trained from the same seed for the same epochs) is trained
once on the raw synthetic images and once on G's refinements of them, with the synthetic labels, and both are
scored on real images that never trained (data.heldout): `real_accuracy` and `real_accuracy_raw`. FID of the
refined and of the raw images against those real images says how real they look.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganlab.data.base import to_model_range
from ganlab.errors import ConfigError
from ganlab.evaluators import evaluation_count, forked_rng, task_extractor
from ganlab.generation import generate, latents
from ganlab.metric_names import rename, with_extractor
from ganlab.metrics.classifier import FeatureClassifier, train_classifier
from ganlab.metrics.fidelity import fid

CLASSIFIER_EPOCHS = 10
CLASSIFIER_SEED = 0
MIN_IMAGES = 20  # enough for each of ten classes to appear in the classifier's training set


class TaskEvaluator:
    """Built once per run (the real features and the raw images' classifier), called per evaluation."""

    primary = "real_accuracy"

    def __init__(
        self,
        data: Any,
        features: str = "auto",
        n: int | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 250,
        option_prefix: str = "",
    ) -> None:
        self.data, self.device, self.batch_size = data, torch.device(device), batch_size
        self.n = evaluation_count(
            n,
            len(data.synthetic),
            MIN_IMAGES,
            f"{option_prefix}n",
            "a classifier trains on them",
            "data.synthetic holds {available} images",
        )
        if data.synthetic.labels is None or data.heldout_labels is None:
            raise ConfigError(
                "SimGAN's test trains a classifier on refined synthetic images and scores it on real ones: both "
                "data.synthetic and data.real need class labels."
            )
        self.num_classes = int(data.synthetic.num_classes)
        self.features, self.extractor = task_extractor(data.source_config, features, self.device, option_prefix)
        # What every evaluation compares with, read once: the held-out real digits and the raw synthetic ones.
        self.real = to_model_range(data.heldout_images).to(self.device)
        self.real_labels = data.heldout_labels.cpu()
        images, labels = zip(*data.synthetic_batches(self.n, batch_size), strict=True)
        self.raw, self.labels = torch.cat(images).to(self.device), torch.cat(labels).cpu()
        with forked_rng(self.device):
            self.real_features = self._features(self.real)
            self.raw_accuracy = self._transfer_accuracy(self.raw)
            self.raw_fid = fid(self._features(self.raw), self.real_features)

    def _features(self, images: Tensor) -> Tensor:
        return torch.cat([self.extractor(batch)[0].cpu() for batch in images.split(self.batch_size)])

    def _transfer_accuracy(self, images: Tensor) -> float:
        """Train the classifier on `images` with the synthetic labels; its accuracy on the held-out real images."""
        side = images.shape[-1] - images.shape[-1] % 4  # the classifier reads a multiple of 4
        model, _ = train_classifier(
            images.cpu(), self.labels, self.num_classes, side, CLASSIFIER_EPOCHS, holdout=0.02, seed=CLASSIFIER_SEED
        )
        return accuracy(model, self.real.cpu(), self.real_labels)

    def names(self) -> list[str]:
        names = ["real_accuracy", "real_accuracy_raw", "fid", "fid_raw"]
        return [with_extractor(name, self.features) for name in names]

    def __call__(self, G: nn.Module, z_dim: int, seed: int = 0) -> Any:
        from ganlab.evaluation import Evaluation

        z_all = latents(self.n, z_dim, seed)
        refined = torch.cat(
            [
                generate(G, z_all[i : i + len(batch)].to(self.device), batch).float().clamp(-1, 1)
                for i, batch in zip(range(0, self.n, self.batch_size), self.raw.split(self.batch_size), strict=True)
            ]
        )
        metrics = {
            "real_accuracy": self._transfer_accuracy(refined),
            "real_accuracy_raw": self.raw_accuracy,
            "fid": fid(self._features(refined), self.real_features),
            "fid_raw": self.raw_fid,
        }
        return Evaluation(rename(metrics, self.features), self.n, len(self.real_features), self.features)


@torch.no_grad()
def accuracy(model: FeatureClassifier, images: Tensor, labels: Tensor) -> float:
    predicted = torch.cat([model(batch)[1].argmax(1) for batch in images.split(1024)])
    return float((predicted == labels).float().mean())
