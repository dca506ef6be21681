"""Write tests/golden/<case>.pt from the code as it stands: `python -m tests.golden.write [case ...]`.

Only for a change meant to alter what training computes (see tests/test_golden_weights.py)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from tests.test_golden_weights import CASES, GOLDEN, numerics, train_case


def main(names: list[str]) -> None:
    for name in names or sorted(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            state = train_case(name, Path(tmp) / name)
        torch.save({**state, "numerics": numerics()}, GOLDEN / f"{name}.pt")
        print(f"wrote {GOLDEN / f'{name}.pt'}")


if __name__ == "__main__":
    main(sys.argv[1:])
