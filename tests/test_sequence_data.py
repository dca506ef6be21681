"""Time-series sources: the sine benchmark follows its stated distribution, and data=csv windows a file faithfully."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.data.csv import CSVData
from ganlab.data.sines import SinesData, sine_sequences
from ganlab.errors import ConfigError
from ganlab.targets import instantiate_node
from tests.conftest import compose_cfg

# --- sines ---------------------------------------------------------------------------------------------------

STEPS = np.arange(24)[None, :, None]


def recover_omega(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ω, s) per sequence and channel of (n, T, C) sines in [0, 1]: s = 2x - 1 = sin(ω t + θ), and since
    s_{t+1} + s_{t-1} = 2 cos ω s_t, cos ω = Σ s_t (s_{t+1} + s_{t-1}) / (2 Σ s_t²) over the interior steps."""
    s = 2.0 * x.astype(np.float64) - 1.0
    num = (s[:, 1:-1] * (s[:, 2:] + s[:, :-2])).sum(axis=1)
    den = 2.0 * (s[:, 1:-1] ** 2).sum(axis=1)
    return np.arccos(np.clip(num / den, -1.0, 1.0)), s


def uniform_p(values: np.ndarray, low: float, high: float) -> float:
    """The Kolmogorov-Smirnov test's p-value of `values` against U[low, high)."""
    from scipy import stats  # here: importing it takes seconds, which collecting the file need not pay

    return float(stats.kstest(values.ravel(), stats.uniform(low, high - low).cdf).pvalue)


