"""Time-series GAN metrics: the scores of TimeGAN (Yoon et al. 2019, sec. 5; reference code jsyoon0823/TimeGAN,
metrics/*.py) in torch, and two distribution checks that need no training.

- `discriminative_score`: a post-hoc GRU classifier tells real from generated; |held-out accuracy - 0.5| (0 is
  best: the two cannot be told apart).
- `predictive_score`: "train on synthetic, test on real": a GRU trained on generated sequences predicts each
  step's next value of the last channel from the other channels; its MAE on real sequences (lower is better).
- `marginal_distance`: per channel, the Wasserstein-1 distance between the real and generated values.
- `autocorrelation` / `autocorrelation_error`: the temporal structure at lags 1..max_lag, per channel.
- `embedding_figure`: TimeGAN's PCA / t-SNE picture; `sequence_figure`: generated curves over real ones.

Sequences are (N, T, C) tensors with values in [0, 1] (ganlab/data/sequences.py). Every function is the same for
a seed, on the CPU or a GPU, and leaves the global torch and numpy RNGs as they were: index draws use a
`torch.Generator` of their own, and the networks are initialised and trained inside `torch.random.fork_rng`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.evaluators import forked_rng
from ganlab.metrics.gru_ensemble import GRUEnsemble, LinearEnsemble

TRAIN_SHARE_NUMERATOR, TRAIN_SHARE_DENOMINATOR = 4, 5  # TimeGAN's train_test_divide: 80 % train, 20 % test
MIN_SEQUENCES = 5  # the fewest on a side for which the 20 % test share holds a sequence
EVAL_CHUNK = 4096  # sequences per forward pass when scoring: bounded memory for any N
STEPS_PER_COPY = 100  # training steps whose batch indices go to the device in one copy (see _draws)
MAX_PANELS = 8  # sequence_figure: channels drawn at most


def discriminative_score(real: Tensor, fake: Tensor, **options: Any) -> float:
    """One classifier's score: `discriminative_scores` with repeats=1 (same options)."""
    return discriminative_scores(real, fake, repeats=1, **options)[0]


def discriminative_scores(
    real: Tensor,
    fake: Tensor,
    *,
    repeats: int = 1,
    steps: int = 2000,
    batch_size: int = 128,
    hidden: int | None = None,
    layers: int = 2,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[float]:
    """|accuracy - 0.5| of `repeats` independent post-hoc GRU classifiers on held-out real and generated sequences
    (0: indistinguishable, 0.5: perfectly told apart), trained at once (ganlab/metrics/gru_ensemble.py).

    TimeGAN's protocol, for each repeat: its own seeded 80/20 split of each side; every step is one Adam step on
    `batch_size` real (label 1) and `batch_size` generated (label 0) training sequences, the loss the sum of the
    two sides' mean BCE; a sequence is called real when its logit is > 0. The classifier reads the top layer's
    last hidden state. `layers=2` follows the paper's text (a 2-layer network; the released code has one GRU
    layer); `hidden=None` is the code's `dim / 2`, at least 1."""
    real, fake = _paired(real, fake, MIN_SEQUENCES)
    channels = real.shape[2]
    hidden = _hidden(hidden, channels)
    _check_training(steps, batch_size, lr, layers=layers)
    _check_positive_int("repeats", repeats)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    splits = [(_split(real.detach().float(), gen), _split(fake.detach().float(), gen)) for _ in range(repeats)]
    real_train = torch.stack([r[0] for r, _ in splits]).to(dev)  # (M, N_train, T, C): every repeat's own split
    fake_train = torch.stack([f[0] for _, f in splits]).to(dev)
    with forked_rng(dev), _one_cpu_thread():
        torch.random.default_generator.manual_seed(seed)  # the weights' initialisation (built on the CPU)
        model = _Classifier(repeats, channels, hidden, layers).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sizes = [real_train.shape[1]] * repeats + [fake_train.shape[1]] * repeats  # each side's own draws, in turn
        for indices in _draws(sizes, batch_size, gen, steps, dev):
            x_real = _take(real_train, indices[:repeats])
            x_fake = _take(fake_train, indices[repeats:])
            logits = model(torch.cat([x_real, x_fake], 1))  # (M, 2B)
            logit_real, logit_fake = logits[:, : x_real.shape[1]], logits[:, x_real.shape[1] :]
            # Summed over the repeats: each model's gradient is its own loss's.
            loss = (
                F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real), reduction="none")
                .mean(1)
                .sum()
                + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake), reduction="none")
                .mean(1)
                .sum()
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        scores = []
        with torch.no_grad():
            for m, ((_, real_test), (_, fake_test)) in enumerate(splits):
                right_real = _chunked_sum(real_test, dev, lambda x, m=m: (model.one(m, x) > 0).sum())
                right_fake = _chunked_sum(fake_test, dev, lambda x, m=m: (model.one(m, x) <= 0).sum())
                scores.append(abs((right_real + right_fake) / (len(real_test) + len(fake_test)) - 0.5))
    return scores


