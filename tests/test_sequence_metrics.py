"""ganlab.metrics.sequence against references computed here independently (scipy, plain numpy loops, hand-made
baselines), on small sets and few training steps: the file runs in a few seconds on one CPU thread."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.sines import sine_sequences
from ganlab.metrics.sequence import (
    autocorrelation,
    autocorrelation_error,
    discriminative_score,
    discriminative_scores,
    embedding_figure,
    marginal_distance,
    predictive_score,
    sequence_figure,
)

# A classifier that learns within 150 steps: more hidden units and a larger step than TimeGAN's defaults.
QUICK_CLASSIFIER = {"steps": 150, "batch_size": 64, "hidden": 8, "lr": 5e-3}
QUICK_PREDICTOR = {"steps": 150, "batch_size": 64, "hidden": 4, "lr": 1e-2}


def rng_states() -> tuple[torch.Tensor, tuple]:
    return torch.get_rng_state(), np.random.get_state()


def assert_same_rng(before: tuple[torch.Tensor, tuple], after: tuple[torch.Tensor, tuple]) -> None:
    assert torch.equal(before[0], after[0])
    assert before[1][0] == after[1][0] and np.array_equal(before[1][1], after[1][1]) and before[1][2:] == after[1][2:]


# ---------------------------------------------------------------------------------------------- marginal_distance


def test_marginal_distance_is_scipys_wasserstein_per_channel_with_unequal_counts() -> None:
    g = torch.Generator().manual_seed(1)
    real = torch.rand(37, 7, 3, generator=g, dtype=torch.float64)
    fake = torch.rand(23, 5, 3, generator=g, dtype=torch.float64) ** 2  # other counts, another distribution
    fake[:, :, 1] = 0.25  # a point mass against a spread
    got = marginal_distance(real, fake)
    assert got.shape == (3,)
    from scipy.stats import wasserstein_distance  # here: importing scipy.stats costs the whole suite a second

    for c in range(3):
        expected = wasserstein_distance(real[..., c].numpy().ravel(), fake[..., c].numpy().ravel())
        assert got[c].item() == pytest.approx(expected, abs=1e-12)
    assert marginal_distance(real, real).abs().max().item() < 1e-12


# ------------------------------------------------------------------------------------------------ autocorrelation


def autocorrelation_loops(x: np.ndarray, max_lag: int) -> np.ndarray:
    """The pooled biased estimator, written out sum by sum."""
    n, length, channels = x.shape
    r = np.zeros((max_lag, channels))
    for c in range(channels):
        mu = x[:, :, c].mean()
        denominator = 0.0
        for i in range(n):
            for t in range(length):
                denominator += (x[i, t, c] - mu) ** 2
        for k in range(1, max_lag + 1):
            numerator = 0.0
            for i in range(n):
                for t in range(length - k):
                    numerator += (x[i, t, c] - mu) * (x[i, t + k, c] - mu)
            r[k - 1, c] = numerator / denominator
    return r


def ar1(n: int, length: int, phi: float, seed: int) -> torch.Tensor:
    """(n, length, 1) AR(1) sequences started from the stationary distribution, min-max scaled to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, length, generator=g, dtype=torch.float64)
    x = torch.empty_like(noise)
    x[:, 0] = noise[:, 0] / math.sqrt(1 - phi**2)
    for t in range(1, length):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return ((x - x.min()) / (x.max() - x.min()))[..., None]


def test_autocorrelation_matches_the_double_loop() -> None:
    x = sine_sequences(6, 9, 2, seed=3).double() + 0.1 * torch.rand(6, 9, 2, generator=torch.Generator().manual_seed(4))
    got = autocorrelation(x, max_lag=4)
    assert got.shape == (4, 2)
    np.testing.assert_allclose(got.numpy(), autocorrelation_loops(x.numpy(), 4), rtol=1e-10, atol=1e-12)


