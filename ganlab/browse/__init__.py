"""`ganlab browse`: one static HTML page per run (and an index for a sweep), opened straight from disk: no server,
no network, no script from elsewhere.

page.py assembles a run's page, curves.py draws its TensorBoard scalars as inline SVG, figures.py draws what the
run's files do not already hold (an interpolation strip, one row per class, nearest real neighbours) into
<run>/browse/, and sweep.py writes the index of a sweep's runs.
"""
