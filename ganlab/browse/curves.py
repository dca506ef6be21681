"""A run's TensorBoard scalars as small inline SVG line charts: nothing to load, nothing to fetch."""

from __future__ import annotations

import html
import math

WIDTH, HEIGHT, MARGIN = 360, 180, 38
CHARTED = ("loss/", "metrics/", "D/")
MARKED_POINTS = 30  # the tags a page shows: losses, metrics, D's outputs


def charted(scalars: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    return {tag: points for tag, points in sorted(scalars.items()) if tag.startswith(CHARTED) and points}


def svg_chart(tag: str, points: list[tuple[int, float]]) -> str:
    """One chart: the curve over steps, its y range and last value labelled. Non-finite values are left out."""
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    title = html.escape(tag)
    if not finite:
        return f'<figure class="chart"><figcaption>{title}: no finite value</figcaption></figure>'
    steps, values = [s for s, _ in finite], [v for _, v in finite]
    s0, s1 = min(steps), max(steps)
    v0, v1 = min(values), max(values)
    if v0 == v1:
        v0, v1 = v0 - 0.5, v1 + 0.5
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def xy(step: int, value: float) -> str:
        x = MARGIN + (0.5 if s1 == s0 else (step - s0) / (s1 - s0)) * inner_w
        y = MARGIN + (1 - (value - v0) / (v1 - v0)) * inner_h
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(s, v) for s, v in finite)
    dots = "".join(  # a few points (evaluations) are marked: one alone would draw no line at all
        f'<circle cx="{xy(s, v).split(",")[0]}" cy="{xy(s, v).split(",")[1]}" r="2.5" fill="#c0392b"/>'
        for s, v in (finite if len(finite) <= MARKED_POINTS else [])
    )
    last = finite[-1]
    return (
        f'<figure class="chart"><svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{title}">'
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#ccc"/>'
        f'<polyline points="{line}" fill="none" stroke="#c0392b" stroke-width="1.5"/>{dots}'
        f'<text x="{MARGIN}" y="{MARGIN - 6}" font-size="11">{v1:.4g}</text>'
        f'<text x="{MARGIN}" y="{HEIGHT - MARGIN + 14}" font-size="11">{v0:.4g}</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 6}" font-size="11" text-anchor="end">step {s1}</text>'
        f'<text x="{MARGIN}" y="{HEIGHT - 6}" font-size="11">step {s0}</text>'
        f"</svg><figcaption>{title}: {last[1]:.4g} at step {last[0]}</figcaption></figure>"
    )
