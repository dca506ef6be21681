"""Benchmark: drawing training batches from one in-memory tensor (what ganlab does for sets that fit in
memory) versus a torch DataLoader over the same tensor (what most GAN code does), on this machine, in one run.

    python scripts/bench_data.py [--n 60000] [--size 32] [--batch 64] [--batches 300]

Prints batches/s for each way and the ratio to the in-memory sampler. The data is random uint8 images of
MNIST's size, so no download is needed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, TensorDataset

from ganlab.data.base import InMemoryImages, to_model_range


def rate(draw: Callable[[], torch.Tensor], batches: int) -> float:
    for _ in range(5):  # warm-up (worker start-up, caches)
        draw()
    start = time.perf_counter()
    for _ in range(batches):
        draw()
    return batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.n, 1, args.size, args.size), dtype=torch.uint8)
    device = torch.device(args.device)
    in_memory = InMemoryImages(images, None, None, device)
    results = {"in-memory tensor, sampled by index": rate(lambda: in_memory.sample(args.batch), args.batches)}

    for workers in (0, 2):
        loader = DataLoader(
            TensorDataset(images),
            batch_size=args.batch,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
        )
        iterator = iter(loader)

        def draw(loader: DataLoader = loader) -> torch.Tensor:
            nonlocal iterator
            try:
                (batch,) = next(iterator)
            except StopIteration:
                iterator = iter(loader)
                (batch,) = next(iterator)
            return to_model_range(batch.to(device, non_blocking=True))

        results[f"DataLoader, num_workers={workers}"] = rate(draw, args.batches)

    base = results["in-memory tensor, sampled by index"]
    print(
        f"{args.n} images of 1x{args.size}x{args.size}, batch {args.batch}, device {device}, "
        f"{torch.get_num_threads()} threads"
    )
    for name, value in results.items():
        print(f"  {name:<38} {value:10.0f} batches/s   {value / base:6.3f}x in-memory")


if __name__ == "__main__":
    main()
