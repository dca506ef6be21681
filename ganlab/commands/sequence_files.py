"""`ganlab sample` for sequence generators: what G is given, and the files its sequences are written to.

Samples leave G in [0, 1]; the files hold the data's own units (data=csv keeps its per-column min-max scaling,
InMemorySequences.to_units). .csv: one row per sample and step, with the data's column names (a conditional G's
class under data.label_column's name, as the file wrote it); .npz: `samples` (N, T, C) in the data's units (and, for
a conditional G, `labels`, the class indices, with `class_names`, the labels they stand for in the file);
.png/.jpg: generated sequences drawn over real ones, a panel per channel.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ganlab import pictures
from ganlab.commands.output import write_atomically
from ganlab.errors import ConfigError

PICTURED = 8  # sequences drawn in a picture: more would hide one another


def conditions(data: Any, n: int, labels: Tensor | None) -> Tensor | None:
    """G's conditions for n samples: the class labels, or for a prefix-conditioned G the prefixes of n fixed real
    sequences (the data's own, the same every time)."""
    if not getattr(data, "prefix", 0):
        return labels
    if n > len(data):
        raise ConfigError(
            f"n={n}: this generator continues real prefixes (data.prefix={data.prefix}), and the data holds "
            f"{len(data)} sequences; ask for at most that many."
        )
    return data.fixed_sequences(n)[:, : data.prefix].cpu()


def write(out: Path, fake: Tensor, data: Any, labels: Tensor | None) -> None:
    suffix = out.suffix.lower()
    names = getattr(data, "class_names", None)  # data=csv: the label column's own values, by class index
    if suffix == ".csv":
        label_cells = None
        if labels is not None:
            label_cells = [names[i] if names else str(i) for i in labels.tolist()]
        label_header = getattr(data, "label_column", None) or "label"
        text = csv_text(data.to_units(fake).numpy(), data.channel_names, label_cells, label_header)
        write_atomically(out, lambda f: f.write(text.encode()))
    elif suffix == ".npz":
        arrays = {"samples": data.to_units(fake).numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
            if names:
                arrays["class_names"] = np.array(names)
        write_atomically(out, lambda f: np.savez(f, **arrays))
    else:
        real = data.fixed_sequences(PICTURED).cpu()
        picture = pictures.sequences(fake[:PICTURED], real, data.channel_names)
        write_atomically(out, lambda f: pictures.write_picture(picture, f, out.suffix))


def csv_text(
    samples: np.ndarray, channel_names: list[str], labels: list[str] | None, label_header: str = "label"
) -> str:
    """(N, T, C) -> a table with columns sample, step, [the label,] and the channels, one row per sample and
    step; `labels` are the cells of each sample's class, as the data's file writes it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["sample", "step"] + ([label_header] if labels is not None else []) + list(channel_names))
    for i, sequence in enumerate(samples):
        label = [] if labels is None else [labels[i]]
        for t, values in enumerate(sequence):
            writer.writerow([i, t, *label, *(repr(float(v)) for v in values)])
    return buffer.getvalue()
