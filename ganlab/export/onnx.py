"""`format=onnx` (the `ganlab[onnx]` extra: onnx, onnxscript, and onnxruntime for the check): G's forward
through torch's ONNX exporter, with a dynamic batch dimension. Inputs are named `z` (float32) and, for a
conditional G, `condition` (int64 class labels or a float32 tensor); the output is `samples`."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.export.forward import GeneratorForward, batch_dimensions, input_names
from ganlab.export.spec import GeneratorSpec

FILE = "generator.onnx"
NEEDS = ("onnx", "onnxscript", "onnxruntime")


def missing_packages() -> list[str]:
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def check_available() -> None:
    missing = missing_packages()
    if missing:
        raise ConfigError(
            f'format=onnx needs {", ".join(missing)}, which are not installed: pip install "ganlab[onnx]".'
        )


def check_deterministic(G: nn.Module, args: tuple[Tensor, ...], model: str) -> None:
    """ONNX runtimes draw random numbers with generators of their own: a G that draws randomness in eval mode
    could not be checked against torch's output, so it is refused before anything is written."""
    from ganlab.export.check import draws_randomness

    if draws_randomness(G, args):
        raise ConfigError(
            f"format=onnx: this generator ({model}) draws random numbers in eval mode (pix2pix's dropout, which "
            "stays on when sampling), and an ONNX runtime draws them with its own generator, so the file could not "
            "be checked against G's output. Export format=pt2, which draws with torch's seeded generator, or train "
            "with model.generator.dropout=0."
        )


def to_bytes(G: nn.Module, args: tuple[Tensor, ...]) -> bytes:
    program = torch.onnx.export(
        GeneratorForward(G).eval(),
        args,
        input_names=input_names(len(args) > 1),
        output_names=["samples"],
        dynamic_shapes=batch_dimensions(len(args)),
        dynamo=True,
        verbose=False,
    )
    return program.model_proto.SerializeToString()


def runner(folder: Path, spec: GeneratorSpec) -> Callable[..., Tensor]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / FILE), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*args: Tensor) -> Tensor:
        feeds = {name: arg.cpu().numpy() for name, arg in zip(names, args, strict=True)}
        return torch.from_numpy(session.run(None, feeds)[0])

    return run
