"""The hyperparameters of StyleGAN2 scaled to the resolution, as stylegan2-ada's `--cfg=auto` scales them
(Karras et al. 2020b, "Training Generative Adversarial Networks with Limited Data", appendix D), for one process:

    batch          min(4096 / resolution, 32)      (64 px: 32, 256 px: 16)
    R1 gamma       0.0002 resolution^2 / batch     (64 px: 0.0256, 256 px: 0.8192)
    EMA half-life  batch x 10/32 thousand images   (32: 10k images)
    learning rate  0.0025 (0.002 from 1024 px)
    channel_base   16384 below 512 px, else 32768 (the paper's config F: 32768), channel_max 512
    mapping        2 layers; minibatch std groups of min(batch, 4)

experiment=stylegan2_folder reads them through the `${stylegan2_auto:<name>,<resolution>}` resolver, so that
`data.image_size=128` rescales them all, and any of them can still be overridden.
"""

from __future__ import annotations

from ganlab.errors import ConfigError

NAMES = ("batch", "gamma", "ema_images", "lr", "channel_base", "mapping_layers", "minibatch_std")


def auto_setting(name: str, resolution: int) -> float | int:
    """One `--cfg=auto` value for images of side `resolution`."""
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        raise ConfigError(f"experiment=stylegan2_folder: data.image_size must be a power of two >= 8: {resolution}.")
    batch = max(min(4096 // resolution, 32), 1)
    settings: dict[str, float | int] = {
        "batch": batch,
        "gamma": 0.0002 * resolution**2 / batch,
        "ema_images": batch * 10 / 32 * 1000,
        "lr": 0.002 if resolution >= 1024 else 0.0025,
        "channel_base": 32768 if resolution >= 512 else 16384,
        "mapping_layers": 2,
        "minibatch_std": min(batch, 4),
    }
    if name not in settings:
        raise ConfigError(f"stylegan2_auto: unknown setting {name!r}; one of {', '.join(NAMES)}.")
    return settings[name]
