"""Metrics: mode coverage for 2-D mixtures (`modes.py`), FID/KID/IS/precision-recall from features
(`fidelity.py`), the feature extractors (`extractors.py`) and the cached real side (`reference.py`).
`ganlab.evaluation` puts them together."""
