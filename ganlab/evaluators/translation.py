"""Judging image-to-image translation (data=paired_folder, model=unet) on held-out pairs, as pix2pix does.

G translates the held-out inputs A, which never trained, and its outputs are compared with their targets B:
`l1`, the mean absolute error per pixel in G's [-1, 1] units (pix2pix's L1 term, lower is better), and
`fid_<extractor>`, the Frechet distance between the features of G's outputs and those of the real held-out
targets (Inception unless `features=` names another extractor: features=digits reads greyscale images offline).

pix2pix's U-Net keeps its dropout on in eval mode (its noise), so its outputs are random: every evaluation
seeds the RNG with the evaluation's seed inside a forked RNG, so that it is reproducible and leaves the
training's random numbers where they were.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.evaluators import evaluation_count, forked_rng, task_extractor
from ganlab.generation import generate, latents
from ganlab.metric_names import rename, with_extractor
from ganlab.metrics.fidelity import fid

MIN_EVAL_PAIRS = 2  # FID's covariance needs two


class TaskEvaluator:
    """Built once per run (the extractor and the real targets' features), called per evaluation."""

    primary = "l1"

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
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
        self.n = evaluation_count(
            n,
            data.evaluation_size,
            MIN_EVAL_PAIRS,
            f"{option_prefix}n",
            "FID's covariance",
            "the data holds {available} held-out pairs; raise data.heldout",
        )
        self.features, self.extractor = task_extractor(data.source_config, features, self.device, option_prefix)
        with forked_rng(self.device):
            self.real_features = torch.cat([self.extractor(target)[0].cpu() for target, _ in self._pairs()])

    def _pairs(self) -> list[tuple[Tensor, Tensor]]:
        return [
            (target.to(self.device), condition.to(self.device))
            for target, condition in self.data.evaluation_batches(self.n, self.batch_size)
        ]

    def names(self) -> list[str]:
        return ["l1", with_extractor("fid", self.features)]

    def __call__(self, G: nn.Module, z_dim: int, seed: int = 0) -> Any:
        from ganlab.evaluation import Evaluation

        z_all = latents(self.n, z_dim, seed)
        l1_sum, features = 0.0, []
        with forked_rng(self.device):
            torch.random.default_generator.manual_seed(seed)  # G's dropout: the same outputs for a seed
            if self.device.type == "cuda":
                with torch.cuda.device(self.device):
                    torch.cuda.manual_seed(seed)
            start = 0
            for target, condition in self._pairs():
                z = z_all[start : start + len(target)].to(self.device)
                start += len(target)
                output = generate(G, z, condition).float().clamp(-1, 1)
                l1_sum += float((output - target).abs().mean(dim=(1, 2, 3)).sum())
                features.append(self.extractor(output)[0].cpu())
        metrics = {"l1": l1_sum / self.n, "fid": fid(torch.cat(features), self.real_features)}
        return Evaluation(rename(metrics, self.features), self.n, len(self.real_features), self.features)
