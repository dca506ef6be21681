"""`data=csv`: a time series from a CSV file with a header row, cut into overlapping windows of `length` rows.

Each chosen column (`data.columns`, by default every column but `data.label_column`) is one channel, min-max
scaled over all rows to [0, 1]; the range is kept (`low`, `high`), so `to_units` writes samples back in the
file's own units. A constant column scales to 0 and comes back as its value. Window i holds rows
[i * stride, i * stride + length). With `data.label_column`, a window's class is the label of its last row; the
classes are that column's distinct values, sorted (as numbers when they all are), numbered 0..K-1, and
`class_names` keeps them as the file writes them.

Every cell of a chosen column must be a finite number: the file is checked as a whole (a bad cell is named by
its data row, file line and column) before anything is built. A relative `data.path` is relative to the
current directory, which a run keeps (hydra.job.chdir=false), as `data.root` of the image folders.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from ganlab.data.sequences import InMemorySequences
from ganlab.errors import ConfigError

BAD_CELLS_SHOWN = 5  # the bad cells a message lists (then: how many more)


def _where(path: str) -> str:
    """`data.path=<path>`, and where a relative path was looked for."""
    p = Path(path).expanduser()
    return f"data.path={path}" + ("" if p.is_absolute() else f" (relative to the current directory {Path.cwd()})")


def _number(text: str) -> float | None:
    """A cell's finite value, or None (empty, NA, nan, inf, not a number)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_table(path: str, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(file line, cells)] for every non-blank data row), cells stripped of surrounding spaces."""
    file = Path(path).expanduser()
    if not file.exists():
        raise ConfigError(f"{_where(path)} does not exist: point it at a CSV file with a header row.")
    if not file.is_file():
        raise ConfigError(f"{_where(path)} is not a file: point it at a CSV file with a header row.")
    if delimiter == "\\t":  # data.delimiter='\t' on a command line arrives as a backslash and a t
        delimiter = "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise ConfigError(f"data.delimiter must be one character (e.g. ',', ';' or a tab), got {delimiter!r}.")
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: a spreadsheet's byte-order mark
            reader = csv.reader(f, delimiter=delimiter)
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue  # blank lines, e.g. at the end
                cells = [c.strip() for c in cells]
                if header is None:
                    header = cells
                else:
                    rows.append((reader.line_num, cells))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"{_where(path)} could not be read as a CSV file: {err}.") from err
    if header is None:
        raise ConfigError(f"{_where(path)} is empty: it needs a header row naming its columns, then the data.")
    return header, rows


