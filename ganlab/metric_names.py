"""Metric names that say which feature space they were measured in.

An FID in the digits classifier's features and one in Inception's are different numbers, so every metric
computed from an extractor's features carries the extractor in its name: `fid_digits`, `kid_inception_std`,
`fid_digits_bicubic`. The evaluators compute the plain names (`fid`, `kid_std`) and rename them here; the
plain name of a feature metric (`trainer.monitor=fid`) means "in whichever extractor this run uses".
Torch-free, so that `ganlab report` can read names without importing torch.
"""

from __future__ import annotations

import re

FEATURE_STEMS = ("fid", "kid", "is", "precision", "recall")  # computed in an extractor's feature space
QUALIFIERS = ("std", "bicubic", "raw")  # what follows the extractor: kid_digits_std, fid_inception_bicubic
_PLAIN = re.compile(rf"^({'|'.join(FEATURE_STEMS)})(?:_({'|'.join(QUALIFIERS)}))?$")
_NAMED = re.compile(rf"^({'|'.join(FEATURE_STEMS)})_([a-z0-9_]+?)(?:_({'|'.join(QUALIFIERS)}))?$")


def with_extractor(metric: str, extractor: str | None) -> str:
    """`fid` -> `fid_digits`, `kid_std` -> `kid_digits_std`; names outside the feature space are left as they are."""
    match = _PLAIN.match(metric)
    if extractor is None or match is None:
        return metric
    stem, qualifier = match.groups()
    return f"{stem}_{extractor}" + (f"_{qualifier}" if qualifier else "")


def rename(metrics: dict[str, float], extractor: str | None) -> dict[str, float]:
    return {with_extractor(name, extractor): value for name, value in metrics.items()}


def split(metric: str) -> tuple[str, str | None]:
    """(plain name, extractor): `kid_digits_std` -> (`kid_std`, `digits`); `fid` -> (`fid`, None), as written
    by ganlab before the names carried the extractor; `modes` -> (`modes`, None)."""
    if _PLAIN.match(metric):
        return metric, None
    match = _NAMED.match(metric)
    if match is None:
        return metric, None
    stem, extractor, qualifier = match.groups()
    return stem + (f"_{qualifier}" if qualifier else ""), extractor


def resolve(requested: str, names: list[str]) -> str:
    """A monitored metric as the evaluator names it: `fid` -> `fid_digits` where the run measures in the digits
    classifier's features; a full name, or one the evaluator does not compute, comes back unchanged."""
    if requested in names or not _PLAIN.match(requested):
        return requested
    return next((name for name in names if split(name)[0] == requested), requested)
