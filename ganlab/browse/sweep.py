"""A sweep's index page: its runs best first by the monitored metric (ganlab/runs.py, as `ganlab report` ranks
them), each linking to its own page."""

from __future__ import annotations

import html
from pathlib import Path

from ganlab.browse.page import _document, relative
from ganlab.errors import ConfigError
from ganlab.runs import Run, check_comparable, rank, sort_metric, split_overrides


def sweep_page(runs: list[Run], pages: dict[str, Path], out: Path) -> str:
    metric, note = sort_metric(runs, None), ""
    try:
        check_comparable(runs, metric)
    except ConfigError as err:  # shown unranked, with the reason
        metric, note = None, str(err).removeprefix("ganlab report: ")
    ordered = rank(runs, metric)
    common, varying = split_overrides(ordered)
    order = f"best first by {html.escape(metric)}" if metric else "in name order (no run logged a metric)"
    if note:
        order = f"in name order: {html.escape(note)}"
    rows = []
    for i, run in enumerate(ordered, 1):
        value = run.metrics.get(metric) if metric else None
        thumb = (
            f'<img class="pixels" src="{html.escape(relative(run.samples, out))}" width="96" alt="last samples">'
            if run.samples
            else ""
        )
        rows.append(
            f'<tr><td>{i}</td><td><a href="{html.escape(relative(pages[run.name], out))}">{html.escape(run.name)}</a>'
            f"</td><td>{html.escape(run.state)}</td><td>{run.step if run.step is not None else '?'}</td>"
            f"<td>{html.escape(' '.join(varying[run.name]))}</td><td>{'' if value is None else f'{value:.5g}'}</td>"
            f"<td>{thumb}</td></tr>"
        )
    columns = ["#", "run", "status", "step", "overrides", metric or "metric", "samples"]
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
    parts = [
        f"<h1>{html.escape(out.parent.name)}: {len(ordered)} runs</h1>",
        f"<p>{order}. Every run: <code>{html.escape(' '.join(common))}</code></p>" if common else f"<p>{order}.</p>",
        f"<table>{head}{''.join(rows)}</table>",
    ]
    return _document(f"ganlab sweep: {out.parent.name}", parts)
