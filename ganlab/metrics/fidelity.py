"""FID, KID, Inception Score and improved precision/recall from feature tensors.

The statistics are torch-fidelity's own feature-level functions (the reference implementations ported from
TTUR, MMD-GAN and Kynkäänniemi et al.), so that ganlab's numbers agree with theirs; what ganlab adds is the
choice of feature extractor and the caching of the real side. Features are (N, D) float tensors on any device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

KID_SUBSETS = 100  # torch-fidelity's defaults, as in Binkowski et al. 2018
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
PRC_NEIGHBOURHOOD = 3  # k of the k-NN balls, as in Kynkäänniemi et al. 2019
SEED = 2020  # torch-fidelity's seed for KID subsets and the IS shuffle


def gaussian_statistics(features: Tensor) -> dict[str, np.ndarray]:
    """Mean and covariance, in float64 (float32 covariances of 2048-d features lose digits in the sqrtm)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    return fid_features_to_statistics(features.detach().double().cpu())


def frechet_distance(stats_1: dict[str, np.ndarray], stats_2: dict[str, np.ndarray]) -> float:
    """||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) between two {"mu", "sigma"} dicts."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    return float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)[KEY_METRIC_FID])


def fid(fake: Tensor, real: Tensor) -> float:
    return frechet_distance(gaussian_statistics(fake), gaussian_statistics(real))


def kid(
    fake: Tensor, real: Tensor, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE
) -> tuple[float, float]:
    """Mean and std over `subsets` random subsets of the unbiased MMD^2 with the cubic polynomial kernel
    k(x, y) = (x.y / D + 1)^3. The subset size shrinks to the smaller set when fewer samples are given."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    size = min(subset_size, len(fake), len(real))
    out = kid_features_to_metric(
        _cpu32(fake), _cpu32(real), kid_subsets=subsets, kid_subset_size=size, rng_seed=SEED, verbose=False
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def inception_score(logits: Tensor, splits: int = IS_SPLITS) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over `splits` chunks, from class logits (N, K)."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    out = isc_features_to_metric(logits.detach().cpu(), splits=splits, shuffle=True, rng_seed=SEED)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])


def precision_recall(fake: Tensor, real: Tensor, k: int = PRC_NEIGHBOURHOOD) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of generated samples inside the
    union of the real samples' k-NN balls, and the share of real samples inside the generated ones'.

    Both sets must be the same size for the k-NN radii to be comparable: the larger one is subsampled."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    n = min(len(fake), len(real))
    pick = torch.Generator().manual_seed(SEED)
    fake = fake[torch.randperm(len(fake), generator=pick)[:n]] if len(fake) > n else fake
    real = real[torch.randperm(len(real), generator=pick)[:n]] if len(real) > n else real
    out: dict[str, Any] = prc_features_to_metric(
        fake.detach().float(),
        real.detach().float(),
        prc_neighborhood=k,
        prc_batch_size=10000,
        save_cpu_ram=True,  # distances in blocks: the full n x n matrix of 10k samples needs no 400 MB
        verbose=False,
    )
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def _cpu32(features: Tensor) -> Tensor:
    # float32, as torch-fidelity's own pipeline feeds KID: float64 would triple the cost of 2048-d kernels.
    return features.detach().float().cpu()
