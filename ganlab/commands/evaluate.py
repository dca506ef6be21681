"""`ganlab eval run=<run dir or checkpoint> [features=auto|inception|digits|mnist|fashion_mnist] [n=...]
[truncation=0.7] [generator=auto|G|G_ema]`"""

from __future__ import annotations

import json
from typing import Any

import ganlab
from ganlab.build import resolve_device
from ganlab.commands.options import check_count, check_seed, parse_options, split_data_overrides
from ganlab.commands.output import check_writable, output_file, write_atomically
from ganlab.commands.schemas import EvalOptions
from ganlab.evaluation import Evaluation, describe, lower_is_better, make_evaluator
from ganlab.runs import EVAL_FILE
from ganlab.trained_generator import Snapshot, load_snapshot
from ganlab.truncation import truncated


def main(args: list[str]) -> None:
    args, moved_data = split_data_overrides(args, "eval")
    opts = parse_options(EvalOptions, args, "eval")
    if opts.n is not None:
        check_count("n", opts.n)
    check_count("batch_size", opts.batch_size, high=1_000_000)
    check_seed(opts.seed)
    device = resolve_device(opts.device, option="device")
    snap = load_snapshot(opts.run, device, opts.generator)
    snap.relocate(moved_data)
    out = output_file(opts.out) if opts.out else snap.folder / EVAL_FILE
    check_writable(out)
    evaluator = make_evaluator(
        snap.data(device),
        snap.config["data"],
        opts.features,
        opts.n,
        device,
        opts.batch_size,
        num_classes=snap.num_classes,
        repeats=opts.repeats,
        post_hoc_steps=opts.post_hoc_steps,
    )
    result = evaluator(truncated(snap.G, opts.truncation, snap.model), snap.z_dim, seed=opts.seed)
    report = metrics_report(result, snap, opts.seed, opts.truncation)
    write_atomically(out, lambda f: f.write((json.dumps(report, indent=2) + "\n").encode()))
    print_table(result, snap, opts.truncation)
    figures = getattr(evaluator, "write_figures", None)  # sequences: the paper's PCA and t-SNE pictures
    for path in figures(out.with_suffix(""), opts.seed) if callable(figures) else []:
        print(f"wrote {path}")
    print(f"wrote {out}")


def metrics_report(result: Evaluation, snap: Snapshot, seed: int, truncation: float = 1.0) -> dict[str, Any]:
    return {
        "ganlab_version": ganlab.__version__,
        "checkpoint": str(snap.path),
        "step": snap.step,
        "generator": snap.generator,
        "seed": seed,
        "truncation": truncation,
        "metrics": [
            {
                "metric": name,
                "value": value,
                "n_samples": result.n_samples,
                "n_real": result.n_real,
                "features": result.features,
                "lower_is_better": lower_is_better(name),
            }
            for name, value in result.metrics.items()
        ],
    }


def print_table(result: Evaluation, snap: Snapshot, truncation: float = 1.0) -> None:
    from rich.console import Console
    from rich.table import Table

    source = f"features={result.features}, {result.n_real} real" if result.features else "2-D mode metrics"
    psi = f", truncation {truncation:g}" if truncation != 1 else ""
    title = f"{snap.path} - step {snap.step}, {snap.generator}{psi}, {result.n_samples} samples, {source}"
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("better", justify="center")
    table.add_column("what it is")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.6g}", "lower" if lower_is_better(name) else "higher", describe(name))
    Console(width=max(100, Console().width)).print(table)
