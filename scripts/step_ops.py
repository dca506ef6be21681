"""Host work per training step, counted on any machine: the aten operations one G step (with its D steps)
dispatches. Each is a kernel launch on a GPU, so this count is the CPU-side stand-in for launch overhead, the
cost that dominates small GANs on fast GPUs (6.5 ms per step for an MLP GAN on an H200 that needs microseconds).

    python scripts/step_ops.py [--warmup 3] [--top 8] [--configs default,mlp_mnist,wgan_gp]

Counts one step after warm-up (lazy optimizer state, first-step branches), with the step's own stats read-back
excluded (the loop reads them only at log steps). Prints a table: ops per G step, and the top ops.
tests/test_step_ops.py fixes a ceiling on these counts, so that a change which adds launches is seen.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_baseline  # noqa: E402  (scripts/ is not a package)

# The workloads the issue names: the default run, the classic MLP GAN, and WGAN-GP (5 D steps with a penalty).
# channels_last as on a GPU (the counts stand in for its launches), and so the same on every CPU: its default
# there depends on the CPU (ganlab/speed.py).
NHWC = "trainer.channels_last=true"
CONFIGS: dict[str, list[str]] = {
    "default": [NHWC],
    "mlp_mnist": ["experiment=mlp_mnist", NHWC],
    "wgan_gp": ["loss=wgan_gp", NHWC],
}


class OpCounter(TorchDispatchMode):
    """Counts every aten operation dispatched while active (after autograd: forward, backward and optimizer)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self.views = 0  # views and aliases (detach, view, t, ...): host work, but no kernel on a GPU

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = str(func.overloadpacket.__name__)
        if func.is_view:
            self.views += 1
        elif not name.startswith("_record_function"):  # the profiler's markers in optimizer.step
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        """Operations that would launch a kernel on a GPU (views and profiler markers left out)."""
        return sum(self.counts.values())


def build_stepper(overrides: list[str], root: Path) -> Any:
    """ganlab's TrainStep for a config, on the CPU (MNIST-format files written under `root` when the data needs
    them, so that nothing is downloaded)."""
    from hydra import compose, initialize_config_dir

    from ganlab.build import build, seed_everything
    from ganlab.config import CONF_DIR, CONFIG_NAME, register_schema
    from ganlab.divergence import NanWatch
    from ganlab.step import TrainStep

    register_schema()
    extra = ["trainer.device=cpu"]
    if any("mlp_mnist" in o for o in overrides):
        bench_baseline.make_mnist_files(root, n=256)
        extra += [f"data.root={root}", "data.download=false"]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[*overrides, *extra])
    seed_everything(cfg.seed)
    parts = build(cfg)
    return TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))


def count_step_ops(overrides: list[str], warmup: int = 3) -> OpCounter:
    """The aten ops of one G step (with its n_critic D steps) after `warmup` steps. Data files it has to write
    go to a temporary folder removed afterwards (every test run used to leave one behind in /tmp)."""
    with tempfile.TemporaryDirectory(prefix="ganlab-ops-") as root:
        stepper = build_stepper(overrides, Path(root))
        for step in range(1, warmup + 1):
            stepper(step)
        with OpCounter() as counter:
            stepper(warmup + 1)
    return counter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args(argv)
    unknown = [name for name in args.configs.split(",") if name not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.warmup < 0 or args.top < 1:
        parser.error("--warmup must be >= 0 and --top >= 1")
    torch.set_num_threads(1)
    print(f"# aten ops per G step (torch {torch.__version__}, CPU)\n")
    print("| configuration | kernel ops per G step | views | most frequent |")
    print("|---|---|---|---|")
    for name in args.configs.split(","):
        counter = count_step_ops(CONFIGS[name], args.warmup)
        top = ", ".join(f"{op} {n}" for op, n in counter.counts.most_common(args.top))
        print(f"| {name} | {counter.total} | {counter.views} | {top} |", flush=True)


if __name__ == "__main__":
    main()
