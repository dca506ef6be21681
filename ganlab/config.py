"""Typed schema for the top-level knobs, registered in Hydra's ConfigStore.

The groups (model, loss, optimizer, data) stay free-form `_target_` nodes: each option carries its own
hyperparameters. The run knobs below are typed so that `trainer.steps=abc` fails at composition, and their
defaults live here only (conf/train.yaml takes them from this schema; a test holds the README's table to them).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from ganlab.errors import ConfigError, check_number, check_positive

# Configs live inside the package so that a plain (non-editable) install finds them.
CONF_DIR = Path(__file__).resolve().parent / "conf"
CONFIG_NAME = "train"
GROUPS = ("model", "loss", "optimizer", "data")
# Data keys that say where the data lives and how it arrives, not what it is: they may differ on resume, and
# `ganlab eval`/`sample` take them for a run whose data moved.
RELOCATABLE_DATA_KEYS = {"root", "download", "num_workers", "start_method", "cache"}


@dataclass
class GrowSchema:
    """Progressive growing (model=progan; ganlab/growth.py): the phases' lengths in images shown."""

    fade_images: int = 800_000  # a new resolution's block fades in over this many images (alpha 0 -> 1)
    stable_images: int = 800_000  # then trains at alpha 1 for this many (the 4x4 phase: this alone)


@dataclass
class HistoryBufferSchema:
    """SimGAN's history of refined images (ganlab/stabilizers/history_buffer.py)."""

    size: int = 0  # images kept (0: off; SimGAN: a buffer of earlier refined images)
    ratio: float = 0.5  # share of each D update's fake batch drawn from it


@dataclass
class TrainerSchema:
    steps: int = 2000
    batch_size: int = 64
    n_critic: int | None = None  # None: the loss's own default
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps | ${job_gpu:N} (a GPU per parallel job of a sweep)
    log_every: int = 50
    sample_every: int = 250
    checkpoint_every: int = 500
    keep_every: int | None = None  # also keep checkpoints/step_XXXXXXX.pt every this many steps
    keep_last: int | None = None  # also keep the newest k periodic checkpoints as step_XXXXXXX.pt
    on_nan: str = "stop"  # stop | rollback: what a diverged run does
    rollback_lr_factor: float = 0.5  # on_nan=rollback: both learning rates are multiplied by this
    max_rollbacks: int = 3  # on_nan=rollback: then stop
    num_samples: int = 64  # images in the fixed-noise grid (points for 2-D data: x16)
    eval_every: int | None = None  # evaluate every this many steps and at the end (None: no evaluation)
    eval_n: int | None = None  # samples per evaluation; None: 10000 for images, 2500 for 2-D data
    eval_features: str = "auto"  # as `ganlab eval features=`
    eval_repeats: int | None = None  # sequences: as `ganlab eval repeats=` (None: 5)
    eval_post_hoc_steps: int | None = None  # sequences: as `ganlab eval post_hoc_steps=` (None: 2000 and 5000)
    monitor: str | None = None  # metric for best.pt and the return value; None: fid_<extractor>, kl_all for 2-D
    # stabilisers (ganlab/stabilizers/)
    ema: float | None = None  # EMA decay of G's weights per G step, e.g. 0.999 (None: no EMA)
    ema_half_life: float | None = None  # or the EMA's half-life in images (StyleGAN: 10000); overrides ema
    ema_start: int = 0  # the EMA copies G until this step, then averages
    lr_schedule_g: str = "constant"  # constant | linear (to 0 at the last step) | cosine
    lr_schedule_d: str = "constant"
    n_critic_schedule: str = "constant"  # constant | wgan (bursts of critic_burst D steps, as WGAN's code)
    critic_burst: int = 100  # n_critic_schedule=wgan: D steps in a burst
    critic_burst_first: int = 25  # ... for each of the first this many G steps
    critic_burst_every: int = 500  # ... and for every this-many-th G step
    clip_grad_norm: float | None = None  # clip each network's gradient norm to this (None: no clipping)
    # speed (ganlab/speed.py, applied by build.py): what a step computes stays the same
    precision: str = "32"  # 32 | bf16 (autocast) | 16 (autocast + a GradScaler per network; CUDA)
    compile: bool = False  # torch.compile G and D
    channels_last: bool | None = None  # NHWC for the conv models; None: on CUDA only
    cuda_graphs: str = "auto"  # auto | true | false: capture the step's parts as CUDA graphs (ganlab/cuda_graphs.py)
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA)
    grow: GrowSchema = field(default_factory=GrowSchema)  # model=progan's schedule of resolutions
    # image-conditioned models: G alone on a pixel loss first (SRResNet pre-training), then the adversarial game
    pretrain_steps: int = 0  # G steps of pre-training, no D (0: none)
    pretrain_content: str = "mse"  # mse | l1: the pre-training's pixel loss to the paired target
    history_buffer: HistoryBufferSchema = field(default_factory=HistoryBufferSchema)  # SimGAN: D sees old fakes too


