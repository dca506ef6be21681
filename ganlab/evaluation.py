"""Judge a generator: the metrics that fit its data, computed from n fresh samples.

2-D mixtures get the mode metrics; images get FID, KID, Inception Score and precision/recall in the chosen
extractor's feature space, plus the class histogram when the extractor classifies the data's own classes.
Used by `ganlab eval` and, every `trainer.eval_every` steps, by the training loop.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganlab.data.base import metrics_images
from ganlab.errors import ConfigError
from ganlab.generation import sample_batches
from ganlab.metric_names import rename, split, with_extractor
from ganlab.metrics.fidelity import IS_SPLITS, PRC_NEIGHBOURHOOD, fid, inception_score, kid, precision_recall
from ganlab.metrics.modes import covered, mode_metrics, reverse_kl
from ganlab.models.conditional import balanced_labels
from ganlab.protocols import ImageSource, PointMixture

DEFAULT_N = {"images": 10_000, "points": 2_500}
MIN_IMAGES = max(IS_SPLITS, PRC_NEIGHBOURHOOD + 1)  # the Inception Score's splits, precision/recall's k-NN
MIN_REAL = PRC_NEIGHBOURHOOD + 1
LOWER_IS_BETTER = {
    "fid",
    "kid",
    "kid_std",
    "kl",
    "kl_all",
    "class_kl",
    "is_std",
    "fid_bicubic",
    "fid_raw",
    "l1",
    "autocorrelation",
}
LOWER_IS_BETTER |= {"marginal", "discriminative", "discriminative_std", "predictive", "predictive_std"}
LOWER_IS_BETTER |= {"predictive_real", "predictive_real_std"}
DESCRIPTIONS = {
    "modes": "modes covered (>= 1/5 of their share of samples)",
    "high_quality": "share of samples within 3 std of a mode centre",
    "kl": "KL(generated mode histogram || uniform), nats",
    "kl_all": "KL(real || generated) over modes + off-mode, all points, nats",
    "fid": "Frechet distance of features",
    "kid": "kernel distance of features (MMD^2, cubic kernel)",
    "kid_std": "KID's std over subsets",
    "is": "Inception Score (from the extractor's logits)",
    "is_std": "IS's std over 10 splits",
    "precision": "improved precision (k=3)",
    "recall": "improved recall (k=3)",
    "classes": "classes present (>= 1/5 of their real share)",
    "class_kl": "KL(predicted class histogram || real), nats",
    "class_accuracy": "share of samples classified as the class they were drawn for",
    "psnr": "PSNR of G's upscaling of held-out images, luma, dB",
    "ssim": "SSIM of G's upscaling of held-out images, luma",
    "psnr_bicubic": "PSNR of bicubic upscaling of the same inputs, dB",
    "ssim_bicubic": "SSIM of bicubic upscaling of the same inputs",
    "fid_bicubic": "Frechet distance of bicubic upscalings' features to the real images'",
    "real_accuracy": "accuracy on held-out real images of a classifier trained on refined synthetic ones",
    "real_accuracy_raw": "... of the same classifier trained on the raw synthetic images",
    "fid_raw": "Frechet distance of the raw synthetic images' features to the real images'",
    "l1": "mean |G(A) - B| per pixel on held-out pairs, in [-1, 1] units (lower is better)",
    "discriminative": "|accuracy - 0.5| of a post-hoc GRU telling real from generated sequences",
    "discriminative_std": "its std over the repeats",
    "predictive": "MAE on real sequences of a GRU predictor trained on generated ones",
    "predictive_std": "its std over the repeats",
    "predictive_real": "... of the same predictor trained on real sequences",
    "predictive_real_std": "its std over the repeats",
    "marginal": "Wasserstein-1 distance of the values' distributions, mean over channels",
    "autocorrelation": "mean |ACF(real) - ACF(generated)| over lags 1-10 and channels",
}
PER_CHANNEL = {"marginal_": "Wasserstein-1 distance of channel {}'s values"}  # sequence metrics named per channel


def describe(metric: str) -> str:
    """A metric's one-line description, per-channel ones and the feature space included."""
    for prefix, description in PER_CHANNEL.items():
        if metric.startswith(prefix) and metric not in DESCRIPTIONS:
            return description.format(metric[len(prefix) :])
    plain, extractor = split(metric)
    return DESCRIPTIONS[plain] + (f" [{extractor} features]" if extractor else "")


def make_evaluator(
    data: Any,
    data_cfg: Any,
    features: str = "auto",
    n: int | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 250,
    option_prefix: str = "",
    num_classes: int | None = None,
    repeats: int | None = None,
    post_hoc_steps: int | None = None,
) -> Any:
    """The evaluator that fits the data: its task's own measures for image-conditioned data and sequences (a
    `task` member: ganlab/evaluators/<task>.py), else the generative metrics of Evaluator. `repeats` and
    `post_hoc_steps` set the sequence evaluator's repeated post-hoc networks (None: its defaults)."""
    task = getattr(data, "task", None)
    if task == "sequence":
        from ganlab.evaluators.sequence import TaskEvaluator

        return TaskEvaluator(data, features, n, device, batch_size, option_prefix, num_classes, repeats, post_hoc_steps)
    for key, value in (("repeats", repeats), ("post_hoc_steps", post_hoc_steps)):
        if value is not None:
            raise ConfigError(
                f"{option_prefix}{key}={value}: only sequence data (data=sines, csv) is judged by repeated "
                "post-hoc networks; leave it out."
            )
    if task is not None:
        module = importlib.import_module(f"ganlab.evaluators.{task}")
        return module.TaskEvaluator(data, features, n, device, batch_size, option_prefix)
    return Evaluator(data, data_cfg, features, n, device, batch_size, option_prefix, num_classes)


