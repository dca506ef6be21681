"""A plain (non-editable) install must find its configs and the digits classifier: they ship in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from ganlab.config import CONF_DIR
from tests.conftest import REPO


def test_wheel_ships_every_config(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ganlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"ganlab/conf/{p.relative_to(CONF_DIR).as_posix()}" for p in CONF_DIR.rglob("*.yaml")}
    assert len(configs) >= 19 and configs <= names
    # Deeper folders too: Hydra finds hydra/launcher=slurm among the package's configs.
    assert {"ganlab/conf/hydra/launcher/slurm.yaml", "ganlab/conf/hparams_search/ring8_optuna.yaml"} <= names
    assert "ganlab/cli.py" in names
    assert "ganlab/metrics/weights/digits.pt" in names  # features=digits works from a plain install
    assert any(n.endswith("entry_points.txt") for n in names)
