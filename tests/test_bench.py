"""scripts/bench.py runs in a tiny configuration and prints its table (the figures themselves are in the README:
speed is measured by the benchmark, not asserted by tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

TINY = ["--steps", "2", "--warmup", "1", "--batch", "16", "--mnist-n", "128", "--folder-n", "32"]


def bench(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "scripts/bench.py", *TINY, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def rows(table: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for line in table.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }


def test_the_mlp_workload_prints_baseline_and_ganlab_with_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    import bench as bench_script  # scripts/ is not a package

    bench_script.main([*TINY, "--workloads", "mlp", "--only", "ganlab", "--in-process"])
    out = capsys.readouterr().out
    assert "## mlp" in out and "batch 16" in out
    table = rows(out)
    assert table["baseline (reference loop)"][-1] == "1.00x"
    rate, ms, peak, ratio = table["ganlab"]
    assert float(rate) > 0 and float(ms) > 0 and float(peak) > 0
    assert re.fullmatch(r"\d+\.\d\dx", ratio)
    assert float(ratio[:-1]) == pytest.approx(float(rate) / float(table["baseline (reference loop)"][0]), abs=0.01)


@pytest.mark.slow
def test_the_mlp_workload_runs_its_rows_in_their_own_processes() -> None:
    table = rows(bench("--workloads", "mlp"))
    for label in ("baseline (reference loop)", "ganlab", "precision=bf16", "compile=true"):
        assert label in table and re.fullmatch(r"\d+\.\d\dx", table[label][-1]), (label, table)


@pytest.mark.slow
def test_the_dcgan_workload_runs_every_option_row() -> None:
    out = bench("--workloads", "dcgan", "--width", "4")
    table = rows(out)
    for label in ("baseline (reference loop)", "ganlab", "precision=bf16", "compile=true", "data.cache=false"):
        assert label in table and re.fullmatch(r"\d+\.\d\dx", table[label][-1]), (label, out)
