"""Mode metrics for the 2-D mixtures, the protocol of Metz et al. 2016 (Unrolled GAN), Srivastava et al. 2017
(VEEGAN) and Lin et al. 2018 (PacGAN).

Each generated point is registered to its nearest mode centre. It is *high quality* when it lies within
3 standard deviations of that centre. A mode is *covered* when at least a fifth of its expected share of the
points, n / (5 K), are high-quality points registered to it: PacGAN's "fewer than 20 of 2500 samples" rule for
the 25-mode grid, scaled to any n and K. The KL is the reverse KL, KL(p_gen || uniform), of the histogram of
high-quality points over the modes; with no high-quality point at all it is log K, the value of a generator
that collapsed onto a single mode. That KL alone rewards a collapsed generator whose few high-quality points
happen to spread; `kl_all` (KL(real || generated) over the modes and an "off the modes" bin, all points
counted) cannot be won that way, and is the 2-D metric ganlab monitors by default.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

HIGH_QUALITY_STDS = 3.0
COVERED_SHARE = 0.2  # a mode counts as covered with >= 1/5 of its expected number of samples


def mode_histogram(points: Tensor, centres: Tensor, std: float) -> tuple[Tensor, Tensor]:
    """(counts of high-quality points per mode (K,), high-quality mask (N,))."""
    points, centres = points.detach().double().cpu(), centres.double().cpu()
    distance, nearest = torch.cdist(points, centres).min(dim=1)
    high_quality = distance <= HIGH_QUALITY_STDS * std
    counts = torch.bincount(nearest[high_quality], minlength=len(centres))
    return counts, high_quality


def reverse_kl(counts: Tensor, reference: Tensor) -> float:
    """KL(p || q) for p = counts / counts.sum() and a reference distribution q with no zero entries.
    Empty bins of p contribute nothing (0 log 0 = 0)."""
    p = counts.double() / counts.sum()
    q = reference.double() / reference.sum()
    nonzero = p > 0
    return float((p[nonzero] * (p[nonzero] / q[nonzero]).log()).sum())


def covered(counts: Tensor, n: int, reference: Tensor) -> int:
    """Bins the reference has (a share > 0: data.classes=[5,6,7,8,9] has no 0-4) holding at least COVERED_SHARE
    of the count expected from `reference` for n samples."""
    expected = n * reference.double() / reference.sum()
    return int(((counts.double() >= COVERED_SHARE * expected) & (reference > 0)).sum())


def kl_all(counts: Tensor, n: int) -> float:
    """KL(real || generated) over K + 1 bins: each mode, and "off every mode" (further than 3 std). The real
    side is what the mixture itself gives: (1 - e^-4.5) / K per mode and e^-4.5 off them (a 2-D Gaussian's mass
    beyond 3 std). The generated side is the histogram of all n points with half a point added to every bin
    (Jeffreys), so that a missing mode costs a finite, large amount.

    Unlike `kl`, which only sees the high-quality points, this cannot be won by collapse: a generator on one
    mode, or with most of its points off the modes, scores high. A perfect generator scores about 0."""
    k = len(counts)
    off_share = math.exp(-(HIGH_QUALITY_STDS**2) / 2)
    real = torch.cat([torch.full((k,), (1 - off_share) / k, dtype=torch.float64), torch.tensor([off_share])])
    off = n - counts.sum()
    generated = torch.cat([counts.double(), off.double().reshape(1)]) + 0.5
    generated = generated / generated.sum()
    return float((real * (real / generated).log()).sum())


def mode_metrics(points: Tensor, centres: Tensor, std: float) -> dict[str, float]:
    """`modes` covered (of K), share of `high_quality` points (0..1), `kl` of the high-quality points from
    uniform (nats; the papers' measure), and `kl_all` (all points, see `kl_all`; what ganlab monitors)."""
    counts, high_quality = mode_histogram(points, centres, std)
    k = len(centres)
    uniform = torch.ones(k)
    return {
        "modes": float(covered(counts, len(points), uniform)),
        "high_quality": float(high_quality.double().mean()),
        "kl": reverse_kl(counts, uniform) if counts.sum() > 0 else math.log(k),
        "kl_all": kl_all(counts, len(points)),
    }
