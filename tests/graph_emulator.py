"""A CPU stand-in for CUDA graphs, so that the rules a captured step must obey are tested without a GPU.

Capturing records every aten operation a part dispatches (forward, backward, optimizer) with the very tensors it
was given; replaying re-runs that list on the same tensors, writing each result into the tensor the capture
produced. That is what a CUDA graph does: Python does not run again, a Python number is frozen into the graph,
and only what lives in a tensor (a learning rate the host fills, a running sum) can change between replays.
Random numbers are drawn afresh at each replay, as from a graph-registered CUDA generator. An operation that
would make the host wait for the device (`.item()`, `bool(tensor)`, `nonzero`) fails the capture, as it does on
CUDA. Unlike CUDA, a capture here also runs the part once, so nothing is replayed right after it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

SYNCS = {"_local_scalar_dense", "is_nonzero", "equal", "nonzero", "masked_select", "unique_dim", "_unique2"}
# torch.tensor(data, device=...) and torch.as_tensor: data from host memory. On CUDA that is a copy from pageable
# memory, which waits for the device, so a capture fails on it (a StyleGAN2 filter built this way did); on the CPU
# it is nothing, which is why the emulator refuses it by name. torch's own capturable optimizers make CPU scalars
# on purpose (`torch.tensor(1.0, device="cpu")`, read as a kernel argument): only code outside torch is refused.
HOST_DATA = {"lift_fresh"}
TORCH_DIR = str(Path(torch.__file__).parent)


Layout = tuple[tuple[int, ...], tuple[int, ...], int]  # size, stride, storage offset


def layout(tensor: torch.Tensor) -> Layout:
    return tuple(tensor.shape), tensor.stride(), tensor.storage_offset()


class RecordedGraph:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple, dict, Any]] = []
        # In-place view ops (unsqueeze_, transpose_: torch 2.11's GroupNorm double backward uses them) reshape the
        # tensor object itself and launch no kernel, so a CUDA graph holds nothing of them, while the ops recorded
        # on that object see it as it was at their turn. A replay puts each such tensor back as it was before the
        # first of them, and sets the layout each of them left, in order.
        self.first_layouts: dict[int, tuple[torch.Tensor, Layout]] = {}
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1
        with torch.no_grad():
            for tensor, before in self.first_layouts.values():
                tensor.as_strided_(*before)
            for func, args, kwargs, recorded in self.calls:
                if torch.Tag.inplace_view in func.tags:
                    args[0].as_strided_(*recorded)  # the layout the op left
                    continue
                result = func(*args, **kwargs)
                if func.is_view:
                    continue  # a view of a tensor that was updated in place already
                for old, new in zip(tree_leaves(recorded), tree_leaves(result), strict=True):
                    if isinstance(old, torch.Tensor) and old is not new:
                        old.copy_(new)


def made_by_torch() -> bool:
    """Whether the Python code that asked for the tensor being dispatched is torch's own: the innermost frame
    outside this file and torch's dispatch and compile wrappers."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        wrapper = name.startswith(TORCH_DIR) and any(
            part in name for part in ("/utils/_python_dispatch", "/_compile.py", "/_dynamo/")
        )
        if name != __file__ and not wrapper:
            return name.startswith(TORCH_DIR)
        frame = frame.f_back
    return False


class Recorder(TorchDispatchMode):
    def __init__(self, graph: RecordedGraph) -> None:
        super().__init__()
        self.graph = graph

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func.overloadpacket.__name__ in SYNCS:
            raise RuntimeError(f"host-device sync during capture: aten.{func.overloadpacket.__name__}")
        if func.overloadpacket.__name__ in HOST_DATA and not made_by_torch():
            raise RuntimeError(
                f"host data copied in during capture: aten.{func.overloadpacket.__name__} (torch.tensor or as_tensor)"
            )
        if torch.Tag.inplace_view in func.tags:
            tensor = args[0]
            self.graph.first_layouts.setdefault(id(tensor), (tensor, layout(tensor)))
            out = func(*args, **kwargs)
            self.graph.calls.append((func, args, kwargs, layout(tensor)))
            return out
        out = func(*args, **kwargs)
        self.graph.calls.append((func, args, kwargs, out))
        return out


class EmulatedBackend:
    """GraphedParts' backend on the CPU: RecordedGraph in place of torch.cuda.CUDAGraph."""

    def __init__(self) -> None:
        self.graphs: list[RecordedGraph] = []

    def new_graph(self) -> RecordedGraph:
        graph = RecordedGraph()
        self.graphs.append(graph)
        return graph

    @contextlib.contextmanager
    def capture(self, graph: RecordedGraph) -> Iterator[None]:
        with Recorder(graph):
            yield

    def after_capture(self, graph: RecordedGraph) -> None:
        """The recording ran the part already."""

    def warm_up(self, part: Callable[..., None], *args: Any) -> None:
        part(*args)
