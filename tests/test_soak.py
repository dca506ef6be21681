"""Resident memory stays flat over a 10k-step CPU run with logging, pictures, checkpoints and evaluation."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_resident_memory_stays_flat_over_10k_steps() -> None:  # about 5 minutes on 2 cores
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "soak.py"), "--steps", "10000", "--max-growth-mb", "30"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    growth = float(re.search(r"growth ([+-][\d.]+) MB", result.stdout).group(1))
    assert growth < 30
