"""Find what makes torch.compile + bfloat16 give non-finite losses on CUDA (issue 15: the gpu test
`test_steps_never_wait_for_the_device[trainer.compile=true, trainer.precision=bf16]` failed on an H200).

    python scripts/bisect_compile_bf16.py [--device cuda] [variant ...]

The CPU does not reproduce it (every variant below is finite there), so the suspects are CUDA-only: Inductor's
Triton-only "mix-order reduction" fusion (pytorch/pytorch#190796: NaN conv-bias gradients under bf16 autocast
within a few steps), Triton's bf16 BatchNorm (pytorch/pytorch#185637), channels_last (on by default on CUDA).
Each variant runs the test's configuration for 6 steps and prints each step's mean stats and the first stat,
parameter or gradient that is not finite, or the exception (an Inductor `assert_size_stride` AssertionError
would point at a layout bug instead of at arithmetic).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# name: (extra overrides, Inductor config patch, backend for G, backend for D)
VARIANTS: dict[str, tuple[list[str], dict[str, Any], str, str]] = {
    "base": ([], {}, "inductor", "inductor"),
    "no_channels_last": (["trainer.channels_last=false"], {}, "inductor", "inductor"),
    "no_mix_order": ([], {"triton.mix_order_reduction": False}, "inductor", "inductor"),
    "G_only_inductor": ([], {}, "inductor", "aot_eager"),
    "D_only_inductor": ([], {}, "aot_eager", "inductor"),
    "aot_eager_both": ([], {}, "aot_eager", "aot_eager"),
    "emulate_casts": ([], {"emulate_precision_casts": True}, "inductor", "inductor"),
}


def nonfinite(named: list[tuple[str, torch.Tensor | None]]) -> list[str]:
    return [name for name, t in named if t is not None and not bool(torch.isfinite(t).all())]


def run(device: str, name: str, steps: int = 6) -> str:
    import torch._dynamo
    import torch._inductor.config as inductor_config

    import ganlab.step as step_module
    from ganlab.build import build, seed_everything
    from ganlab.divergence import NanWatch
    from tests.conftest import compose_cfg

    extra, patch, backend_g, backend_d = VARIANTS[name]
    torch._dynamo.reset()
    plain_compile = torch.compile

    def compile_by_network(module: Any, **_: Any) -> Any:
        generator = type(getattr(module, "module", module)).__name__.endswith("Generator")
        return plain_compile(module, backend=backend_g if generator else backend_d)

    step_module.torch.compile = compile_by_network
    try:
        with inductor_config.patch(patch):
            cfg = compose_cfg(f"trainer.device={device}", "trainer.compile=true", "trainer.precision=bf16", *extra)
            seed_everything(0)
            parts = build(cfg)
            stepper = step_module.TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))
            start = time.time()
            for step in range(1, steps + 1):
                stepper(step)
                means = stepper.meter.means()
                stepper.meter.reset()
                tensors = [
                    (f"{label}.{pname}{'.grad' if grad else ''}", p.grad if grad else p)
                    for label, net in (("G", parts.G), ("D", parts.D))
                    for pname, p in net.named_parameters()
                    for grad in (False, True)
                ]
                bad = [k for k, v in means.items() if not math.isfinite(v)] + nonfinite(tensors)
                print(f"  {name} step {step}: { ({k: round(v, 4) for k, v in means.items()}) } bad={bad[:6]}")
                if bad:
                    return f"non-finite at step {step} ({time.time() - start:.0f} s)"
            return f"finite ({time.time() - start:.0f} s)"
    finally:
        step_module.torch.compile = plain_compile


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("variants", nargs="*", help=f"any of {', '.join(VARIANTS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    for name in args.variants or list(VARIANTS):
        try:
            outcome = run(args.device, name)
        except Exception as err:  # the exception is the finding
            outcome = f"{type(err).__name__}: {str(err)[:300]}"
        print(f"== {name}: {outcome}", flush=True)


if __name__ == "__main__":
    main()
