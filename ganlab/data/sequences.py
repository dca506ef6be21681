"""What every time-series source shares: sequences held on the device as one (N, T, C) tensor, scaled to [0, 1].

Sequences stay in [0, 1] (TimeGAN's convention, and the scale its published scores are measured on): G ends in
a sigmoid, or with `model.generator.output=linear` learns the range from D (its samples may overshoot it a
little), and the metrics (ganlab/metrics/sequence.py) read them as they are. A source that scaled its data
(data=csv) keeps the scaling, so that `to_units` writes samples back in the data's own units. `task =
"sequence"` selects the evaluator (ganlab/evaluators/sequence.py); `data.prefix` > 0 conditions G on a real
sequence's first steps (condition.Prefixed).
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from ganlab.condition import Prefixed
from ganlab.errors import ConfigError

FIXED_SEED = 0  # the sequences that pictures and evaluations compare with: the same for every run


class InMemorySequences:
    """Sequences (N, T, C) in [0, 1], optionally with a class label each, sampled by index with the global RNG."""

    task = "sequence"
    device_resident = True  # batches are drawn on the device: a CUDA graph can capture them

    def __init__(
        self,
        sequences: Tensor,
        labels: Tensor | None = None,
        num_classes: int | None = None,
        device: torch.device | str = "cpu",
        prefix: int = 0,
        channel_names: list[str] | None = None,
        low: Tensor | None = None,
        high: Tensor | None = None,
    ) -> None:
        if sequences.dim() != 3:
            raise ValueError(f"expected sequences of shape (N, T, C), got {tuple(sequences.shape)}")
        n, length, channels = sequences.shape
        if isinstance(prefix, bool) or not isinstance(prefix, int) or not 0 <= prefix < length:
            raise ConfigError(
                f"data.prefix={prefix!r}: the steps G is given must be an integer from 0 (none) to data.length - 1 "
                f"= {length - 1}."
            )
        self.sequences = sequences.float().to(device)
        self.labels = None if labels is None else labels.long().to(device)
        self.num_classes = num_classes
        self.shape = (length, channels)
        self.prefix = prefix
        self.channel_names = list(channel_names) if channel_names else [f"c{i}" for i in range(channels)]
        # The per-channel range that [0, 1] stands for: samples are written back in the data's units with it.
        # (The sequences themselves are float32, so values come back to within ~1e-7 of each channel's range.)
        self.low = torch.zeros(channels, dtype=torch.float64) if low is None else low.double().cpu()
        self.high = torch.ones(channels, dtype=torch.float64) if high is None else high.double().cpu()
        if len(self.channel_names) != channels or self.low.shape != (channels,) or self.high.shape != (channels,):
            raise ValueError(f"channel names and ranges must have one entry per channel ({channels})")

    def __len__(self) -> int:
        return self.sequences.shape[0]

    def sample(self, batch_size: int) -> Tensor:
        idx = torch.randint(len(self), (batch_size,), device=self.sequences.device)
        return self.sequences[idx]

    def sample_labeled(self, batch_size: int) -> tuple[Tensor, Tensor]:
        if self.labels is None:
            raise ValueError("these sequences have no labels")
        idx = torch.randint(len(self), (batch_size,), device=self.sequences.device)
        return self.sequences[idx], self.labels[idx]

    def conditioning(self) -> Prefixed | None:
        """G continues a real beginning when data.prefix > 0; else the usual (labels or none)."""
        return Prefixed(self.prefix) if self.prefix else None

    def fixed_indices(self, n: int) -> Tensor:
        """min(n, N) indices chosen by a generator of their own: the same real sequences for every run, drawn
        without moving the training RNG."""
        return torch.randperm(len(self), generator=torch.Generator().manual_seed(FIXED_SEED))[:n]

    def fixed_sequences(self, n: int) -> Tensor:
        """The real sequences pictures are drawn over (and a prefix-conditioned G continues)."""
        return self.sequences[self.fixed_indices(n).to(self.sequences.device)]

    def to_units(self, sequences: Tensor) -> Tensor:
        """[0, 1] -> the data's own units (float64 on the CPU), undoing the per-channel min-max scaling."""
        return self.low + sequences.detach().double().cpu() * (self.high - self.low)

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.sequences.cpu().contiguous().numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def close(self) -> None:
        """Nothing to release: the sequences are one tensor."""
