"""The subcommands besides `train` (which Hydra runs): `sample` and `eval`, with typed key=value options."""
