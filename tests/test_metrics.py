"""FID, KID, IS, precision/recall and the mode metrics against values computed by hand or in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganlab.data.gaussians import mode_centres
from ganlab.metrics.fidelity import fid, frechet_distance, inception_score, kid, precision_recall
from ganlab.metrics.modes import mode_metrics, reverse_kl


def gaussian(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).multivariate_normal(mean, cov, size=n))


def closed_form_fid(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> float:
    """||m1 - m2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), with scipy's sqrtm as the independent reference."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_of_known_gaussians_is_the_closed_form():
    # Diagonal: FID = |m1 - m2|^2 + sum (s1 - s2)^2 by hand.
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    by_hand = 1 + 0 + 4 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0
    stats = lambda m, sd: {"mu": m, "sigma": np.diag(sd**2)}  # noqa: E731
    assert frechet_distance(stats(m1, sd1), stats(m2, sd2)) == pytest.approx(by_hand, rel=1e-9)
    # Full covariances, against scipy's matrix square root.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    got = frechet_distance({"mu": m1, "sigma": s1}, {"mu": m2, "sigma": s2})
    assert got == pytest.approx(closed_form_fid(m1, s1, m2, s2), rel=1e-7)


def test_fid_of_samples_converges_to_the_closed_form_and_to_zero_for_one_distribution():
    mean1, mean2 = np.zeros(4), np.array([1.0, 0.0, -1.0, 0.5])
    cov1 = np.diag([1.0, 2.0, 0.5, 1.0])
    cov2 = np.array([[1.0, 0.3, 0, 0], [0.3, 1.0, 0, 0], [0, 0, 1.5, 0.2], [0, 0, 0.2, 0.7]])
    x, y = gaussian(40_000, mean1, cov1, 1), gaussian(40_000, mean2, cov2, 2)
    assert fid(x, y) == pytest.approx(closed_form_fid(mean1, cov1, mean2, cov2), rel=0.03)
    x2 = gaussian(40_000, mean1, cov1, 3)
    assert abs(fid(x, x2)) < 0.01  # sampling error only: the closed form is 0


def poly_kernel_mean(m1: float, v1: float, m2: float, v2: float) -> float:
    """E[(x y + 1)^3] for independent x ~ N(m1, v1), y ~ N(m2, v2) in one dimension (the KID kernel with
    gamma = 1/D = 1, coef0 = 1): E x^3 E y^3 + 3 E x^2 E y^2 + 3 E x E y + 1."""
    mom = lambda m, v: (m, m * m + v, m**3 + 3 * m * v)  # noqa: E731
    x1, x2, x3 = mom(m1, v1)
    y1, y2, y3 = mom(m2, v2)
    return x3 * y3 + 3 * x2 * y2 + 3 * x1 * y1 + 1


@pytest.mark.slow  # 20 000 samples a side; the unbiased MMD by hand (next test) checks the formula by default
def test_kid_of_two_gaussians_is_the_closed_form_mmd_and_zero_for_one_distribution():
    # Small variances: the cubic kernel's heavy tails make the estimate noisy for wide distributions.
    p, q = (0.0, 0.25), (0.4, 0.16)
    expected = poly_kernel_mean(*p, *p) + poly_kernel_mean(*q, *q) - 2 * poly_kernel_mean(*p, *q)  # 0.5602
    x = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.5
    y = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.4 + 0.4
    mean, std = kid(x, y)
    assert mean == pytest.approx(expected, rel=0.1)  # seeds 0-4 of this setup land within 7 %
    assert 0 < std < 0.2 * expected
    same, _ = kid(x, 0.5 * torch.randn(20_000, 1, generator=torch.Generator().manual_seed(2)))
    assert abs(same) < 0.05 * expected


def test_kid_on_one_subset_equals_the_unbiased_mmd_computed_by_hand():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 3)), rng.normal(0.5, 1.0, size=(30, 3))
    k = lambda a, b: (a @ b.T / 3 + 1) ** 3  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    by_hand = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    mean, std = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=3, subset_size=m)  # every subset: all of it
    assert mean == pytest.approx(by_hand, rel=1e-4)
    assert std == pytest.approx(0.0, abs=1e-4)


