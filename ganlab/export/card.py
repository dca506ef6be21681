"""README.md of an export folder: the model card. What G is, how it was trained (the command, the step, the
data's fingerprint, the ganlab version), what `ganlab eval` measured, and how to load each file."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ganlab.export.spec import GeneratorSpec
from ganlab.runs import EVAL_FILE, read_evaluation

FILE = "README.md"


def write_card(folder: Path, spec: GeneratorSpec, source: Any) -> str:
    """`source`: the Snapshot the export was made from (its path, folder, overrides and data fingerprint)."""
    (folder / FILE).write_text(card_text(spec, source))
    return FILE


def card_text(spec: GeneratorSpec, source: Any) -> str:
    command = "ganlab train " + " ".join(shlex.quote(o) for o in source.overrides) if source.overrides else None
    rows = [
        ("model", f"`model={spec.model}`"),
        ("data", f"`data={spec.data}`, fingerprint `{source.data_fingerprint or 'not recorded'}`"),
        ("trained with", f"`{command}`" if command else "the defaults (`ganlab train`)"),
        ("step", f"{spec.step:,}"),
        ("weights", f"{spec.weights}" + (" (the exponential moving average of G)" if spec.weights == "G_ema" else "")),
        ("sample shape", " × ".join(map(str, spec.sample_shape))),
        ("latent z", f"{spec.latent_size} standard-normal values"),
        ("condition", _condition_text(spec)),
        ("output range", range_text(spec)),
        ("exported by", f"ganlab {spec.ganlab_version} from `{source.path}`"),
    ]
    lines = [f"# A {spec.model} generator trained on {spec.data}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    lines += ["", "## Metrics", "", *_metrics_lines(Path(source.folder) / EVAL_FILE, spec.step)]
    lines += ["", "## Files", ""]
    lines += [f"- `{name}` (SHA-256 `{digest[:16]}…`)" for name, digest in sorted(spec.files.items())]
    lines += ["", "## Loading", "", *_usage_lines(spec)]
    return "\n".join(lines) + "\n"


def range_text(spec: GeneratorSpec) -> str:
    if spec.value_range is None:
        return "in the data's own coordinates (unbounded)"
    low, high = spec.value_range
    return f"in [{low:g}, {high:g}]"


def _condition_text(spec: GeneratorSpec) -> str:
    kind = spec.condition["kind"]
    if kind == "class":
        return f"a class label, 0 to {spec.num_classes - 1} (int64)"
    if kind == "tensor":
        shape = " × ".join(map(str, spec.condition["shape"]))
        return f"a tensor of {shape} per sample ({spec.condition.get('dtype', 'float32')}), as the data gives it"
    return "none"


def _metrics_lines(path: Path, step: int) -> list[str]:
    evaluation = read_evaluation(path)
    if evaluation is None:
        return ["None measured: `ganlab eval run=<run dir>` writes metrics.json, which a later export includes."]
    at, records = evaluation
    note = "" if at == step else f" (measured at step {at}, not the exported step {step})"
    lines = [f"From the run's metrics.json{note}:", "", "| metric | value |", "|---|---|"]
    return lines + [f"| {r['metric']} | {r['value']:.6g} |" for r in records]


def _usage_lines(spec: GeneratorSpec) -> list[str]:
    conditional = spec.condition["kind"] != "none"
    labels = ", labels=[0, 1, 2, 3]" if spec.condition["kind"] == "class" else ""
    lines = [
        "With ganlab installed:",
        "",
        "```python",
        "import ganlab",
        'G = ganlab.load_generator("<this folder>")',
        f"samples = G.sample(4, seed=0{labels})  # values {range_text(spec)}",
        "```",
    ]
    args = "z, condition" if conditional else "z"
    if "generator.pt2" in spec.files:
        lines += [
            "",
            "With torch alone (`generator.pt2`):",
            "",
            "```python",
            "import torch",
            'G = torch.export.load("generator.pt2").module()',
            f"z = torch.randn(4, {spec.latent_size})",
            f"samples = G({args})",
            "```",
        ]
    if "generator.onnx" in spec.files:
        feeds = '{"z": z}' if not conditional else '{"z": z, "condition": condition}'
        lines += [
            "",
            "With onnxruntime (`generator.onnx`):",
            "",
            "```python",
            "import numpy as np, onnxruntime",
            'session = onnxruntime.InferenceSession("generator.onnx")',
            f"z = np.random.randn(4, {spec.latent_size}).astype(np.float32)",
            f"samples = session.run(None, {feeds})[0]",
            "```",
        ]
    return lines
