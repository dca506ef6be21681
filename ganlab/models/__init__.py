"""Architectures: `model=<name>` lives in `ganlab/models/<name>.py` as <Name>Generator / <Name>Discriminator.

Both networks build themselves from the data's sample shape; D returns one logit per sample, shape (B,).
"""