def test_inception_score_is_the_number_of_equally_used_confident_classes():
    k, n = 7, 700
    confident = torch.full((n, k), -30.0)
    confident[torch.arange(n), torch.arange(n) % k] = 30.0  # each sample sure of one class, classes balanced
    assert inception_score(confident, splits=1)[0] == pytest.approx(k, rel=1e-6)
    # In 10 shuffled splits the classes are not exactly balanced: a little below k.
    assert 6.0 < inception_score(confident)[0] <= k
    collapsed = torch.zeros(n, k)
    collapsed[:, 0] = 30.0
    assert inception_score(collapsed)[0] == pytest.approx(1.0, abs=1e-6)
    unsure = torch.zeros(n, k)  # every prediction uniform: no information
    assert inception_score(unsure)[0] == pytest.approx(1.0, abs=1e-9)


def test_precision_and_recall_separate_quality_from_coverage():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    real = torch.cat([c + 0.1 * torch.randn(500, 2, generator=gen) for c in centres])
    half = centres[0] + 0.1 * torch.randn(1000, 2, generator=gen)  # only one of the two clusters
    precision, recall = precision_recall(half, real)
    assert precision > 0.95 and 0.4 < recall < 0.6
    far = torch.tensor([5.0, 5.0]) + 0.1 * torch.randn(1000, 2, generator=gen)  # nowhere near the data
    assert precision_recall(far, real) == (0.0, 0.0)
    assert precision_recall(real, real) == (1.0, 1.0)


def test_precision_recall_matches_a_brute_force_count():
    gen = torch.Generator().manual_seed(1)
    real, fake = torch.randn(60, 2, generator=gen), torch.randn(60, 2, generator=gen) * 1.5 + 0.3

    def inside(points: torch.Tensor, ref: torch.Tensor) -> float:
        radius = torch.cdist(ref, ref).sort(dim=1).values[:, 3]  # 3rd neighbour; index 0 is the point itself
        return float((torch.cdist(points, ref) <= radius[None, :]).any(dim=1).float().mean())

    precision, recall = precision_recall(fake, real)
    assert precision == pytest.approx(inside(fake, real))
    assert recall == pytest.approx(inside(real, fake))


def ring8_points(per_mode: dict[int, int], std: float = 0.02, seed: int = 0) -> torch.Tensor:
    centres = mode_centres("ring8")
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([centres[m] + std * torch.randn(n, 2, generator=gen) for m, n in per_mode.items()])


