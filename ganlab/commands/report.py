"""`ganlab report <multirun dir | run dirs...> [out=<dir>] [metric=<name>]`: one row per run (overrides, steps,
status, final metrics), best first, as a table on the terminal and report.md, report.csv and report.png."""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ganlab.commands.options import parse_options
from ganlab.commands.output import check_writable, write_atomically
from ganlab.commands.schemas import ReportOptions
from ganlab.errors import ConfigError
from ganlab.evaluation import lower_is_better
from ganlab.runs import (
    Run,
    check_comparable,
    find_runs,
    jobs_without_folder,
    rank,
    read_runs,
    sort_metric,
    split_overrides,
)

FILES = ("report.md", "report.csv", "report.png")


@dataclass
class Report:
    runs: list[Run]  # best first
    metric: str | None
    common: list[str]  # overrides every run shares
    varying: dict[str, list[str]]  # run name -> the overrides that tell it apart
    columns: list[str]  # metric names: the ranking one first
    missing: list[str] = field(default_factory=list)  # a sweep's jobs that left no folder (runs.jobs_without_folder)


def main(args: list[str]) -> None:
    paths, opts = _split_args(args)
    if not paths:
        raise ConfigError(
            "ganlab report: give a multirun directory or run directories, e.g. "
            "ganlab report outputs/multirun/<date>/<time> [out=<dir>] [metric=<name>]."
        )
    runs = read_runs(find_runs(paths))
    metric = sort_metric(runs, opts.metric)
    check_comparable(runs, metric)
    out = Path(opts.out).expanduser() if opts.out else _default_out(paths)
    made = [] if out.exists() else [out, *(p for p in out.parents if not p.exists())]  # the folders this report adds
    check_writable(out / FILES[0])

    report = build_report(runs, metric)
    report.missing = [job for path in paths for job in jobs_without_folder(path)]
    # Everything is rendered before anything is written: a failure leaves the folder as it was.
    contents = {
        "report.md": markdown(report).encode(),
        "report.csv": csv_text(report).encode(),
        "report.png": picture(report),
    }
    try:
        for name, data in contents.items():
            write_atomically(out / name, lambda f, data=data: f.write(data))
    except ConfigError:  # a full disk: the folders made for this report go too, with any file written in them
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    print_table(report)
    print(f"wrote {', '.join(str(out / name) for name in FILES)}")


def _split_args(args: list[str]) -> tuple[list[Path], ReportOptions]:
    """Directories are plain arguments; `out=` and `metric=` are options, as for sample and eval. Only the option
    names count as options: a Hydra job directory may be named like `loss=hinge,optimizer.lr_d=1e-4`."""
    names = {f.name for f in fields(ReportOptions)}
    options = [a for a in args if a.split("=", 1)[0] in names and "=" in a]
    paths = [Path(a).expanduser() for a in args if a not in options]
    return paths, parse_options(ReportOptions, options, "report")


def _default_out(paths: list[Path]) -> Path:
    return paths[0] if len(paths) == 1 else Path(os.path.commonpath([p.resolve() for p in paths]))


def build_report(runs: list[Run], metric: str | None) -> Report:
    ordered = rank(runs, metric)
    common, varying = split_overrides(ordered)
    others = sorted({name for run in runs for name in run.curves} - {metric})
    return Report(ordered, metric, common, varying, ([metric] if metric else []) + others)


def _missing_text(report: Report) -> str:
    return (
        f"no folder for job{'s' if len(report.missing) > 1 else ''} {', '.join(report.missing)}: refused before "
        "starting (the sweep printed why), or not run yet"
    )


def _steps(run: Run) -> str:
    return f"{'?' if run.step is None else run.step}/{'?' if run.steps is None else run.steps}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _heading(report: Report) -> str:
    if report.metric is None:
        order = "in name order: no run logged a metric (evaluate with trainer.eval_every=N or trainer.monitor=...)"
    else:
        order = f"best first by {report.metric} ({'lower' if lower_is_better(report.metric) else 'higher'} is better)"
    return f"{len(report.runs)} runs, {order}."


