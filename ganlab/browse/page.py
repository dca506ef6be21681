"""A run's page: the sample grids over training with a step slider, the loss and metric curves, the final
metrics, the figures drawn from its checkpoint (ganlab/browse/figures.py) and its config. Pictures are referenced
by relative paths, so the page works wherever the run directory goes; the one script is inline."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import torch

from ganlab.browse.curves import charted, svg_chart
from ganlab.browse.figures import Figure, draw_figures
from ganlab.checkpoint import CHECKPOINT_DIR, LAST
from ganlab.runs import EVAL_FILE, merge_evaluation, metrics_of, read_evaluation, read_scalars
from ganlab.status import read_status
from ganlab.trained_generator import load_snapshot

STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 1100px; color: #222; }
img.pixels { image-rendering: pixelated; max-width: 100%; min-width: 200px; height: auto; border: 1px solid #ddd; }
.charts { display: flex; flex-wrap: wrap; gap: 0.5em; }
figure { margin: 0.5em 0; } figcaption { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def relative(path: Path, page: Path) -> str:
    return Path(os.path.relpath(path, page.parent)).as_posix()


def run_page(run_dir: Path, out: Path) -> str:
    """The page's HTML (drawing the checkpoint's figures into <run>/browse/ on the way)."""
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    figures: list[Figure] = []
    if (run_dir / CHECKPOINT_DIR / LAST).is_file():
        snap = load_snapshot(str(run_dir), torch.device("cpu"))
        figures = draw_figures(snap, run_dir)
    logged = read_scalars(run_dir)
    scalars = charted(logged)
    metrics = merge_evaluation(metrics_of(logged), read_evaluation(run_dir / EVAL_FILE))
    status = read_status(run_dir) or {}
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else "(no config.yaml)"
    parts = [
        f"<h1>{html.escape(run_dir.name)}</h1>",
        f"<p>{html.escape(str(run_dir.resolve()))}: {html.escape(str(status.get('state', 'no status.json')))}, "
        f"step {status.get('step', '?')} of {status.get('steps', '?')}</p>",
        _samples_section(grids, out),
        "<h2>Curves</h2>",
        '<div class="charts">' + "".join(svg_chart(tag, points) for tag, points in scalars.items()) + "</div>"
        if scalars
        else "<p>No scalars logged.</p>",
        _metrics_table(metrics),
        *(_figure(f, run_dir, out) for f in figures),
        "<h2>Config</h2>",
        f"<pre>{html.escape(config)}</pre>",
    ]
    return _document(f"ganlab: {run_dir.name}", parts)


def _samples_section(grids: list[Path], out: Path) -> str:
    if not grids:
        return "<h2>Samples</h2><p>No sample grids (samples/step_*.png).</p>"
    entries = [{"step": int(p.stem.split("_")[-1]), "src": relative(p, out)} for p in grids]
    last = entries[-1]
    return (
        "<h2>Samples over training</h2>"
        f'<p><input type="range" id="step" min="0" max="{len(entries) - 1}" value="{len(entries) - 1}" '
        f'aria-label="training step"> <span id="steplabel">step {last["step"]}</span></p>'
        f'<img id="grid" class="pixels" src="{html.escape(last["src"])}" data-step="{last["step"]}" '
        'alt="the fixed-noise sample grid">'
        "<script>\n"
        f"const grids = {json.dumps(entries)};\n"
        'const slider = document.getElementById("step"), grid = document.getElementById("grid");\n'
        'const label = document.getElementById("steplabel");\n'
        "function show(i) { grid.src = grids[i].src; grid.dataset.step = grids[i].step; "
        'label.textContent = "step " + grids[i].step; }\n'
        'slider.addEventListener("input", (e) => show(Number(e.target.value)));\n'
        "</script>"
    )


def _metrics_table(metrics: dict[str, list[tuple[int, float]]]) -> str:
    if not metrics:
        return "<h2>Metrics</h2><p>None measured: trainer.eval_every=N, or ganlab eval run=&lt;run&gt;.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{points[-1][1]:.5g}</td><td>{points[-1][0]}</td></tr>"
        for name, points in sorted(metrics.items())
        if points
    )
    return f"<h2>Metrics</h2><table><tr><th>metric</th><th>last value</th><th>at step</th></tr>{rows}</table>"


def _figure(figure: Figure, run_dir: Path, out: Path) -> str:
    heading = f"<h2>{html.escape(figure.title)}</h2>"
    if figure.path is None:
        return f"{heading}<p>{html.escape(figure.caption)}</p>"
    src = html.escape(relative(run_dir / figure.path, out))
    alt = html.escape(figure.title)
    caption = html.escape(figure.caption)
    return f'{heading}<figure><img class="pixels" src="{src}" alt="{alt}"><figcaption>{caption}</figcaption></figure>'


def _document(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