def test_mode_metrics_of_a_perfect_generator():
    points = ring8_points({m: 2500 // 8 for m in range(8)})
    metrics = mode_metrics(points, mode_centres("ring8"), std=0.02)
    assert metrics["modes"] == 8
    assert metrics["high_quality"] > 0.98  # 3 sigma in 2-D holds 98.9 %
    assert metrics["kl"] < 0.01


def test_mode_metrics_of_a_generator_that_covers_three_of_eight_modes():
    points = ring8_points({0: 800, 3: 800, 5: 800})
    metrics = mode_metrics(points, mode_centres("ring8"), std=0.02)
    assert metrics["modes"] == 3
    assert metrics["kl"] == pytest.approx(math.log(8 / 3), abs=0.01)  # uniform over 3 of 8


def test_a_mode_with_few_samples_is_not_covered():
    # 2500 samples on 25 modes: PacGAN's threshold is 20 samples; 19 is lost, 20 is covered.
    centres = mode_centres("grid25")
    counts = {0: 19, 1: 20} | {m: 2461 // 23 + (1 if m - 2 < 2461 % 23 else 0) for m in range(2, 25)}
    gen = torch.Generator().manual_seed(0)
    points = torch.cat([centres[m] + 0.01 * torch.randn(n, 2, generator=gen) for m, n in counts.items()])
    assert len(points) == 2500
    assert mode_metrics(points, centres, std=0.05)["modes"] == 24


def test_classes_the_real_data_lacks_are_not_counted_as_covered():
    from ganlab.metrics.modes import covered

    share = torch.tensor([0.0] * 5 + [0.2] * 5)  # data.classes=[5,6,7,8,9]
    assert covered(torch.tensor([0] * 5 + [20] * 5), 100, share) == 5
    assert covered(torch.tensor([10] * 5 + [10, 10, 10, 10, 3]), 100, share) == 4  # 3 < 20 / 5


def test_points_between_modes_are_low_quality():
    centres = mode_centres("ring8")
    midpoints = (centres + centres.roll(1, dims=0)) / 2  # on the chords between neighbouring modes
    points = midpoints.repeat(100, 1)
    metrics = mode_metrics(points, centres, std=0.02)
    assert metrics == {"modes": 0.0, "high_quality": 0.0, "kl": pytest.approx(math.log(8)), "kl_all": metrics["kl_all"]}
    assert metrics["kl_all"] > 5  # every point off the modes: as bad as it gets


def test_reverse_kl_by_hand():
    counts, reference = torch.tensor([3.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 2.0])
    by_hand = 0.75 * math.log(0.75 / 0.25) + 0.25 * math.log(0.25 / 0.25)
    assert reverse_kl(counts, reference) == pytest.approx(by_hand)


def test_kl_all_by_hand_and_a_collapse_cannot_win_it():
    from ganlab.metrics.modes import kl_all

    counts, n = torch.tensor([6.0, 2.0, 0.0]), 10  # 8 high-quality points on 3 modes, 2 off every mode
    off = math.exp(-4.5)
    real = [(1 - off) / 3] * 3 + [off]
    generated = [x / 12.0 for x in (6.5, 2.5, 0.5, 2.5)]  # half a point added to each of the 4 bins
    assert kl_all(counts, n) == pytest.approx(sum(r * math.log(r / g) for r, g in zip(real, generated, strict=True)))
    # The case: a run with no mode covered and 1.6 % high-quality points spread evenly had the lower `kl`
    # of the two; `kl_all` ranks the run with 4 of 8 modes covered first.
    centres = mode_centres("ring8")
    gen = torch.Generator().manual_seed(0)
    spread = torch.cat([centres + 0.02 * torch.randn(8, 2, generator=gen) * 0.5 for _ in range(5)])  # 40 points
    collapsed = torch.cat([spread, 5.0 + torch.randn(2460, 2, generator=gen)])  # 1.6 % near the modes
    four = ring8_points({0: 700, 1: 600, 2: 600, 3: 600})
    a, b = mode_metrics(collapsed, centres, std=0.02), mode_metrics(four, centres, std=0.02)
    assert (a["modes"], b["modes"]) == (0, 4) and a["high_quality"] == pytest.approx(0.016)
    assert a["kl"] < b["kl"]  # the papers' KL prefers the collapsed run
    assert b["kl_all"] < a["kl_all"]
    perfect = mode_metrics(ring8_points({m: 2500 // 8 for m in range(8)}), centres, std=0.02)
    assert perfect["kl_all"] < 0.01


NEW_TF32_API = """
import torch
from ganlab.metrics.extractors import full_float32

settings = [torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.cudnn.rnn]
torch.backends.cuda.matmul.fp32_precision = "tf32"  # the newer API: torch now refuses to read the older flags
try:
    torch.backends.cuda.matmul.allow_tf32
    raise SystemExit("the older flags can still be read")
except RuntimeError as err:
    assert "mix of the legacy and new APIs" in str(err), err
before = [s.fp32_precision for s in settings]
with full_float32("cpu"):
    inside = [s.fp32_precision for s in settings]
print(inside, [s.fp32_precision for s in settings] == before)
"""


@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch before 2.9")
def test_the_extractors_turn_tf32_off_in_a_program_that_uses_torchs_newer_tf32_api() -> None:
    """A program that set TF32 through torch's per-backend fp32_precision (torch 2.9+) can no longer read the
    older allow_tf32 flags: the features are still computed in IEEE float32, and the settings come back. In a
    process of its own: once set so, the older flags stay unreadable for the rest of the process."""
    import subprocess
    import sys

    from tests.conftest import REPO

    out = subprocess.run([sys.executable, "-c", NEW_TF32_API], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['ieee', 'ieee', 'ieee'] True"