class CSVData(InMemorySequences):
    """Overlapping windows of a CSV file's rows (see the module's docstring)."""

    def __init__(
        self,
        path: str,
        columns: list[str] | None = None,
        length: int = 24,
        stride: int = 1,
        label_column: str | None = None,
        delimiter: str = ",",
        prefix: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        for key, value, least in (("length", length, 2), ("stride", stride, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"data.{key} must be an integer >= {least}, got {value!r}.")
        path = str(path)
        header, rows = read_table(path, delimiter)
        where = _where(path)
        listed = f"its columns are {', '.join(repr(h) for h in header)}"
        duplicated = sorted({h for h in header if header.count(h) > 1})

        # the columns, by name
        if isinstance(columns, str):
            columns = [columns]
        if label_column is not None:
            label_column = str(label_column)
            if label_column not in header:
                raise ConfigError(f"data.label_column={label_column!r} is not a column of {where}: {listed}.")
        if columns is None:
            columns = [h for h in header if h != label_column]
            if not columns:
                raise ConfigError(f"{where} has no column to model besides data.label_column={label_column!r}.")
        else:
            columns = [str(c) for c in columns]
            if not columns:
                raise ConfigError(f"data.columns is empty: name at least one column of {where} ({listed}).")
            unknown = [c for c in columns if c not in header]
            if unknown:
                raise ConfigError(
                    f"data.columns names {', '.join(repr(c) for c in unknown)}, not a column of {where}: {listed}."
                )
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            if repeated:
                raise ConfigError(f"data.columns names {', '.join(repr(c) for c in repeated)} more than once.")
        ambiguous = [c for c in [*columns, label_column] if c in duplicated]
        if ambiguous:
            raise ConfigError(
                f"{where} has more than one column named {', '.join(repr(c) for c in sorted(set(ambiguous)))}: "
                "rename them so that the name says which one is meant."
            )

        # every row has every cell, and every chosen cell is a finite number
        for i, (line, cells) in enumerate(rows, start=1):
            if len(cells) != len(header):
                raise ConfigError(
                    f"{where}: data row {i} (line {line}) has {len(cells)} cells, the header {len(header)}. "
                    f"Is data.delimiter={delimiter!r} the file's delimiter?"
                )
        index = [header.index(c) for c in columns]
        values: list[list[float]] = []
        bad: list[str] = []
        count = 0
        for i, (line, cells) in enumerate(rows, start=1):
            row = []
            for name, j in zip(columns, index, strict=True):
                value = _number(cells[j])
                if value is None:
                    count += 1
                    if len(bad) < BAD_CELLS_SHOWN:
                        text = repr(cells[j]) if cells[j] else "an empty cell"
                        bad.append(f"data row {i} (line {line}), column {name!r}: {text}")
                    value = math.nan
                row.append(value)
            values.append(row)
        if bad:
            more = f"; and {count - len(bad)} more" if count > len(bad) else ""
            raise ConfigError(
                f"{where}: every cell of the modelled columns must be a finite number, but {count} "
                f"{'is' if count == 1 else 'are'} not: {'; '.join(bad)}{more}. Fill or drop those rows, or leave "
                "the column out of data.columns."
            )
        if len(rows) < length:
            raise ConfigError(
                f"{where} has {len(rows)} data row{'' if len(rows) == 1 else 's'}, fewer than one window of "
                f"data.length={length} rows: lower data.length or use a longer file."
            )

        # the labels: the sorted distinct values of the label column, numbered
        self.class_names: list[str] | None = None
        labels: torch.Tensor | None = None
        if label_column is not None:
            j = header.index(label_column)
            texts = [cells[j] for _, cells in rows]
            for i, (text, (line, _)) in enumerate(zip(texts, rows, strict=True), start=1):
                if not text:
                    raise ConfigError(
                        f"{where}: data row {i} (line {line}) has no label in data.label_column={label_column!r}."
                    )
            numbers = [_number(t) for t in texts]
            if all(n is not None for n in numbers):
                first: dict[float, str] = {}  # "1" and "1.0" are one class, named as it first appears
                for n, t in zip(numbers, texts, strict=True):
                    first.setdefault(n, t)  # type: ignore[arg-type]
                keys = sorted(first)
                self.class_names = [first[k] for k in keys]
                code = {k: c for c, k in enumerate(keys)}
                row_labels = [code[n] for n in numbers]  # type: ignore[index]
            else:
                self.class_names = sorted(set(texts))
                code_s = {k: c for c, k in enumerate(self.class_names)}
                row_labels = [code_s[t] for t in texts]
            labels = torch.tensor(row_labels, dtype=torch.int64)

        # min-max scaling per column, then the windows
        table = torch.tensor(values, dtype=torch.float64).reshape(len(rows), len(columns))
        low, high = table.min(dim=0).values, table.max(dim=0).values
        span = high - low
        if not torch.isfinite(span).all():
            wide = [c for c, s in zip(columns, span.tolist(), strict=True) if not math.isfinite(s)]
            raise ConfigError(f"{where}: the range of column {', '.join(map(repr, wide))} overflows a float64.")
        scaled = (table - low) / torch.where(span > 0, span, torch.ones_like(span))  # a constant column: 0
        windows = scaled.unfold(0, length, stride).permute(0, 2, 1).contiguous()  # (N, length, C)
        window_labels = None if labels is None else labels[length - 1 :: stride][: windows.shape[0]]

        self.path = path
        self.columns = columns
        self.label_column = label_column
        self.rows = len(rows)
        self.length = length
        self.stride = stride
        super().__init__(
            windows,
            window_labels,
            num_classes=None if self.class_names is None else len(self.class_names),
            device=device,
            prefix=prefix,
            channel_names=columns,
            low=low,
            high=high,
        )