def test_autocorrelation_of_ar1_and_of_a_constant_channel() -> None:
    r = autocorrelation(ar1(50, 200, 0.8, seed=0), max_lag=3)[:, 0]
    assert r[0].item() == pytest.approx(0.8, abs=0.03)
    assert r[1].item() == pytest.approx(0.64, abs=0.04)  # r_k = phi^k
    x = torch.rand(4, 12, 2, generator=torch.Generator().manual_seed(0))
    x[:, :, 1] = 0.3  # float32 0.3: its mean is not exactly 0.3, the centred values are rounding noise
    r = autocorrelation(x, max_lag=5)
    assert torch.isfinite(r).all() and (r[:, 1] == 0).all()


def test_autocorrelation_error() -> None:
    x = ar1(20, 30, 0.8, seed=1)
    assert autocorrelation_error(x, x, max_lag=5) == 0.0
    white = torch.rand(20, 30, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = np.abs(autocorrelation_loops(x.numpy(), 5) - autocorrelation_loops(white.numpy(), 5)).mean()
    assert autocorrelation_error(x, white, max_lag=5) == pytest.approx(expected, rel=1e-10)


# ------------------------------------------------------------------------------------------- discriminative_score


def test_discriminative_score_tells_a_constant_from_sines_but_not_sines_from_sines() -> None:
    sines = sine_sequences(600, 8, 4, seed=0)
    real, same_distribution = sines[:300], sines[300:]
    assert discriminative_score(real, same_distribution, **QUICK_CLASSIFIER) <= 0.1
    assert discriminative_score(real, torch.full_like(real, 0.5), **QUICK_CLASSIFIER) >= 0.4


def test_discriminative_score_is_seeded_and_leaves_the_global_rng_alone() -> None:
    sines = sine_sequences(80, 6, 2, seed=0)
    torch.manual_seed(123)
    np.random.seed(123)
    before = rng_states()
    first = discriminative_score(sines[:40], sines[40:], steps=10, batch_size=16, seed=7)
    assert_same_rng(before, rng_states())
    assert discriminative_score(sines[:40], sines[40:], steps=10, batch_size=16, seed=7) == first
    assert 0.0 <= first <= 0.5


def test_the_batches_are_drawn_as_one_step_at_a_time_would_in_blocks_of_steps() -> None:
    """The training steps' indices are made on the CPU STEPS_PER_COPY steps at a time (one copy to the device,
    not one per set per step); each step still gets, set by set, what `_batch` draws from the same generator one
    step at a time, also for sets of unequal size, one smaller than the batch, and a last, partial block."""
    from ganlab.metrics.sequence import STEPS_PER_COPY, _draws

    sizes, batch_size, steps = [200, 200, 184, 50], 64, 2 * STEPS_PER_COPY + 7
    drawn = list(_draws(sizes, batch_size, torch.Generator().manual_seed(5), steps, torch.device("cpu")))
    gen = torch.Generator().manual_seed(5)
    expected = [[torch.randperm(n, generator=gen)[:batch_size] for n in sizes] for _ in range(steps)]
    assert len(drawn) == steps
    for got, wanted in zip(drawn, expected, strict=True):
        assert [len(i) for i in got] == [64, 64, 64, 50]
        assert all(torch.equal(a, b) for a, b in zip(got, wanted, strict=True))


# ----------------------------------------------------------------------------------------------- predictive_score


def two_channels(n: int, length: int, seed: int, dependent: bool) -> torch.Tensor:
    """(n, length, 2): x0 i.i.d. U[0, 1); x1 i.i.d. U[0, 1) too, or with x1[t + 1] = x0[t] when dependent."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, length, 2, generator=g)
    if dependent:
        x[:, 1:, 1] = x[:, :-1, 0]
    return x


def median_baseline(test: torch.Tensor) -> float:
    """MAE of the best predictor that knows nothing: each step's median of the test targets."""
    target = test[:, 1:, -1].double().numpy()
    return float(np.abs(target - np.median(target, axis=0)).mean())


def test_predictive_score_learns_a_known_one_step_dependence() -> None:
    x = two_channels(400, 12, seed=0, dependent=True)
    train, test = x[:300], x[300:]
    baseline = median_baseline(test)  # about 0.25
    assert predictive_score(train, test, **QUICK_PREDICTOR) < 0.4 * baseline


def test_predictive_score_of_independent_channels_is_the_median_baseline() -> None:
    x = two_channels(400, 12, seed=1, dependent=False)
    train, test = x[:300], x[300:]
    before = rng_states()
    score = predictive_score(train, test, **QUICK_PREDICTOR)
    assert_same_rng(before, rng_states())
    assert score == pytest.approx(median_baseline(test), abs=0.02)


# --------------------------------------------------------------------------------------------------------- errors


def test_errors() -> None:
    x = torch.rand(10, 6, 3)
    with pytest.raises(ValueError, match="steps and channels must match"):
        discriminative_score(x, torch.rand(10, 5, 3), steps=1)
    with pytest.raises(ValueError, match="steps and channels must match"):
        discriminative_score(x, torch.rand(10, 6, 2), steps=1)
    with pytest.raises(ValueError, match="at least 5"):
        discriminative_score(x, torch.rand(4, 6, 3), steps=1)
    with pytest.raises(ValueError, match=r"\(N, T, C\)"):
        discriminative_score(x[0], x[1], steps=1)
    with pytest.raises(ValueError, match="predicts the last channel from the others"):
        predictive_score(x[..., :1], x[..., :1], steps=1)
    with pytest.raises(ValueError, match="channels"):
        marginal_distance(x, x[..., :2])
    with pytest.raises(ValueError, match="max_lag=6.*T=6"):
        autocorrelation(x, max_lag=6)
    with pytest.raises(ValueError, match="max_lag=10.*T=6"):
        autocorrelation_error(x, x)
    with pytest.raises(ValueError, match="NaN"):
        discriminative_score(x, torch.full_like(x, float("nan")), steps=1)


# -------------------------------------------------------------------------------------------------------- figures


def test_sequence_figure_is_a_picture_with_at_most_eight_panels() -> None:
    sines = sine_sequences(10, 16, 10, seed=0)
    picture = sequence_figure(sines[:5], sines[5:], channel_names=[f"ch{i}" for i in range(10)], n=3)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.shape[0] > picture.shape[1]  # 8 panels stacked vertically
    coloured = (picture.max(axis=2).astype(int) - picture.min(axis=2)) > 80  # generated curves; grey has none
    assert coloured.mean() > 0.001 and (picture < 128).any()
    one = sequence_figure(sines[:2, :, :1], sines[2:4, :, :1])
    assert one.shape[0] < picture.shape[0]


@pytest.mark.slow  # scikit-learn's PCA and t-SNE imports; the pictures of training are drawn by default
@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_figure_writes_a_png(method: str, tmp_path: Path) -> None:
    sines = sine_sequences(130, 12, 3, seed=0)
    path = tmp_path / "figures" / f"{method}.png"
    before = rng_states()
    embedding_figure(sines[:70], sines[70:], path, method=method, n=60, seed=0)
    assert_same_rng(before, rng_states())
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100
        rgb = np.asarray(image.convert("RGB")).astype(int)
    red = (rgb[..., 0] > rgb[..., 2] + 60).any()
    blue = (rgb[..., 2] > rgb[..., 0] + 60).any()
    assert red and blue
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left beside it


def test_embedding_figure_refuses_an_unknown_method(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tsne"):
        embedding_figure(torch.rand(5, 4, 2), torch.rand(5, 4, 2), tmp_path / "x.png", method="umap")


# ------------------------------------------------------------------------------------------------------------ GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_scores_on_cuda_agree_with_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # cuDNN's RNNs run in TF32 by default (torch.backends.cudnn.allow_tf32): 150 Adam steps in 10-bit mantissas
    # would part from the CPU's float32 for a reason that is not the CUDA path's
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    sines = sine_sequences(600, 8, 4, seed=0)
    cuda_before = torch.cuda.get_rng_state()
    on_gpu = discriminative_score(sines[:300], sines[300:], device="cuda", **QUICK_CLASSIFIER)
    assert torch.equal(cuda_before, torch.cuda.get_rng_state())
    assert on_gpu <= 0.1
    x = two_channels(400, 12, seed=0, dependent=True)
    cpu = predictive_score(x[:300], x[300:], **QUICK_PREDICTOR)
    gpu = predictive_score(x[:300].cuda(), x[300:].cuda(), device="cuda", **QUICK_PREDICTOR)
    assert gpu == pytest.approx(cpu, abs=0.02)  # the same initial weights and batches; float rounding differs
    assert marginal_distance(x.cuda(), x.cuda().flip(0)).abs().max().item() < 1e-12
    assert autocorrelation(x.cuda(), 3).device.type == "cuda"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_post_hoc_networks_training_steps_do_not_wait_for_the_device() -> None:
    """Every synchronising CUDA call is counted (sync debug mode, 'warn'); 200 more training steps may add only
    the 2 copies of their blocks of batch indices. Before, each step copied every repeat's indices and the GRU's
    gradient masks from host memory: a wait for the device each time."""
    import warnings

    sines = sine_sequences(600, 8, 4, seed=0)
    x = two_channels(400, 12, seed=0, dependent=True)

    def syncs(steps: int) -> int:
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                discriminative_scores(sines[:300], sines[300:], device="cuda", repeats=3, steps=steps, batch_size=64)
                predictive_score(x[:300], x[300:], device="cuda", steps=steps, batch_size=64)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchronizing" in str(w.message) for w in caught)

    short, long = syncs(100), syncs(300)
    assert short > 0  # the count sees the scores' known waits (the final read-backs), so it is not vacuous
    assert long - short <= 2 * 2, (short, long)  # each score: 2 more blocks of 100 steps


def test_the_gru_ensemble_is_separate_grus_that_never_mix() -> None:
    """M models in one block-diagonal nn.GRU give what M separate nn.GRUs with the same weights give, and a step
    of Adam leaves the off-block weights at exactly zero (ganlab/metrics/gru_ensemble.py)."""
    from torch import nn

    from ganlab.metrics.gru_ensemble import GRUEnsemble, block_mask

    models, channels, hidden, layers = 3, 4, 2, 2
    torch.manual_seed(0)
    ensemble = GRUEnsemble(models, channels, hidden, layers)
    x = torch.randn(models, 5, 7, channels)
    out = ensemble(x)
    for m in range(models):
        alone = nn.GRU(channels, hidden, num_layers=layers, batch_first=True)
        with torch.no_grad():
            for layer in range(layers):
                size_in = channels if layer == 0 else hidden
                for kind, cols in (("ih", size_in), ("hh", hidden)):
                    weight = getattr(ensemble.gru, f"weight_{kind}_l{layer}").view(3, models, hidden, models, cols)
                    getattr(alone, f"weight_{kind}_l{layer}").copy_(weight[:, m, :, m, :].reshape(3 * hidden, cols))
                    bias = getattr(ensemble.gru, f"bias_{kind}_l{layer}").view(3, models, hidden)
                    getattr(alone, f"bias_{kind}_l{layer}").copy_(bias[:, m].reshape(3 * hidden))
        torch.testing.assert_close(out[m], alone(x[m])[0], rtol=0, atol=1e-6)
    # Model 0's loss moves no weight of models 1 and 2, and no off-block weight.
    before = {name: p.detach().clone() for name, p in ensemble.named_parameters()}
    opt = torch.optim.Adam(ensemble.parameters(), lr=0.1)
    ensemble(x)[0].sum().backward()
    opt.step()
    after = dict(ensemble.named_parameters())
    mask = block_mask(hidden, hidden, models, 3)
    assert (after["gru.weight_hh_l1"][~mask] == 0).all()
    moved = (after["gru.weight_hh_l0"] != before["gru.weight_hh_l0"]).view(3, models, hidden, models, hidden)
    assert moved[:, 0, :, 0, :].any() and not moved[:, 1:].any()
