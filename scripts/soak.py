"""Memory soak: run `ganlab train` for 10k steps on the CPU and watch its resident memory.

    python scripts/soak.py                 # 10 000 steps of a small DCGAN on digits, ~5 min on 2 cores
    python scripts/soak.py --steps 2000    # shorter

Logging, sample pictures, checkpoints and evaluation (with its cached real features) all run, so that growth
from any of them would show. Prints RSS against the training step and the growth after warm-up (the first
quarter of the steps, which includes the first evaluation: it loads the feature classifier and torch-fidelity
once), and exits 1 if that growth exceeds --max-growth-mb.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else None


def soak(steps: int, out_dir: Path) -> list[tuple[int, float]]:
    """(step, RSS in MB) at every logged step of a `steps`-long run."""
    exe = Path(sys.executable).with_name("ganlab")
    command = [
        str(exe), "train", "data=digits", "model.generator.width=16", "model.discriminator.width=16",
        "trainer.batch_size=32", f"trainer.steps={steps}", "trainer.log_every=100", "trainer.sample_every=500",
        "trainer.checkpoint_every=1000", f"trainer.eval_every={max(steps // 5, 1)}", "trainer.eval_n=1000",
        "trainer.device=cpu", f"hydra.run.dir={out_dir}",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[tuple[int, float]] = []
    peak = [0.0]

    def watch_peak() -> None:  # between log lines too: a spike during evaluation counts
        while proc.poll() is None:
            peak[0] = max(peak[0], rss_mb(proc.pid) or 0.0)
            time.sleep(0.2)

    threading.Thread(target=watch_peak, daemon=True).start()
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"step (\d+)/", line)
        if found and (mb := rss_mb(proc.pid)) is not None:
            samples.append((int(found.group(1)), mb))
    if proc.wait() != 0:
        raise SystemExit(f"ganlab train failed with exit code {proc.returncode}")
    print(f"peak RSS {peak[0]:.1f} MB")
    return samples


def growth_after_warmup(samples: list[tuple[int, float]], steps: int) -> tuple[float, float, float]:
    """(RSS at the end of warm-up, at the end, growth) in MB; warm-up is the first quarter of the steps."""
    after = [mb for step, mb in samples if step > steps // 4]
    return after[0], after[-1], after[-1] - after[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--max-growth-mb", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        samples = soak(args.steps, Path(tmp) / "run")
        elapsed = time.perf_counter() - start
    for step, mb in samples[:: max(1, len(samples) // 20)] + [samples[-1]]:
        print(f"step {step:>6}  RSS {mb:7.1f} MB")
    warm, end, growth = growth_after_warmup(samples, args.steps)
    print(f"{args.steps} steps in {elapsed:.0f} s: RSS {warm:.1f} MB after warm-up, {end:.1f} MB at the end, "
          f"growth {growth:+.1f} MB")  # fmt: skip
    if growth > args.max_growth_mb:
        raise SystemExit(f"resident memory grew by {growth:.1f} MB > {args.max_growth_mb} MB")


if __name__ == "__main__":
    main()
