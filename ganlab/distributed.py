"""Several processes, one run: torch.distributed as `torchrun` sets it up (ganlab adds no launcher of its own).

`torchrun --nproc_per_node=N -m ganlab train ...` starts N copies of the command with RANK, LOCAL_RANK,
WORLD_SIZE and the rendezvous address in the environment. `init_from_env()` joins them into one process group
(NCCL for CUDA tensors, gloo for CPU ones) before Hydra composes anything, so that every rank can agree on the run
directory. build() wraps G and D in DistributedDataParallel (ganlab/speed.py); the decisions that
must be the same on every rank (stop on a signal, roll back after NaNs) go through `any_rank`.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ganlab.errors import ConfigError

# Ranks wait at the next collective while rank 0 evaluates (FID over 10k samples) or writes a checkpoint:
# the default timeouts (10 min on NCCL) are too short for a slow evaluation.
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, samples, evaluates and writes checkpoints; the others only train."""
        return self.rank == 0


_control_group: dist.ProcessGroup | None = None  # gloo: small host-side flags without a device sync


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env() -> Dist:
    """Join the process group that torchrun's environment describes (once); a single process gets Dist()."""
    global _control_group
    if not launched_by_torchrun():
        return Dist()
    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and dist.is_nccl_available()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if use_nccl and local_rank < torch.cuda.device_count():  # else build() says why (local_device)
            torch.cuda.set_device(local_rank)
        # Joined before the config is read, so each device type gets its backend: NCCL for CUDA tensors, gloo
        # for CPU ones (trainer.device=cpu on a GPU node, and the small host-side flags).
        dist.init_process_group("cpu:gloo,cuda:nccl" if use_nccl else "gloo", timeout=TIMEOUT)
        _control_group = dist.new_group(backend="gloo", timeout=TIMEOUT) if use_nccl else dist.group.WORLD
    return current()


def current() -> Dist:
    if not dist.is_available() or not dist.is_initialized():
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on at least one (a signal, a NaN): all ranks act alike."""
    if not current().enabled:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_control_group or dist.group.WORLD)
    return bool(value.item())


def broadcast_text(text: str) -> str:
    """Rank 0's `text` on every rank (the run's start time, which names its directory)."""
    if not current().enabled:
        return text
    box = [text]
    dist.broadcast_object_list(box, src=0, group=_control_group or dist.group.WORLD)
    return str(box[0])


def barrier() -> None:
    if current().enabled:
        dist.barrier(group=_control_group or dist.group.WORLD)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The seed of rank `rank`'s data and noise from step `step` on: every rank draws its own share of each
    batch, and a resumed run (with any number of ranks) draws fresh batches rather than rank 0's again."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % 2**63


def local_device(device: torch.device, where: Dist | None = None, gpus: int | None = None) -> torch.device:
    """The CUDA device this process trains on, always with its index (CUDA APIs refuse a bare `cuda`).

    One process: `cuda` means the current device. Under torchrun, `cuda` means this rank's own GPU,
    cuda:LOCAL_RANK: ranks sharing a GPU would deadlock NCCL, so a fixed index (every rank on `cuda:0`) or more
    ranks than GPUs is refused."""
    where = where or current()
    if device.type != "cuda":
        return device
    if not where.enabled:
        return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())
    rank = where.local_rank
    if device.index is not None and device.index != rank:
        raise ConfigError(
            f"trainer.device={device} under torchrun: each process trains on the GPU of its LOCAL_RANK "
            f"(this one cuda:{rank}). Use trainer.device=cuda (or auto)."
        )
    gpus = torch.cuda.device_count() if gpus is None else gpus
    if rank >= gpus:
        raise ConfigError(
            f"torchrun started a process with LOCAL_RANK={rank}, but only {gpus} GPU(s) are visible: start at "
            f"most {gpus} processes per node (--nproc_per_node={gpus})."
        )
    return torch.device("cuda", rank)


def per_rank_batch(batch_size: int) -> int:
    """trainer.batch_size is the global batch: each of the world's ranks draws an equal share."""
    world = current().world_size
    if batch_size % world:
        raise ConfigError(
            f"trainer.batch_size={batch_size} does not split over {world} processes: it is the global batch, "
            f"so make it a multiple of {world} (e.g. {max(world, batch_size // world * world)})."
        )
    return batch_size // world


def destroy() -> None:
    global _control_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _control_group = None