def redraw(omega: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(sin(ω t + θ) + 1) / 2 over 24 steps, (n, 24, C)."""
    return (np.sin(omega[:, None, :] * STEPS + theta[:, None, :]) + 1.0) / 2.0


def test_paper_sines_follow_the_stated_distribution() -> None:
    x = sine_sequences(2000, 24, 5, seed=0).numpy()
    omega, s = recover_omega(x)
    assert uniform_p(omega / (2 * math.pi), 0.0, 0.1) > 0.01  # f = ω / 2π ~ U[0, 0.1)
    # s_0 = sin θ and s_1 = sin(ω + θ) = sin ω cos θ + cos ω sin θ give cos θ, to the float32 rounding of the data
    # (~1e-7) over sin ω: channels with ω < 0.01 (f < 0.0016, about 1.6% of them) give θ only to ~1e-5 / ω and are
    # left out. θ is drawn independently of ω, so those kept are still U[-π, π).
    keep = omega > 0.01
    assert keep.mean() > 0.97
    w, s0, s1 = omega[keep], s[:, 0][keep], s[:, 1][keep]
    theta = np.arctan2(s0, (s1 - np.cos(w) * s0) / np.sin(w))
    assert uniform_p(theta, -math.pi, math.pi) > 0.01
    # and (ω, θ) draw the data again: each channel is sin(ω t + θ) scaled to [0, 1], and nothing else
    theta_all = np.zeros_like(omega)
    theta_all[keep] = theta
    assert np.abs(redraw(omega, theta_all) - x).max(axis=1)[keep].max() < 1e-4
    # the test has power: the reference code's sines fail it (their ω = f < 0.1, so ω / 2π < 0.016)
    omega_ref, _ = recover_omega(sine_sequences(2000, 24, 5, seed=0, form="reference_code").numpy())
    assert uniform_p(omega_ref / (2 * math.pi), 0.0, 0.1) < 1e-6


def test_reference_code_form_is_timegans_formula() -> None:
    """TimeGAN's data_loading.py: sin(f t + φ) with f, φ ~ U[0, 0.1), scaled by (x + 1) / 2."""
    x = sine_sequences(2000, 24, 5, seed=0, form="reference_code").numpy()
    assert not np.array_equal(x, sine_sequences(2000, 24, 5, seed=0).numpy())
    omega, s = recover_omega(x)
    assert uniform_p(omega, 0.0, 0.1) > 0.01  # here the angular frequency itself is f ~ U[0, 0.1)
    phi = np.arcsin(s[:, 0])  # s_0 = sin φ, φ in [0, 0.1): arcsin is exact there
    assert phi.min() >= -1e-6 and phi.max() < 0.1
    assert uniform_p(phi, 0.0, 0.1) > 0.01
    # f t + φ stays within [0, 2.4]: increasing, nearly straight lines from about 0.5
    err = np.abs(redraw(omega, phi) - x).max(axis=1)
    assert np.median(err) < 1e-5 and np.quantile(err, 0.99) < 1e-3  # tiny ω are recovered less exactly
    assert x[:, 0].min() >= 0.5 - 1e-6 and x[:, 0].max() < 0.55


def test_sines_shape_range_seed_and_global_rng() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    x = sine_sequences(64, 10, 3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # drawn from a generator of its own
    assert x.shape == (64, 10, 3) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.min() < 0.1 and x.max() > 0.9
    assert torch.equal(x, sine_sequences(64, 10, 3, seed=7))
    assert not torch.equal(x, sine_sequences(64, 10, 3, seed=8))
    data = SinesData(n=64, length=10, features=3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(data.sequences, x) and len(data) == 64 and data.shape == (10, 3)
    assert data.labels is None and data.num_classes is None
    assert torch.equal(data.to_units(x).float(), x)  # already in its units: [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 1}, "data.n"),
        ({"n": 2.5}, "data.n"),
        ({"n": True}, "data.n"),
        ({"length": 1}, "data.length"),
        ({"features": 0}, "data.features"),
        ({"form": "textbook"}, "paper, reference_code"),
        ({"prefix": 24}, "data.prefix"),
    ],
)
def test_sines_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SinesData(**{"n": 8, **kwargs})


# --- csv -----------------------------------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> Path:
    path.write_text("\n".join(delimiter.join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def series(n: int = 30) -> tuple[list[str], list[list[object]], np.ndarray]:
    """A header, n rows of three numeric columns of different ranges (one of them not exactly in binary), and
    the values as float64."""
    rng = np.random.default_rng(0)
    values = np.stack(
        [
            rng.normal(1000.0, 50.0, n),
            np.arange(n) * 0.1 - 1.3,
            rng.uniform(-1e-3, 1e-3, n),
        ],
        axis=1,
    )
    return ["price", "t", "tiny"], [[repr(v) for v in row] for row in values.tolist()], values


@pytest.mark.parametrize(("length", "stride"), [(5, 1), (5, 3), (7, 4), (30, 1), (2, 29)])
def test_csv_windows_round_trip(tmp_path: Path, length: int, stride: int) -> None:
    header, rows, values = series(30)
    data = CSVData(str(write_csv(tmp_path / "s.csv", header, rows)), length=length, stride=stride)
    n = (30 - length) // stride + 1
    assert len(data) == n and data.sequences.shape == (n, length, 3) and data.shape == (length, 3)
    assert data.channel_names == header and data.labels is None and data.num_classes is None
    assert data.low.dtype == torch.float64 and data.high.dtype == torch.float64
    assert np.array_equal(data.low.numpy(), values.min(0)) and np.array_equal(data.high.numpy(), values.max(0))
    span = values.max(0) - values.min(0)
    for i in range(n):
        rows_i = values[i * stride : i * stride + length]
        back = data.to_units(data.sequences[i])
        assert back.dtype == torch.float64
        # the windows are held as float32 in [0, 1]: back to within float32's rounding (2^-24) of each column's range
        assert (np.abs(back.numpy() - rows_i) <= 1e-7 * span).all()


def test_csv_scaled_to_the_unit_interval(tmp_path: Path) -> None:
    header, rows, _ = series(30)
    data = CSVData(str(write_csv(tmp_path / "s.csv", header, rows)), length=30)
    x = data.sequences[0]  # one window: every row
    assert x.dtype == torch.float32
    assert torch.equal(x.min(0).values, torch.zeros(3)) and torch.equal(x.max(0).values, torch.ones(3))
    data = CSVData(str(write_csv(tmp_path / "s.csv", header, rows)), length=4, stride=2)
    assert data.sequences.min() >= 0.0 and data.sequences.max() <= 1.0


def test_csv_constant_column_round_trips(tmp_path: Path) -> None:
    rows = [[i, 3.25, -7] for i in range(10)]
    data = CSVData(str(write_csv(tmp_path / "c.csv", ["i", "const", "neg"], rows)), length=4)
    assert torch.equal(data.sequences[..., 1:], torch.zeros(7, 4, 2))  # constant: scaled to 0, no division by 0
    back = data.to_units(data.sequences)
    assert torch.equal(back[..., 1], torch.full((7, 4), 3.25, dtype=torch.float64))
    assert torch.equal(back[..., 2], torch.full((7, 4), -7.0, dtype=torch.float64))
    assert torch.allclose(back[:, 0, 0], torch.arange(7, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", ["", "NA", "nan", "abc", "inf", "1,5"])
def test_csv_bad_cell_names_row_line_and_column(tmp_path: Path, bad: str) -> None:
    rows: list[list[object]] = [[i, i * 2] for i in range(8)]
    rows[4][1] = f'"{bad}"' if "," in bad else bad
    path = write_csv(tmp_path / "b.csv", ["a", "b"], rows)
    with pytest.raises(ConfigError) as err:
        CSVData(str(path), length=3)
    message = str(err.value)
    assert "data row 5 (line 6)" in message and "column 'b'" in message and "data.path=" in message
    assert (repr(bad) if bad else "an empty cell") in message
    assert CSVData(str(path), columns=["a"], length=3).channel_names == ["a"]  # a column left out is not read


def test_csv_bad_cells_counted(tmp_path: Path) -> None:
    rows = [["x", "y"] for _ in range(9)]
    with pytest.raises(ConfigError, match=r"18 are not: data row 1 \(line 2\), column 'a': 'x'.*and 13 more"):
        CSVData(str(write_csv(tmp_path / "b.csv", ["a", "b"], rows)), length=3)


def test_csv_unknown_column_lists_the_files_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", ["open", "close"], [[1, 2]] * 5)
    with pytest.raises(ConfigError, match=r"'high'.*its columns are 'open', 'close'"):
        CSVData(str(path), columns=["open", "high"], length=2)
    with pytest.raises(ConfigError, match=r"data.label_column='kind'.*its columns are 'open', 'close'"):
        CSVData(str(path), label_column="kind", length=2)
    with pytest.raises(ConfigError, match="more than once"):
        CSVData(str(path), columns=["open", "open"], length=2)


def test_csv_too_few_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "few.csv", ["a"], [[1], [2], [3]])
    with pytest.raises(ConfigError, match=r"has 3 data rows, fewer than one window of data.length=4"):
        CSVData(str(path), length=4)
    assert len(CSVData(str(path), length=3)) == 1


@pytest.mark.parametrize(("key", "value"), [("length", 1), ("length", 2.0), ("stride", 0), ("stride", True)])
def test_csv_bad_length_or_stride(tmp_path: Path, key: str, value: object) -> None:
    path = write_csv(tmp_path / "a.csv", ["a"], [[i] for i in range(5)])
    with pytest.raises(ConfigError, match=f"data.{key} must be an integer"):
        CSVData(str(path), **{key: value})


def test_csv_missing_path_or_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"data.path=.*nowhere.csv does not exist"):
        CSVData(str(tmp_path / "nowhere.csv"))
    with pytest.raises(ConfigError, match=r"data.path=.* is not a file"):
        CSVData(str(tmp_path))
    # a relative path is taken from the current directory, which a run keeps (hydra.job.chdir=false)
    write_csv(tmp_path / "rel.csv", ["a"], [[i] for i in range(5)])
    monkeypatch.chdir(tmp_path)
    assert len(CSVData("rel.csv", length=2)) == 4
    with pytest.raises(ConfigError, match=r"data.path=other.csv \(relative to the current directory .*\) does not"):
        CSVData("other.csv")


def test_csv_labels_are_the_last_rows(tmp_path: Path) -> None:
    kinds = [9, 10, 9, 2, 10, 2, 2, 9, 10, 10, 2]  # sorted as numbers: 2, 9, 10
    rows = [[i, k, i * i] for i, k in enumerate(kinds)]
    path = write_csv(tmp_path / "l.csv", ["a", "kind", "b"], rows)
    data = CSVData(str(path), label_column="kind", length=3, stride=2)
    assert data.channel_names == ["a", "b"]  # columns=None: all but the label column
    assert data.num_classes == 3 and data.class_names == ["2", "9", "10"]
    code = {2: 0, 9: 1, 10: 2}
    assert data.labels is not None and data.labels.tolist() == [code[kinds[i * 2 + 2]] for i in range(len(data))]
    last = torch.tensor([i * 2 + 2 for i in range(len(data))], dtype=torch.float64)
    assert torch.allclose(data.to_units(data.sequences)[:, -1, 0], last, rtol=0, atol=1e-6)
    x, y = data.sample_labeled(5)
    assert x.shape == (5, 3, 2) and y.dtype == torch.int64
    # text labels sort as text
    rows = [[i, k] for i, k in enumerate(["up", "down", "flat", "up", "down"])]
    data = CSVData(str(write_csv(tmp_path / "t.csv", ["v", "trend"], rows)), label_column="trend", length=2)
    assert data.class_names == ["down", "flat", "up"] and data.labels.tolist() == [0, 1, 2, 0]
    assert data.channel_names == ["v"]


def test_csv_columns_in_the_given_order(tmp_path: Path) -> None:
    rows = [[i, 10 * i, 100 - i] for i in range(6)]
    data = CSVData(str(write_csv(tmp_path / "o.csv", ["a", "b", "c"], rows)), columns=["c", "a"], length=6)
    assert data.channel_names == ["c", "a"]
    expected = torch.tensor([[100.0 - i, float(i)] for i in range(6)], dtype=torch.float64)
    assert torch.allclose(data.to_units(data.sequences[0]), expected, rtol=0, atol=1e-5)


def test_csv_delimiter_spaces_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("a ; b\n1;2\n 3 ; 4\n\n5;6\n\n")  # spaces around cells, blank lines
    data = CSVData(str(path), length=3, delimiter=";")
    assert data.channel_names == ["a", "b"]
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    assert torch.allclose(data.to_units(data.sequences[0]), expected, rtol=0, atol=1e-6)
    path.write_text("a,b\n1,2\n3,4\n5\n6,7\n")
    with pytest.raises(ConfigError, match=r"data row 3 \(line 4\) has 1 cells, the header 2.*data.delimiter"):
        CSVData(str(path), length=3)
    with pytest.raises(ConfigError, match="data.delimiter must be one character"):
        CSVData(str(path), delimiter=";;")


def test_csv_composes_through_hydra(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", ["a", "b"], [[i, -i] for i in range(12)])
    cfg = compose_cfg("data=csv", f"data.path={path}", "data.length=5", fast=False)
    data = instantiate_node(cfg.data, device="cpu")
    assert isinstance(data, CSVData)
    assert len(data) == 8 and data.shape == (5, 2) and data.channel_names == ["a", "b"]
    cfg = compose_cfg("data=csv", f"data.path={path}", "data.columns=[b]", "data.stride=2", fast=False)
    with pytest.raises(ConfigError, match="has 12 data rows, fewer than one window of data.length=24"):
        instantiate_node(cfg.data, device="cpu")
    tabs = write_csv(tmp_path / "h.tsv", ["a", "b"], [[i, -i] for i in range(12)], delimiter="\t")
    cfg = compose_cfg("data=csv", f"data.path={tabs}", "data.length=12", "data.delimiter='\\t'", fast=False)
    assert instantiate_node(cfg.data, device="cpu").channel_names == ["a", "b"]
