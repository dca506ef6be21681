"""Data sources: `data=<name>` lives in `ganlab/data/<name>.py`; the protocol is in `base.py`."""
