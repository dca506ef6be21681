"""Judging super-resolution (data=super_resolution, model=srresnet) by the field's measures.

G upscales the low-res copies of held-out high-res images, which never trained. PSNR and SSIM on the luma
channel, with `scale` pixels shaved from each border as the SR literature does (fewer where the image would be
too small for SSIM's window), and FID against the real high-res images: each also for plain bicubic upsampling
of the same inputs, the baseline every SR paper reports (SRGAN, Table 2).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.data.resize import upsample_bicubic
from ganlab.evaluators import evaluation_count, forked_rng, task_extractor
from ganlab.generation import generate, latents
from ganlab.metric_names import rename, with_extractor
from ganlab.metrics.fidelity import fid
from ganlab.metrics.restoration import SSIM_WINDOW, psnr, ssim

log = logging.getLogger("ganlab")

MIN_EVAL_IMAGES = 2  # FID's covariance needs two


class TaskEvaluator:
    """Built once per run (the extractor and the real features), called per evaluation."""

    primary = "psnr"

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
            data.evaluation_size,
            MIN_EVAL_IMAGES,
            f"{option_prefix}n",
            "FID's covariance",
            "the data holds {available} held-out images; raise data.heldout",
        )
        if not data.held_out:
            log.warning(
                "data=super_resolution on a streaming source: evaluated on %d fixed training images, not held-out ones",
                self.n,
            )
        self.features, self.extractor = task_extractor(data.source_config, features, self.device, option_prefix)
        with forked_rng(self.device):
            self.real_features = torch.cat([self.extractor(hr)[0].cpu() for hr in self._high_res()])

    def _high_res(self) -> list[Tensor]:
        return [hr.to(self.device) for hr in self.data.evaluation_batches(self.n, self.batch_size)]

    def names(self) -> list[str]:
        names = ["psnr", "ssim", "fid", "psnr_bicubic", "ssim_bicubic", "fid_bicubic"]
        return [with_extractor(name, self.features) for name in names]

    def __call__(self, G: nn.Module, z_dim: int, seed: int = 0) -> Any:
        from ganlab.evaluation import Evaluation

        scale = self.data.scale
        # The SR literature shaves `scale` pixels a side; small images keep enough for SSIM's 11x11 window.
        border = max(0, min(scale, (min(self.data.shape[-2:]) - SSIM_WINDOW) // 2))
        z_all = latents(self.n, z_dim, seed)
        sums = {name: 0.0 for name in ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic")}
        features: dict[str, list[Tensor]] = {"fid": [], "fid_bicubic": []}
        start = 0
        for high in self._high_res():
            low = self.data.low_res(high)
            z = z_all[start : start + len(high)].to(self.device)
            start += len(high)
            outputs = {"": generate(G, z, low).float().clamp(-1, 1), "_bicubic": upsample_bicubic(low, scale)}
            for suffix, output in outputs.items():
                sums[f"psnr{suffix}"] += float(psnr(output, high, border=border).sum())
                sums[f"ssim{suffix}"] += float(ssim(output, high, border=border).sum())
                features[f"fid{suffix}"].append(self.extractor(output)[0].cpu())
        metrics = {name: total / self.n for name, total in sums.items()}
        metrics |= {name: fid(torch.cat(f), self.real_features) for name, f in features.items()}
        metrics = rename(metrics, self.features)
        order = self.names()
        return Evaluation({name: metrics[name] for name in order}, self.n, len(self.real_features), self.features)