def markdown(report: Report) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    header = ["#", "run", "status", "step", "overrides", *report.columns, "note"]
    lines = [
        "# ganlab report",
        "",
        _heading(report),
        "",
    ]
    if report.common:
        lines += [f"Every run: `{' '.join(report.common)}`.", ""]
    if report.missing:
        lines += [f"{_missing_text(report).capitalize()}.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, run in enumerate(report.runs, 1):
        row = [
            str(i),
            run.name,
            run.state,
            _steps(run),
            " ".join(report.varying[run.name]),
            *(_number(run.metrics.get(m)) for m in report.columns),
            run.note or "",
        ]
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    lines += ["", f"![{report.metric or 'runs'} of every run, and the best run's last samples](report.png)", ""]
    return "\n".join(lines)


def csv_text(report: Report) -> str:
    """Full precision, every override, one column per metric: for pandas or a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["rank", "run", "status", "step", "steps", "saved_step", "overrides", *report.columns, "note", "path"]
    )
    for i, run in enumerate(report.runs, 1):
        values = [run.metrics.get(m) for m in report.columns]
        writer.writerow(
            [
                i,
                run.name,
                run.state,
                run.step,
                run.steps,
                run.saved_step,
                " ".join(run.overrides),
                *("" if v is None else repr(v) for v in values),
                run.note or "",
                str(run.path),
            ]
        )
    return buffer.getvalue()


def picture(report: Report) -> bytes:
    """PNG: the ranking metric against the step for every run (dashed: not finished), and the best run's last
    sample grid."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg: no display needed, no pyplot state
    from matplotlib.figure import Figure
    from PIL import Image

    best = report.runs[0] if report.metric and report.metric in report.runs[0].metrics else None
    fig = Figure(figsize=(13, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    curves, grid = fig.subplots(1, 2, width_ratios=[3, 2])
    plotted = 0
    for run in report.runs:
        points = run.curves.get(report.metric or "", [])
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        label = f"{run.name}{' (best)' if run is best else ''}: {' '.join(report.varying[run.name])}"
        style = "-" if run.state == "finished" else "--"
        curves.plot(steps, values, style, marker="o", markersize=3, lw=2.5 if run is best else 1.2, label=label[:60])
        plotted += 1
    if plotted:
        curves.set(xlabel="step", ylabel=report.metric, title=f"metrics/{report.metric} (dashed: not finished)")
        curves.grid(alpha=0.3)
        curves.legend(fontsize=7, loc="best")
    else:
        curves.axis("off")
        curves.text(0.5, 0.5, _heading(report), ha="center", va="center", wrap=True)
    grid.axis("off")
    if best is not None and best.samples is not None:
        with Image.open(best.samples) as image:
            grid.imshow(image.convert("RGB"))
        value = best.metrics[report.metric]
        grid.set_title(f"best: {best.name}, {report.metric} {value:.4g}\n{best.samples.name}", fontsize=9)
    else:
        grid.text(0.5, 0.5, "no best run with samples", ha="center", va="center")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


TERMINAL_METRICS = 4  # metric columns on the terminal (the ranking one first); report.md and .csv have them all
OVERRIDE_WIDTH = 60  # the overrides column is at least as wide as the longest override, up to this


def print_table(report: Report, console: Any = None) -> None:
    """The report on the terminal, at least 120 columns wide: the overrides, which tell the runs apart, are never
    cut (the column is as wide as the longest override and wraps between them); metrics beyond the first few
    are left to report.md."""
    from rich.console import Console
    from rich.markup import escape  # names and overrides may hold brackets: augment.diffaugment=[color]
    from rich.table import Table

    shown = report.columns[:TERMINAL_METRICS]
    notes = [f"every run: {' '.join(report.common)}"] if report.common else []
    notes += [_missing_text(report)] if report.missing else []
    if len(report.columns) > len(shown):
        notes.append(f"{len(report.columns) - len(shown)} more metrics in report.md")
    table = Table(title=_heading(report), caption=escape("; ".join(notes)) if notes else None)
    for name in ["#", "run", "status", "step"]:
        table.add_column(name, justify="right" if name in ("#", "step") else "left")
    longest = max((len(o) for run in report.runs for o in report.varying[run.name]), default=len("overrides"))
    table.add_column("overrides", min_width=min(longest, OVERRIDE_WIDTH), overflow="fold")
    for name in shown:
        table.add_column(name, justify="right", style="bold" if name == report.metric else None)
    table.add_column("note", overflow="fold", ratio=1)
    colours = {"finished": "green", "running": "cyan", "crashed": "red", "diverged": "red", "interrupted": "yellow"}
    for i, run in enumerate(report.runs, 1):
        state = f"[{colours[run.state]}]{run.state}[/]" if run.state in colours else run.state
        table.add_row(
            str(i),
            escape(run.name),
            state,
            _steps(run),
            escape(" ".join(report.varying[run.name])),
            *(_number(run.metrics.get(m)) for m in shown),
            escape((run.note or "").split(". ")[0]),  # the first sentence; report.md has the whole note
        )
    (console or Console(width=max(120, Console().width))).print(table)
