"""The contracts between ganlab's parts, written once: what the loop, evaluation and `ganlab sample` use of a
data source, a generator and a discriminator. A new data set or model implements these; nothing else is read
from it.

Optional members are named in the docstrings; the code that uses one asks with `getattr(source, name, None)`
in one place (data.base.close_source, condition.conditioning_for, cuda_graphs.graph_blocker,
metrics.reference.reference_features).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class DataSource(Protocol):
    """What the loop draws real samples from: batches already on the training device, images in [-1, 1].

    Optional members:
    - `close()`: release what the source holds beyond memory (a streaming folder's worker processes),
      idempotently; the loop calls it when the run ends, finished or failed (data.base.close_source).
    - `device_resident`: True when batches are drawn on the device without the host, so that a CUDA graph can
      capture the step (ganlab/cuda_graphs.py); absent means False.
    - `conditioning()`: the source's own Conditioning (ganlab/condition.py), for paired data whose condition is
      a tensor; absent means class labels for a conditional model, else none.
    """

    shape: tuple[int, ...]  # one sample: (C, H, W) for images, (T, C) for sequences, (D,) for points
    num_classes: int | None  # classes of its labels; None when unlabelled

    def sample(self, batch_size: int) -> Tensor:
        """A batch of real samples on the device."""
        ...


@runtime_checkable
class LabelledSource(DataSource, Protocol):
    """A data source whose samples have classes (`num_classes` set): a conditional model trains on it."""

    def sample_labeled(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """A batch with its class labels (int64, on the device)."""
        ...


@runtime_checkable
class ImageSource(DataSource, Protocol):
    """A data source of images, as the image metrics read it (ganlab/metrics/reference.py).

    Optional: `labels`, (N,) int64, every image's class: the real class histogram that the class metrics
    compare against; absent or None means no such metric."""

    def __len__(self) -> int:
        """The number of real images."""
        ...

    def reference_batches(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """A fixed subset of min(n, len) real images in batches, chosen without moving the training RNG: the
        real side of FID, KID and precision/recall."""
        ...

    def fingerprint(self) -> str:
        """A hash of the pixels (and labels): cached reference features are reused only for exactly this data."""
        ...


@runtime_checkable
class InMemoryImageSource(ImageSource, Protocol):
    """Images held as one tensor: what a feature classifier trains on (ganlab/metrics/extractors.py)."""

    images: Tensor  # (N, C, H, W), uint8 or float in [-1, 1]
    labels: Tensor | None  # (N,) int64


@runtime_checkable
class ImagePairSource(ImageSource, Protocol):
    """Image-conditioned data (super_resolution, unpaired, paired_folder): G is given an image, not noise
    alone (condition.Paired). `sample` draws what D sees as real; `task` names the evaluator that judges such a G
    (ganlab/evaluators/<task>.py), which reads the source's held-out images its own way."""

    task: str  # super_resolution | refinement | translation

    def sample_pair(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(target, condition): D's real batch (or, for paired data, G's target) and G's input images."""
        ...

    def picture_pairs(self, n: int) -> tuple[Tensor, Tensor]:
        """Fixed (target, condition) pairs for the run's input | output | target pictures, drawn without the RNG."""
        ...


@runtime_checkable
class SequenceSource(DataSource, Protocol):
    """Sequences (data=sines, csv; ganlab/data/sequences.py): `shape` is (T, C), samples are in [0, 1] (TimeGAN's
    scale, and its scores'). `task = "sequence"` names the evaluator (ganlab/evaluators/sequence.py).

    Optional: `prefix` > 0 with `conditioning()` -> condition.Prefixed: G continues real beginnings."""

    task: str  # "sequence"
    sequences: Tensor  # (N, T, C) in [0, 1]: what the evaluator compares with
    labels: Tensor | None  # (N,) int64, a class per sequence, or None
    channel_names: list[str]  # for tables, pictures and written files

    def __len__(self) -> int: ...

    def fixed_indices(self, n: int) -> Tensor:
        """min(n, N) indices, the same for every run, chosen without moving the training RNG."""
        ...

    def fixed_sequences(self, n: int) -> Tensor:
        """The sequences at those indices: what pictures draw generated ones over."""
        ...

    def to_units(self, sequences: Tensor) -> Tensor:
        """[0, 1] -> the data's own units (float64 on the CPU), for the files `ganlab sample` writes."""
        ...


@runtime_checkable
class PointMixture(DataSource, Protocol):
    """A mixture of Gaussians in the plane, as the mode metrics read it (ganlab/metrics/modes.py)."""

    centres: Tensor  # (K, 2): the modes' means
    std: float  # every mode's standard deviation


class Generator(Protocol):
    """`<Name>Generator(z_dim, out_shape, ..., num_classes=None)`, an nn.Module built from the data's sample
    shape. Called as `G(z)` or `G(z, condition)` (ganlab/condition.py): a batch of samples of `out_shape`, images
    in [-1, 1]."""

    def __call__(self, z: Tensor, condition: Tensor | None = None) -> Tensor: ...


class Discriminator(Protocol):
    """`<Name>Discriminator(in_shape, ..., num_classes=None)`, an nn.Module built from the data's sample shape.
    Called as `D(x)` or `D(x, condition)`: one score per sample, shape (B,), a logit (the loss decides what it
    means), never a probability."""

    def __call__(self, x: Tensor, condition: Tensor | None = None) -> Tensor: ...
