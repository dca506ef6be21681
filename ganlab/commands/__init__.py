"""The subcommands besides `train` (which Hydra runs): `sample`, `eval` and `report`, with key=value options."""