def predictive_score(train: Tensor, test: Tensor, **options: Any) -> float:
    """One predictor's score: `predictive_scores` for one training set (same options)."""
    return predictive_scores([train], test, **options)[0]


def predictive_scores(
    trains: Sequence[Tensor],
    test: Tensor,
    *,
    steps: int = 5000,
    batch_size: int = 128,
    hidden: int | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[float]:
    """MAE on `test` of one-step-ahead GRU predictors, one trained on each of `trains` (TimeGAN's "train on
    synthetic, test on real": train = generated, test = real; lower is better), all trained at once.

    As TimeGAN's code: a 1-layer GRU (hidden=None: `dim / 2`, at least 1) reads channels 0..C-2 at steps
    0..T-2 and predicts, at every step, the last channel's next value x[t+1, C-1] through a Linear and a
    sigmoid; trained with the L1 loss and Adam for `steps` steps of `batch_size` sequences drawn from its
    training set. The score is the mean over test sequences and steps of |prediction - x[:, 1:, C-1]|."""
    if not trains:
        raise ValueError("predictive_scores needs at least one training set")
    trains = [_sequences("train", train, 1).detach().float() for train in trains]
    test = _sequences("test", test, 1).detach().float()
    channels = test.shape[2]
    if channels < 2:
        raise ValueError(
            f"the predictive score predicts the last channel from the others: it needs C >= 2 channels, "
            f"got C = {channels}"
        )
    for train in trains:
        if train.shape[2] != channels:
            raise ValueError(f"train has {train.shape[2]} channels but test has {channels}: they must match")
        if train.shape[1] != trains[0].shape[1]:
            raise ValueError("the training sets' sequences must have the same number of steps")
    for name, x in (("train", trains[0]), ("test", test)):
        if x.shape[1] < 2:
            raise ValueError(f"the predictive score predicts the next step: {name} needs T >= 2 steps, got T = 1")
    hidden = _hidden(hidden, channels)
    _check_training(steps, batch_size, lr)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    trains = [train.to(dev) for train in trains]
    models = len(trains)
    with forked_rng(dev), _one_cpu_thread():
        torch.random.default_generator.manual_seed(seed)  # the weights' initialisation (built on the CPU)
        model = _Predictor(models, channels - 1, hidden).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        batch_size = min(batch_size, *(len(train) for train in trains))  # TimeGAN: all of a smaller set
        for indices in _draws([len(train) for train in trains], batch_size, gen, steps, dev):
            x = _take(trains, indices)
            # Each model's own mean L1, summed: each model's gradient is its own loss's.
            loss = (model(x[:, :, :-1, :-1]) - x[:, :, 1:, -1]).abs().mean(dim=(1, 2)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        totals = [
            _chunked_sum(test, dev, lambda x, m=m: (model.one(m, x[:, :-1, :-1]) - x[:, 1:, -1]).abs().double().sum())
            for m in range(models)
        ]
    return [total / (test.shape[0] * (test.shape[1] - 1)) for total in totals]


def marginal_distance(real: Tensor, fake: Tensor) -> Tensor:
    """(C,) float64: per channel, the Wasserstein-1 distance between the real and the generated values pooled over
    sequences and steps. Exact for any two sample counts: the integral of |F_real - F_fake| over the merged sorted
    values (as scipy.stats.wasserstein_distance computes it)."""
    real, fake = _sequences("real", real, 1), _sequences("fake", fake, 1)
    channels = real.shape[2]
    if fake.shape[2] != channels:
        raise ValueError(f"real has {channels} channels but fake has {fake.shape[2]}: they must match")
    u = real.detach().double().reshape(-1, channels).T.contiguous().sort(dim=1).values  # (C, n)
    v = fake.detach().double().reshape(-1, channels).T.to(u.device).contiguous().sort(dim=1).values  # (C, m)
    merged = torch.cat([u, v], dim=1).sort(dim=1).values
    widths = merged.diff(dim=1)
    left = merged[:, :-1].contiguous()  # both CDFs are constant on [merged[i], merged[i + 1])
    cdf_u = torch.searchsorted(u, left, right=True).double() / u.shape[1]
    cdf_v = torch.searchsorted(v, left, right=True).double() / v.shape[1]
    return ((cdf_u - cdf_v).abs() * widths).sum(dim=1)


def autocorrelation(x: Tensor, max_lag: int = 10) -> Tensor:
    """(max_lag, C) float64: r_k per channel for k = 1..max_lag, pooled over sequences with the usual biased
    estimator: mu the channel's mean over all sequences and steps, r_k = sum_i sum_{t<T-k} (x_it - mu)
    (x_i,t+k - mu) / sum_i sum_t (x_it - mu)^2. A constant channel has r_k = 0."""
    x = _sequences("x", x, 1).detach().double()
    _check_lag(max_lag, x.shape[1], "x")
    low, high = x.amin(dim=(0, 1)), x.amax(dim=(0, 1))
    centred = torch.where(low == high, 0.0, x - x.mean(dim=(0, 1)))  # exactly 0, not rounding noise, if constant
    variance = (centred * centred).sum(dim=(0, 1))
    lagged = torch.stack([(centred[:, :-k] * centred[:, k:]).sum(dim=(0, 1)) for k in range(1, max_lag + 1)])
    return torch.where(variance > 0, lagged / variance.clamp_min(torch.finfo(torch.float64).tiny), 0.0)


def autocorrelation_error(real: Tensor, fake: Tensor, max_lag: int = 10) -> float:
    """Mean over lags 1..max_lag and channels of |r_real - r_fake| (`autocorrelation`): 0 when the generated
    sequences carry the real ones' linear temporal structure."""
    real, fake = _sequences("real", real, 1), _sequences("fake", fake, 1)
    if fake.shape[2] != real.shape[2]:
        raise ValueError(f"real has {real.shape[2]} channels but fake has {fake.shape[2]}: they must match")
    _check_lag(max_lag, real.shape[1], "real")
    _check_lag(max_lag, fake.shape[1], "fake")
    r_fake = autocorrelation(fake, max_lag)
    return float((autocorrelation(real, max_lag) - r_fake.to(real.device)).abs().mean())


def embedding_figure(
    real: Tensor, fake: Tensor, path: str | os.PathLike[str], method: str = "pca", n: int = 1000, seed: int = 0
) -> None:
    """A PNG at `path`: TimeGAN's visualisation (visualization_metrics.py). Each sequence becomes its mean over
    channels, a point in R^T; up to n of each side (a seeded choice) are projected to 2-D by PCA fitted on the
    real ones or by t-SNE of both together (perplexity min(40, (points - 1) / 3)); red real, blue generated.
    Written whole or not at all (ganlab.atomic_write)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from ganlab.atomic_write import atomic_write

    if method not in ("pca", "tsne"):
        raise ValueError(f"method={method!r}: choose 'pca' or 'tsne'")
    _check_positive_int("n", n)
    real, fake = _paired(real, fake, 2)
    if real.shape[1] < 2:
        raise ValueError("embedding_figure projects each sequence's T steps to 2-D: it needs T >= 2 steps, got 1")
    gen = torch.Generator().manual_seed(seed)
    points_real = real.detach()[torch.randperm(len(real), generator=gen)[:n].to(real.device)].double().mean(2)
    points_fake = fake.detach()[torch.randperm(len(fake), generator=gen)[:n].to(fake.device)].double().mean(2)
    points_real, points_fake = points_real.cpu().numpy(), points_fake.cpu().numpy()
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed).fit(points_real)
        xy_real, xy_fake = pca.transform(points_real), pca.transform(points_fake)
        title, axis = "PCA", "PC"
    else:
        both = np.concatenate([points_real, points_fake])
        perplexity = min(40.0, (len(both) - 1) / 3)
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(both)
        xy_real, xy_fake = xy[: len(points_real)], xy[len(points_real) :]
        title, axis = "t-SNE", "t-SNE "

    fig = _figure((6, 5))
    ax = fig.subplots()
    ax.scatter(xy_real[:, 0], xy_real[:, 1], c="red", alpha=0.2, s=12, label=f"real ({len(xy_real)})")
    ax.scatter(xy_fake[:, 0], xy_fake[:, 1], c="blue", alpha=0.2, s=12, label=f"generated ({len(xy_fake)})")
    ax.legend()
    ax.set(title=f"{title} of the sequences' channel means", xlabel=f"{axis}1", ylabel=f"{axis}2")
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


def sequence_figure(real: Tensor, fake: Tensor, channel_names: Sequence[str] | None = None, n: int = 4) -> np.ndarray:
    """(H, W, 3) uint8: the first n generated sequences (in colour) over the first n real ones (light grey),
    one panel per channel (at most 8), the step on the x axis; for TensorBoard's add_image(...,
    dataformats="HWC") and PNG files."""
    real, fake = _sequences("real", real, 1), _sequences("fake", fake, 1)
    channels = real.shape[2]
    if fake.shape[2] != channels:
        raise ValueError(f"real has {channels} channels but fake has {fake.shape[2]}: they must match")
    _check_positive_int("n", n)
    names = [f"c{i}" for i in range(channels)] if channel_names is None else list(channel_names)
    if len(names) != channels:
        raise ValueError(f"{len(names)} channel_names for {channels} channels")
    real = real[:n].detach().double().cpu().numpy()
    fake = fake[:n].detach().double().cpu().numpy()
    panels = min(channels, MAX_PANELS)
    fig = _figure((8, 0.6 + 1.6 * panels))
    axes = np.atleast_1d(fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0])
    colours = [f"C{i % 10}" for i in range(len(fake))]
    for c, ax in enumerate(axes):
        for seq in real:
            ax.plot(np.arange(len(seq)), seq[:, c], color="0.8", lw=1.2)
        for seq, colour in zip(fake, colours, strict=True):
            ax.plot(np.arange(len(seq)), seq[:, c], color=colour, lw=1.2)
        low = min(0.0, real[..., c].min(), fake[..., c].min())
        high = max(1.0, real[..., c].max(), fake[..., c].max())
        ax.set_ylim(low - 0.05, high + 0.05)
        ax.set_ylabel(names[c])
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    more = f"; the first {MAX_PANELS} of {channels} channels" if channels > MAX_PANELS else ""
    fig.suptitle(f"{len(fake)} generated (colour) over {len(real)} real (grey){more}", fontsize=10)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


class _Classifier(nn.Module):
    """M GRU classifiers: (M, B, T, C) -> the top layer's last state -> (M, B) logits."""

    def __init__(self, models: int, channels: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.rnn = GRUEnsemble(models, channels, hidden, layers)
        self.head = LinearEnsemble(models, hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.rnn(x)[:, :, -1]).squeeze(-1)

    def one(self, m: int, x: Tensor) -> Tensor:
        """Model m's logits for (B, T, C): the others are fed zeros (they do not mix with it)."""
        return self(_alone(m, len(self.head.weight), x))[m]


class _Predictor(nn.Module):
    """M GRU predictors: (M, B, T, C_in) -> Linear -> sigmoid at every step -> (M, B, T) in (0, 1)."""

    def __init__(self, models: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.rnn = GRUEnsemble(models, channels, hidden)
        self.head = LinearEnsemble(models, hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.head(self.rnn(x))).squeeze(-1)

    def one(self, m: int, x: Tensor) -> Tensor:
        return self(_alone(m, len(self.head.weight), x))[m]


def _alone(m: int, models: int, x: Tensor) -> Tensor:
    """(B, ...) -> (models, B, ...) with x in place m and zeros elsewhere: one model's input to the ensemble."""
    stacked = x.new_zeros(models, *x.shape)
    stacked[m] = x
    return stacked


def _take(sets: Sequence[Tensor] | Tensor, indices: Sequence[Tensor]) -> Tensor:
    """(M, batch, T, C): model m's batch, sets[m] at indices[m] (its own training share)."""
    return torch.stack([one[index] for one, index in zip(sets, indices, strict=True)])


def _draws(
    sizes: Sequence[int], batch_size: int, gen: torch.Generator, steps: int, device: torch.device
) -> Iterator[list[Tensor]]:
    """Each step's batch indices on `device`, one tensor per set of `sizes`, drawn by `_batch` on the CPU in the
    same order as one step at a time would (so the numbers are the same on every device). They are copied to the
    device STEPS_PER_COPY steps at a time: a copy from pageable host memory waits for the device, and one copy per
    set per step would make every step wait for the last."""
    lengths = [min(n, batch_size) for n in sizes]
    for start in range(0, steps, STEPS_PER_COPY):
        count = min(STEPS_PER_COPY, steps - start)
        block = torch.stack([torch.cat([_batch(n, batch_size, gen) for n in sizes]) for _ in range(count)])
        for row in block.to(device):
            yield list(row.split(lengths))


def _figure(size: tuple[float, float]):  # -> matplotlib.figure.Figure
    """A figure on its own Agg canvas: no display, no pyplot state, no global backend switch (as in
    ganlab/commands/report.py); nothing to close, it is freed with its last reference."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


@contextlib.contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """One intra-op thread while the post-hoc networks train: they are so small that a step is all per-operation
    overhead, and with more threads each operation also waits for the others (ten times slower with two threads
    when one core is busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _split(x: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(train, test): a seeded permutation's first 80 % and the rest, as TimeGAN's train_test_divide."""
    order = torch.randperm(len(x), generator=gen).to(x.device)
    cut = len(x) * TRAIN_SHARE_NUMERATOR // TRAIN_SHARE_DENOMINATOR
    return x[order[:cut]], x[order[cut:]]


def _batch(n: int, batch_size: int, gen: torch.Generator) -> Tensor:
    """batch_size distinct indices of n (all n when fewer), as TimeGAN's batch_generator."""
    return torch.randperm(n, generator=gen)[:batch_size]


@torch.no_grad()
def _chunked_sum(x: Tensor, device: torch.device, fn: Callable[[Tensor], Tensor]) -> float:
    return float(sum(float(fn(x[i : i + EVAL_CHUNK].to(device))) for i in range(0, len(x), EVAL_CHUNK)))


def _sequences(name: str, x: Tensor, min_count: int) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dim() != 3:
        raise ValueError(f"{name} must be sequences of shape (N, T, C), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    if len(x) < min_count:
        raise ValueError(f"{name} holds {len(x)} sequences; this needs at least {min_count}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or infinite values (a diverged generator?); no score is meaningful")
    return x


def _paired(real: Tensor, fake: Tensor, min_count: int) -> tuple[Tensor, Tensor]:
    real, fake = _sequences("real", real, min_count), _sequences("fake", fake, min_count)
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"real sequences are (T, C) = {tuple(real.shape[1:])} but fake ones are {tuple(fake.shape[1:])}: "
            "steps and channels must match"
        )
    return real, fake


def _hidden(hidden: int | None, channels: int) -> int:
    if hidden is None:
        return max(channels // 2, 1)  # TimeGAN: int(dim / 2), which is 0 for one channel
    _check_positive_int("hidden", hidden)
    return hidden


def _check_training(steps: int, batch_size: int, lr: float, layers: int = 1) -> None:
    _check_positive_int("steps", steps)
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("layers", layers)
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")


def _check_lag(max_lag: int, length: int, name: str) -> None:
    _check_positive_int("max_lag", max_lag)
    if max_lag >= length:
        raise ValueError(f"max_lag={max_lag} needs sequences longer than that, but {name} has T={length} steps")


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
