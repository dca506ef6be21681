"""Run by tests/test_distributed.py under torchrun (gloo on CPU): one ganlab training run, as `ganlab train`
would do it under torchrun, after which every rank saves its own G and D so that the test can compare them.

usage: torchrun --nproc_per_node=N tests/ddp_worker.py <out dir> <run dir> [overrides...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import ganlab.train as train_module
from ganlab.distributed import destroy, init_from_env
from tests.conftest import compose_cfg


def main(out: str, run_dir: str, *overrides: str) -> None:
    dist = init_from_env()
    captured = {}
    build = train_module.build

    def keep_parts(cfg):  # the rank's own networks, which only rank 0 would otherwise write (to checkpoints)
        captured["parts"] = build(cfg)
        return captured["parts"]

    train_module.build = keep_parts
    cfg = compose_cfg(*overrides)
    train_module.train(cfg, Path(run_dir), overrides=list(overrides))
    parts = captured["parts"]
    torch.save({"G": parts.G.state_dict(), "D": parts.D.state_dict()}, Path(out) / f"rank{dist.rank}.pt")
    destroy()


if __name__ == "__main__":
    main(*sys.argv[1:])
    from ganlab.cli import exit_rank

    exit_rank(0)  # as the console script ends a rank: not through the interpreter's exit (see exit_rank)
