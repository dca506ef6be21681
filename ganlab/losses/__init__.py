"""Adversarial losses: `loss=<name>` lives in `ganlab/losses/<name>.py`, a subclass of `base.AdversarialLoss`."""