def lower_is_better(metric: str) -> bool:
    return split(metric)[0] in LOWER_IS_BETTER or metric.startswith(tuple(PER_CHANNEL))


@dataclass
class Evaluation:
    metrics: dict[str, float]
    n_samples: int
    n_real: int | None
    features: str | None  # None for the mode metrics


class Evaluator:
    """Built once per run (the extractor and the real features are loaded here), called per evaluation."""

    def __init__(
        self,
        data: Any,
        data_cfg: Any,
        features: str = "auto",
        n: int | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 250,
        option_prefix: str = "",
        num_classes: int | None = None,
    ) -> None:
        """`option_prefix` names the options in messages: "" for `ganlab eval n=`, "trainer.eval_" for
        `trainer.eval_n=`. `num_classes`: the generator is conditional on that many classes; it is asked for
        every class equally often, and scored on whether its samples show the class asked for."""
        self.option_prefix = option_prefix
        self.num_classes = num_classes
        # Building networks draws random numbers: keep the caller's (a training run's) RNG where it was.
        devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self._setup(data, data_cfg, features, n, device, batch_size)

    def _setup(
        self,
        data: ImageSource | PointMixture,
        data_cfg: Any,
        features: str,
        n: int | None,
        device: torch.device | str,
        batch_size: int,
    ) -> None:
        from ganlab.metrics.extractors import default_features, get_extractor
        from ganlab.metrics.reference import reference_features

        self.device = torch.device(device)
        self.batch_size = batch_size
        self.points = len(data.shape) == 1
        self.n = DEFAULT_N["points" if self.points else "images"] if n is None else int(n)
        n_option, features_option = f"{self.option_prefix}n", f"{self.option_prefix}features"
        if self.n < 1:
            raise ConfigError(f"{n_option} must be >= 1 (samples to evaluate), got {self.n}.")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
        if self.points:
            if features not in ("auto", None):
                raise ConfigError(
                    f"{features_option}={features}: 2-D data is judged by mode metrics, which use no features; "
                    f"leave {features_option}=auto."
                )
            if not isinstance(data, PointMixture):
                raise ConfigError(f"{type(data).__name__} has no mode centres: ganlab's 2-D metrics need them.")
            self.centres, self.std = data.centres.cpu(), float(data.std)
            self.features = None
            return
        if self.n < MIN_IMAGES:
            raise ConfigError(
                f"image metrics need {n_option} >= {MIN_IMAGES} (the Inception Score's splits), got {self.n}."
            )
        n_real = len(metrics_images(data))  # data.limit trains on a subset; the metrics use the whole
        if n_real < MIN_REAL:
            raise ConfigError(
                f"the data holds {n_real} images; image metrics need at least {MIN_REAL} real ones "
                f"(precision/recall compare each with its {PRC_NEIGHBOURHOOD} nearest neighbours)."
            )
        self.features = default_features(data_cfg, points=False) if features in ("auto", None) else features
        self.extractor = get_extractor(self.features, data_cfg, self.device, option=features_option)
        self.reference = reference_features(data, data_cfg, self.extractor, self.n, batch_size)

    @property
    def primary(self) -> str:
        """The metric to monitor when none is named: kl_all for 2-D data (it cannot be won by collapse), else FID
        in the run's extractor (fid_digits, fid_inception)."""
        return "kl_all" if self.points else with_extractor("fid", self.features)

    def names(self) -> list[str]:
        if self.points:
            return ["modes", "high_quality", "kl", "kl_all"]
        names = ["fid", "kid", "kid_std", "is", "is_std", "precision", "recall"]
        if self.reference.class_share is not None:
            names += ["classes", "class_kl"] + (["class_accuracy"] if self.num_classes else [])
        return [with_extractor(name, self.features) for name in names]

    def requested_labels(self) -> torch.Tensor | None:
        """The classes a conditional generator is asked for: each equally often (up to one sample)."""
        return balanced_labels(self.n, self.num_classes) if self.num_classes else None

    def __call__(self, G: nn.Module, z_dim: int, seed: int = 0) -> Evaluation:
        labels = self.requested_labels()
        batches = sample_batches(G, z_dim, self.n, seed, self.batch_size, self.device, labels)
        if self.points:
            points = torch.cat([b.cpu() for b in batches])
            return Evaluation(mode_metrics(points, self.centres, self.std), self.n, None, None)
        features, logits = [], []
        for images in batches:
            f, lg = self.extractor(images)
            features.append(f.cpu())
            logits.append(lg.cpu())
        fake, fake_logits = torch.cat(features), torch.cat(logits)
        real = self.reference.features
        kid_mean, kid_std = kid(fake, real)
        is_mean, is_std = inception_score(fake_logits)
        precision, recall = precision_recall(fake, real)
        metrics = {
            "fid": fid(fake, real),
            "kid": kid_mean,
            "kid_std": kid_std,
            "is": is_mean,
            "is_std": is_std,
            "precision": precision,
            "recall": recall,
        }
        share = self.reference.class_share
        if share is not None:
            counts = torch.bincount(fake_logits.argmax(1), minlength=len(share))
            metrics["classes"] = float(covered(counts, self.n, share))
            metrics["class_kl"] = reverse_kl(counts, share.clamp_min(1e-12))
            if labels is not None:
                metrics["class_accuracy"] = float((fake_logits.argmax(1) == labels).double().mean())
        return Evaluation(rename(metrics, self.features), self.n, len(real), self.features)
