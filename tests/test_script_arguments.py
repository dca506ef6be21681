"""The scripts refuse arguments that would measure nothing: usage and exit 2, not a traceback, and not exit 0
with a table of failed or empty rows (a check that ran nothing must not read as passed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import bench  # noqa: E402  (scripts/ is not a package)
import gpu_check  # noqa: E402
import quality  # noqa: E402
import step_ops  # noqa: E402


@pytest.mark.parametrize(
    ("script", "argv", "says"),
    [
        (quality, ["--seeds", "0"], "--seeds must be >= 1"),
        (quality, ["--only", "zzz_nothing"], "--only zzz_nothing names no row"),
        (step_ops, ["--configs", "nope"], "unknown configuration(s) nope"),
        (step_ops, ["--warmup", "-1"], "--warmup must be >= 0"),
        (bench, ["--steps", "0", "--workloads", "mlp"], "--steps must be >= 1, got 0"),
        (bench, ["--repeats", "0"], "--repeats must be >= 1"),
        (gpu_check, ["--allow-cpu", "--budget", "-5"], "--budget must be > 0 seconds"),
        (gpu_check, ["--allow-cpu", "--steps", "0"], "--steps >= 1"),
    ],
)
def test_arguments_that_measure_nothing_exit_2(
    script: object, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        script.main(argv)  # type: ignore[attr-defined]
    assert exit_info.value.code == 2 and says in capsys.readouterr().err
