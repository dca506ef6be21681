"""Judging a sequence generator (data=sines, data=csv) as TimeGAN does (Yoon et al. 2019, sec. 5), with the
simpler statistics beside them. The measures themselves are in ganlab/metrics/sequence.py.

Protocol: n real sequences (all of the data by default, a fixed subset otherwise) and n generated ones from
seeded latents (a conditional G is asked for the real sequences' own classes, a prefix-conditioned G continues
their own prefixes), judged as G writes them, what `ganlab sample` writes: a linear-output G's overshoot past
[0, 1] is there for the classifier to see, and is not clipped into flat stretches at 0 and 1 that G never wrote.
- discriminative: |accuracy - 0.5| of a post-hoc 2-layer GRU classifier, trained on 80 % of each, tested on the rest.
- predictive: train on synthetic, test on real. A GRU learns from the generated sequences to predict the last
  channel's next value from the other channels; its MAE on real sequences. predictive_real is the same
  predictor trained on real sequences. Unlike TimeGAN's code, which trains the real-data predictor on the very
  sequences it is tested on, both are tested on a fixed half of the real set that the real-data predictor never
  saw (it trains on the other half).
The two learned scores are repeated `repeats` times (each repeat its own split, initialisation and batches; all
trained at once, ganlab/metrics/gru_ensemble.py) on the same samples, as the paper's tables report mean ± std;
`<score>_std` is the spread. marginal (mean over channels, and per channel) is
the Wasserstein-1 distance of the values' marginal distributions; autocorrelation the mean absolute difference of
the autocorrelation functions up to lag 10.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.evaluators import evaluation_count
from ganlab.generation import sample_batches
from ganlab.metrics import sequence as measures

DEFAULT_REPEATS = 5
DISCRIMINATIVE_STEPS = 2000  # TimeGAN's discriminative_metrics.py
PREDICTIVE_STEPS = 5000  # TimeGAN's predictive_metrics.py
MIN_SEQUENCES = 10  # the classifier's 20 % test share needs a few of each
MAX_LAG = 10
SPLIT_SEED = 0  # the real halves of the predictive score: the same for every evaluation


class TaskEvaluator:
    """Built once per run (the real sequences, the real-data predictor's scores), called per evaluation."""

    primary = "discriminative"

    def __init__(
        self,
        data: Any,
        features: str = "auto",
        n: int | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 250,
        option_prefix: str = "",
        num_classes: int | None = None,
        repeats: int | None = None,
        post_hoc_steps: int | None = None,
    ) -> None:
        if features not in ("auto", None):
            raise ConfigError(
                f"{option_prefix}features={features}: sequences are judged by post-hoc recurrent networks trained "
                f"on them, not by a feature extractor; leave {option_prefix}features=auto."
            )
        self.repeats = DEFAULT_REPEATS if repeats is None else repeats
        checked = [("repeats", self.repeats)] + ([] if post_hoc_steps is None else [("post_hoc_steps", post_hoc_steps)])
        for key, value in checked:  # post_hoc_steps None: the papers' step counts
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
                raise ConfigError(f"{option_prefix}{key} must be an integer from 1 to 1,000,000, got {value!r}.")
        self.steps = (
            (DISCRIMINATIVE_STEPS, PREDICTIVE_STEPS) if post_hoc_steps is None else (post_hoc_steps, post_hoc_steps)
        )
        self.device, self.batch_size = torch.device(device), batch_size
        self.features = "post_hoc_gru"  # no feature extractor: networks trained on the sequences themselves
        self.protocol = f"repeats={self.repeats}, steps={self.steps[0]}/{self.steps[1]}"  # best.pt compares it
        self.n = evaluation_count(
            n,
            len(data),
            MIN_SEQUENCES,
            f"{option_prefix}n",
            "a classifier trains on 80 % of them and is tested on the rest",
            "the data holds {available} sequences",
        )
        self.channels = data.shape[1]
        self.channel_names = list(data.channel_names)
        idx = data.fixed_indices(self.n).to(data.sequences.device)
        self.real = data.sequences[idx].float().cpu()
        self.conditions = None
        if getattr(data, "prefix", 0):
            self.conditions = data.sequences[idx][:, : data.prefix]
        elif num_classes:
            self.conditions = data.labels[idx]
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(SPLIT_SEED))
        self.real_train, self.real_test = self.real[order[: self.n // 2]], self.real[order[self.n // 2 :]]
        self.last: tuple[Tensor, Tensor] | None = None  # (real, generated) of the latest evaluation, for figures

    def names(self) -> list[str]:
        names = ["discriminative", "discriminative_std"]
        if self.channels >= 2:
            names += ["predictive", "predictive_std", "predictive_real", "predictive_real_std"]
        names += ["marginal"] + [f"marginal_{c}" for c in self.channel_names]
        return names + (["autocorrelation"] if self.real.shape[1] > 1 else [])

    def generated(self, G: nn.Module, z_dim: int, seed: int) -> Tensor:
        """n sequences from seeded latents, for the real sequences' own conditions (labels or prefixes)."""
        batches = sample_batches(G, z_dim, self.n, seed, self.batch_size, self.device, self.conditions)
        return torch.cat([batch.float().cpu() for batch in batches])

    def __call__(self, G: nn.Module, z_dim: int, seed: int = 0) -> Any:
        from ganlab.evaluation import Evaluation

        fake = self.generated(G, z_dim, seed)
        disc_steps, pred_steps = self.steps
        metrics: dict[str, float] = {}
        # The post-hoc networks keep the training RNG as it was themselves (ganlab/metrics/sequence.py).
        scores = measures.discriminative_scores(
            self.real, fake, repeats=self.repeats, steps=disc_steps, seed=seed, device=self.device
        )
        metrics.update(spread("discriminative", scores))
        if self.channels >= 2:  # the generated-data predictors and the real-data ones, trained together
            trains = [fake] * self.repeats + [self.real_train] * self.repeats
            scores = measures.predictive_scores(trains, self.real_test, steps=pred_steps, seed=seed, device=self.device)
            metrics.update(spread("predictive", scores[: self.repeats]))
            metrics.update(spread("predictive_real", scores[self.repeats :]))
        distances = measures.marginal_distance(self.real, fake)
        metrics["marginal"] = float(distances.mean())
        metrics.update({f"marginal_{c}": float(d) for c, d in zip(self.channel_names, distances, strict=True)})
        if self.real.shape[1] > 1:
            lag = min(MAX_LAG, self.real.shape[1] - 1)
            metrics["autocorrelation"] = measures.autocorrelation_error(self.real, fake, max_lag=lag)
        self.last = (self.real, fake)
        return Evaluation(metrics, self.n, self.n, self.features)

    def write_figures(self, stem: Path, seed: int = 0) -> list[Path]:
        """The paper's pictures of the latest evaluation: PCA and t-SNE of real vs generated (`<stem>_pca.png`,
        `<stem>_tsne.png`), and generated sequences over real ones (`<stem>_sequences.png`)."""
        from ganlab import pictures

        assert self.last is not None, "write_figures follows an evaluation"
        real, fake = self.last
        paths = []
        for method in ("pca", "tsne"):
            path = stem.with_name(f"{stem.name}_{method}.png")
            measures.embedding_figure(real, fake, path, method=method, seed=seed)
            paths.append(path)
        path = stem.with_name(f"{stem.name}_sequences.png")
        pictures.save_png(pictures.sequences(fake[:8], real[:8], self.channel_names), path)
        return paths + [path]


def spread(name: str, scores: list[float]) -> dict[str, float]:
    """{name: mean, name_std: population std} of repeated scores (0 for one)."""
    return {name: statistics.fmean(scores), f"{name}_std": statistics.pstdev(scores)}