@dataclass
class AugmentSchema:
    """What D sees, perturbed alike for real and generated batches (ganlab/stabilizers/augment.py)."""

    diffaugment: list[str] = field(default_factory=list)  # any of color, translation, cutout (Zhao et al. 2020)
    instance_noise: float = 0.0  # std of Gaussian noise added to D's inputs (0: off)
    instance_noise_steps: int | None = None  # anneal the noise linearly to 0 over these G steps (None: constant)
    # ADA (Karras et al. 2020; ganlab/stabilizers/ada.py): blit/geom/color transformations, each with probability p
    ada: bool = False
    ada_groups: list[str] = field(default_factory=lambda: ["blit", "geom", "color"])  # the paper's bgc
    ada_p: float = 0.0  # p at the start (and throughout when ada_target is None)
    ada_target: float | None = 0.6  # r_t = E[sign(D(real))] that p is steered to (None: p stays at ada_p)
    ada_kimg: float = 500.0  # p can go from 0 to 1 in this many thousand real images
    ada_interval: int = 4  # D updates between adjustments of p


@dataclass
class TrainSchema:
    model: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    data: Any = MISSING
    trainer: TrainerSchema = field(default_factory=TrainerSchema)
    augment: AugmentSchema = field(default_factory=AugmentSchema)
    stabilizers: Any = field(default_factory=dict)  # name -> node of conf/stabilizers/ (stabilizers=[a,b])
    content: Any = None  # conf/content/<name>.yaml: G's content term (image-conditioned models)
    seed: int = 0
    resume: str | None = None
    init: str | None = None  # a trained run (dir or checkpoint) whose G, D, G_ema a new run starts from


def register_schema() -> None:
    from ganlab.jobs.launchers import register_resolvers

    ConfigStore.instance().store(name="train_schema", node=TrainSchema)
    register_resolvers()  # ${job_gpu:N} in trainer.device


def check_run_knobs(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be given ({missing[0]}=...): it has no default.")
    t = cfg.trainer
    for key in ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every", "num_samples"):
        if t[key] < 1:
            raise ConfigError(f"trainer.{key} must be >= 1, got {t[key]}.")
    if t.num_samples > 4096:
        raise ConfigError(f"trainer.num_samples must be at most 4096 (images in one picture), got {t.num_samples}.")
    if t.eval_n is not None and not 1 <= t.eval_n <= 10_000_000:
        raise ConfigError(f"trainer.eval_n must be between 1 and 10,000,000, got {t.eval_n}.")
    if t.eval_every is not None and t.eval_every < 1:
        raise ConfigError(f"trainer.eval_every must be >= 1 or null, got {t.eval_every}.")
    if t.keep_every is not None and t.keep_every < 1:
        raise ConfigError(f"trainer.keep_every must be >= 1 or null, got {t.keep_every}.")
    if t.keep_last is not None and t.keep_last < 1:
        raise ConfigError(f"trainer.keep_last must be >= 1 or null, got {t.keep_last}.")
    if t.on_nan not in ("stop", "rollback"):
        raise ConfigError(f"trainer.on_nan must be stop or rollback, got {t.on_nan!r}.")
    if not 0 < t.rollback_lr_factor <= 1:
        raise ConfigError(f"trainer.rollback_lr_factor must be in (0, 1], got {t.rollback_lr_factor}.")
    if t.max_rollbacks < 0:
        raise ConfigError(f"trainer.max_rollbacks must be >= 0, got {t.max_rollbacks}.")
    if t.n_critic is not None and t.n_critic < 1:
        raise ConfigError(f"trainer.n_critic must be >= 1 (D steps per G step), got {t.n_critic}.")
    if t.clip_grad_norm is not None and not t.clip_grad_norm > 0:
        raise ConfigError(f"trainer.clip_grad_norm must be > 0 or null, got {t.clip_grad_norm}.")
    if t.pretrain_steps < 0:
        raise ConfigError(f"trainer.pretrain_steps must be >= 0, got {t.pretrain_steps}.")
    if t.pretrain_content not in ("mse", "l1"):
        raise ConfigError(f"trainer.pretrain_content must be mse or l1, got {t.pretrain_content!r}.")
    if t.ema_start < 0:
        raise ConfigError(f"trainer.ema_start must be >= 0, got {t.ema_start}.")
    for key in ("lr_g", "lr_d"):
        if key in cfg.optimizer:
            check_number(f"optimizer.{key}", cfg.optimizer[key], 0, low_open=True)
    check_positive("model", z_dim=cfg.model.z_dim)
