"""Config -> the run's ready components: data, networks, loss, optimizers, stabilisers, and the networks wrapped
as the step runs them (precision, torch.compile, channels_last, DDP, SyncBatchNorm: ganlab/speed.py).

Everything a user can get wrong is checked here, before the first step: run knobs (ganlab/config.py), the
targets a config may call (ganlab/targets.py), the loss's needs (no BatchNorm in D for WGAN-GP), the model
against the data's shape, and what the device can do.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ganlab.condition import Conditioning, conditioning_for
from ganlab.config import check_run_knobs
from ganlab.content.base import ContentTerm
from ganlab.data.selection import build_data
from ganlab.distributed import current, local_device
from ganlab.errors import ConfigError, check_number
from ganlab.growth import GrowthSchedule, growth_schedule
from ganlab.losses.base import AdversarialLoss
from ganlab.models.layers import has_batchnorm
from ganlab.protocols import DataSource
from ganlab.speed import Execution, prepare_execution
from ganlab.stabilizers.ada import AdaController, make_ada
from ganlab.stabilizers.augment import AugmentedDiscriminator
from ganlab.stabilizers.base import Stabilizer
from ganlab.stabilizers.critic_schedule import CriticSchedule
from ganlab.stabilizers.ema import EMA, ema_beta
from ganlab.stabilizers.history_buffer import HistoryBuffer, history_buffer
from ganlab.stabilizers.lr_schedule import LRSchedule
from ganlab.stabilizers.spectral_norm import apply_spectral_norm
from ganlab.targets import instantiate_node
from ganlab.transfer.freeze_d import freeze_blocks

log = logging.getLogger(__name__)


@dataclass
class Components:
    data: DataSource
    G: nn.Module
    D: nn.Module
    loss: AdversarialLoss
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    device: torch.device
    z_dim: int
    n_critic: int  # the constant D steps per G step (critic_schedule may raise it at times)
    num_classes: int | None  # the classes G and D are conditioned on (model.conditional=true), else None
    conditioning: Conditioning  # what G and D are given besides noise and samples (ganlab/condition.py)
    critic_schedule: CriticSchedule
    lr_g: LRSchedule
    lr_d: LRSchedule
    ema: EMA | None  # the averaged G, used for samples and evaluation when set
    D_view: AugmentedDiscriminator  # D as the losses see it: behind DiffAugment / instance noise, if any
    execution: Execution  # the networks as the step calls them: DDP, torch.compile, precision, channels_last
    stabilizers: dict[str, Stabilizer]  # the hook-based ones of cfg.stabilizers (ganlab/stabilizers/base.py)
    growth: GrowthSchedule | None = None  # model=progan: the phases of progressive growing (trainer.grow)
    content: ContentTerm | None = None  # G's content term (content=, ganlab/content/): image-conditioned models
    pretrain: ContentTerm | None = None  # G's pixel loss for its first trainer.pretrain_steps steps, without D
    pretrain_steps: int = 0
    history: HistoryBuffer | None = None  # trainer.history_buffer: D's fakes partly from G's earlier outputs
    ada: AdaController | None = None  # augment.ada: the adaptive augmentation's p and its controller

    @property
    def G_eval(self) -> nn.Module:
        """The generator that samples and evaluations use: the EMA's when there is one."""
        return self.ema.model if self.ema is not None else self.G


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str, option: str = "trainer.device") -> torch.device:
    """`auto` picks cuda > mps > cpu; an explicit device that is not there is a config error. `option` names
    the command-line key in messages. A CUDA device always comes back with its index (`cuda` and `auto` mean
    the current device, `cuda:<current>`): torch.cuda.set_device, the RNG state calls and the memory statistics
    refuse an unindexed one."""
    if name == "auto":
        if torch.cuda.is_available():
            return local_device(torch.device("cuda"))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"{option}={name!r} is not a device; use auto, cpu, cuda, cuda:N or mps.") from err
    if device.type not in ("cpu", "cuda", "mps"):  # meta, xla, ...: torch names them, ganlab cannot train there
        raise ConfigError(f"{option}={name!r}: ganlab runs on cpu, cuda or mps.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option}={name} but no CUDA device is available; use {option}=auto or cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{option}={name} but MPS is not available; use {option}=auto or cpu.")
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"{option}={device}: this process sees {count} GPU(s), cuda:0 to cuda:{count - 1} "
            "(CUDA_VISIBLE_DEVICES limits them)."
        )
    return local_device(device)  # the index: cuda:<current>, or this rank's GPU under torchrun


def optimizer_settings(group: Any, who: str) -> str:
    """The command-line keys that set `who`'s optimizer (optimizer.lr_g, optimizer.betas_g, the shared
    optimizer.weight_decay, ...), for messages about its values."""
    own, other = ("_g", "_d") if who == "generator" else ("_d", "_g")
    keys = [k for k in group if k not in ("generator", "discriminator") and not k.endswith(other)]
    return ", ".join(f"optimizer.{k}" for k in sorted(keys, key=lambda k: (not k.endswith(own), k)))


def _optimizer(node: Any, params: Any, who: str, device: torch.device, settings: str = "") -> torch.optim.Optimizer:
    factory = instantiate_node(node)
    params = list(params)
    # `optimizer.betas_g=[0,0.9]` reaches us with an int; torch's Adam refuses mixed int/float betas.
    numeric_tuples = {
        key: tuple(float(v) for v in value)
        for key, value in factory.keywords.items()
        if isinstance(value, list | tuple)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    }
    check_optimizer_values(factory.keywords | numeric_tuples, who, settings)
    try:
        opt = _fused(factory, params, numeric_tuples, device) or factory(params, **numeric_tuples)
    except (ValueError, TypeError) as err:  # torch's own checks: betas outside [0, 1), betas=0.5, ...
        raise ConfigError(f"optimizer ({who}): {err}{f' (set by {settings})' if settings else ''}.") from err
    return opt


# The ranges of torch's optimizer hyperparameters that a config sets (other numbers need only be finite);
# torch checks some of these itself, in messages that name neither the key nor the range.
OPTIMIZER_RANGES: dict[str, dict[str, Any]] = {
    "lr": {"low": 0, "low_open": True},
    "weight_decay": {"low": 0},
    "momentum": {"low": 0, "high": 1, "high_open": True},
    "dampening": {"low": 0, "high": 1},
    "alpha": {"low": 0, "high": 1, "meaning": " (the squared gradients' smoothing)"},
    "eps": {"low": 0, "low_open": True},
    "betas": {"low": 0, "high": 1, "high_open": True},
}


def check_optimizer_values(values: dict[str, Any], who: str, settings: str) -> None:
    """Each number the config gives `who`'s optimizer, named by the key that sets it: finite (lr=inf passes
    torch's lr >= 0), in its range (OPTIMIZER_RANGES), not a flag or text (weight_decay=true trained with 1.0),
    and betas a pair (Adam reads betas[1] and ignores a third)."""
    for key, value in values.items():
        if isinstance(value, bool) and key not in OPTIMIZER_RANGES:
            continue  # amsgrad, nesterov, foreach, fused, ...: flags
        setting = (k for k in settings.split(", ") if k.rpartition(".")[2].startswith(key))
        option = next(setting, f"optimizer.{who}.{key}")
        if key == "betas":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ConfigError(f"{option} must be a pair [beta1, beta2], got {value!r}.")
            for beta in value:
                check_number(option, beta, **OPTIMIZER_RANGES["betas"], meaning=f" for each beta (got {value!r})")
        elif isinstance(value, int | float | str | list | tuple) or value is None:
            check_number(option, value, **OPTIMIZER_RANGES.get(key, {}))


def _fused(
    factory: functools.partial, params: list[Any], kwargs: dict[str, Any], device: torch.device
) -> torch.optim.Optimizer | None:
    """The optimizer's fused implementation, where torch has one for this device (None otherwise).

    One pass over each parameter instead of one per arithmetic operation: Adam's update was a third of an MLP
    GAN's step on a CPU, and fused it runs 4x faster. Under trainer.precision=16 the GradScaler also hands a
    fused optimizer its inf check on the device instead of reading it back every step. `optimizer.*.fused=false`
    in a config keeps the plain one."""
    if device.type not in ("cuda", "cpu") or "fused" in factory.keywords or not _has_fused(factory.func):
        return None
    try:
        return factory(params, **kwargs, fused=True)
    except (RuntimeError, ValueError, TypeError):  # torch < 2.4 has no fused CPU kernels; other bad values
        return None  # are reported by the plain construction that follows


def _has_fused(optimizer_class: Any) -> bool:
    """Whether a torch optimizer takes `fused` (Adam, AdamW, SGD, ... in torch >= 2.x)."""
    try:
        return "fused" in inspect.signature(optimizer_class).parameters
    except (TypeError, ValueError):
        return False


def make_discriminator(node: DictConfig, in_shape: tuple[int, ...], **labels: Any) -> nn.Module:
    """D from its node, less `freeze` (FreezeD, which build applies: ganlab/transfer/freeze_d.py)."""
    resolved = OmegaConf.to_container(node, resolve=True)  # its interpolations (${loss.d_norm}) read the whole config
    own = OmegaConf.create({key: value for key, value in resolved.items() if key != "freeze"})
    return instantiate_node(own, "model.discriminator", in_shape=in_shape, **labels)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that learn: all but FreezeD's frozen blocks (D's optimizer holds these alone)."""
    return [param for param in model.parameters() if param.requires_grad]


def model_flag(cfg: DictConfig, key: str) -> bool:
    value = cfg.model.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"model.{key} must be true or false, got {value!r}.")
    return value


def latent_size(G: nn.Module, z_dim: int) -> int:
    """The length of one latent vector: `model.z_dim`, or the generator's own `latent_size` when it reads z_dim
    values at every step of a sequence (model=rnn)."""
    return int(getattr(G, "latent_size", z_dim))


def conditional_classes(cfg: DictConfig, data: DataSource) -> int | None:
    """The number of classes for `model.conditional=true` (the data must be labelled), else None."""
    if not model_flag(cfg, "conditional"):
        return None
    if not data.num_classes:
        if callable(getattr(data, "sample_pair", None)):
            advice = "its generator is conditioned on an image already; keep model.conditional=false"
        elif len(data.shape) == 2:
            advice = "for sequences use data=csv with data.label_column=<the column of each row's class>"
        else:
            advice = "use data=digits, mnist, fashion_mnist, cifar10, or an image_folder with one sub-folder per class"
        raise ConfigError(
            f"model.conditional=true needs labelled data, and {type(data).__name__} has no class labels: {advice}."
        )
    return int(data.num_classes)


def check_image_condition(G: nn.Module, data: DataSource, cfg: DictConfig) -> None:
    """An image-to-image G (model=srresnet, refiner, unet) needs data that hands it images (super_resolution,
    unpaired, paired_folder), and a noise-to-image G cannot use them."""
    from ganlab.targets import option_name

    model, source = option_name(cfg.model.generator._target_), option_name(cfg.data._target_)
    paired = callable(getattr(data, "sample_pair", None))
    if getattr(G, "takes_image", False) and not paired:
        raise ConfigError(
            f"model={model} maps an image to an image, and data={source} gives it none: use data=super_resolution "
            "(model=srresnet), data=unpaired (model=refiner) or data=paired_folder (model=unet)."
        )
    if paired and not getattr(G, "takes_image", False):
        raise ConfigError(
            f"data={source} gives G an image to map, and model={model} maps noise: use model=srresnet, refiner or unet."
        )


def sync_batchnorm(net: nn.Module, device: torch.device) -> nn.Module:
    """trainer.sync_bn: BatchNorm over the global batch when several processes train (a no-op for one)."""
    if not current().enabled:
        return net
    if device.type != "cuda":
        raise ConfigError(
            f"trainer.sync_bn=true needs CUDA: torch's SyncBatchNorm does not run on {device.type}. Use "
            "trainer.sync_bn=false (each process then normalises its own share of the batch)."
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)


def d_takes_sync_batchnorm(loss: AdversarialLoss, D: nn.Module) -> bool:
    """Whether trainer.sync_bn can convert D's BatchNorm. R1, R2 and the gradient penalty differentiate D twice,
    and SyncBatchNorm's backward has no derivative (pytorch/pytorch#61222: "derivative for
    batch_norm_backward_elemt is not implemented"): D then keeps per-process BatchNorm, which can."""
    if has_batchnorm(D) and loss.needs_input_gradients(regularize=True):
        if current().is_main and current().enabled:
            log.warning(
                "trainer.sync_bn: only G's BatchNorm is synchronised; D keeps per-process statistics because "
                "its penalty (R1, R2, gradient penalty) differentiates it twice, which SyncBatchNorm cannot."
            )
        return False
    return True


def build(cfg: DictConfig) -> Components:
    check_run_knobs(cfg)
    device = resolve_device(cfg.trainer.device)  # indexed; under torchrun, cuda is this rank's GPU
    if device.type == "cuda":
        torch.cuda.set_device(device)
    loss: AdversarialLoss = instantiate_node(cfg.loss, "loss")
    n_critic = cfg.trainer.n_critic if cfg.trainer.n_critic is not None else loss.n_critic  # both checked >= 1
    d_norm = cfg.model.discriminator.get("norm")
    if d_norm == "batch" and not loss.allows_batchnorm_in_d:
        raise ConfigError(
            f"{type(loss).__name__} penalises D per sample, which BatchNorm in D breaks (samples in a batch "
            "interact). Use model.discriminator.norm=layer or none (the loss's default d_norm is "
            f"{loss.d_norm})."
        )
    data: DataSource = build_data(cfg.data, device)  # with data.classes/limit/xflip (ganlab/data/selection.py)
    num_classes = conditional_classes(cfg, data)
    labels = {} if num_classes is None else {"num_classes": num_classes}
    G = instantiate_node(cfg.model.generator, "model.generator", out_shape=data.shape, **labels).to(device)
    check_image_condition(G, data, cfg)
    D = make_discriminator(cfg.model.discriminator, data.shape, **labels)
    if model_flag(cfg, "spectral_norm"):
        apply_spectral_norm(D)
    if cfg.trainer.sync_bn:
        G = sync_batchnorm(G, device)
        if d_takes_sync_batchnorm(loss, D):
            D = sync_batchnorm(D, device)
    D = D.to(device)
    freeze_blocks(D, cfg.model.discriminator.get("freeze") or 0)  # FreezeD: the first blocks keep their weights
    settings = {who: optimizer_settings(cfg.optimizer, who) for who in ("generator", "discriminator")}
    opt_g = _optimizer(cfg.optimizer.generator, G.parameters(), "generator", device, settings["generator"])
    opt_d = _optimizer(cfg.optimizer.discriminator, trainable(D), "discriminator", device, settings["discriminator"])
    t = cfg.trainer
    beta = ema_beta(t.ema, t.ema_half_life, t.batch_size)
    ema = EMA(G, beta, t.ema_start) if beta is not None else None
    ada = make_ada(cfg.augment, data.shape, t.batch_size, device)
    execution = prepare_execution(
        G,
        D,
        ema.model if ema is not None else None,
        (opt_g, opt_d),
        loss.needs_input_gradients(regularize=True),
        t,
        device,
        data.shape,
    )
    return Components(
        data=data,
        G=G,
        D=D,
        loss=loss,
        opt_g=opt_g,
        opt_d=opt_d,
        device=device,
        z_dim=latent_size(G, cfg.model.z_dim),
        n_critic=int(n_critic),
        num_classes=num_classes,
        conditioning=conditioning_for(data, num_classes),
        critic_schedule=CriticSchedule(
            t.n_critic_schedule, int(n_critic), t.critic_burst, t.critic_burst_first, t.critic_burst_every
        ),
        lr_g=LRSchedule(opt_g, t.lr_schedule_g, t.steps, "trainer.lr_schedule_g"),
        lr_d=LRSchedule(opt_d, t.lr_schedule_d, t.steps, "trainer.lr_schedule_d"),
        ema=ema,
        D_view=AugmentedDiscriminator(
            D,
            cfg.augment.diffaugment,
            cfg.augment.instance_noise,
            cfg.augment.instance_noise_steps,
            data.shape,
            ada.pipeline if ada is not None else None,
        ),
        execution=execution,
        stabilizers=build_stabilizers(cfg.get("stabilizers") or {}, data.shape, device, G, D),
        growth=growth_schedule(G, [D, ema.model if ema is not None else None], t.grow, t.batch_size, t.steps),
        content=content_term(cfg.get("content"), data),
        pretrain=pretrain_term(t, data),
        pretrain_steps=int(t.pretrain_steps),
        history=history_buffer(t.history_buffer, data.shape, device),
        ada=ada,
    )


def content_term(node: Any, data: DataSource) -> ContentTerm | None:
    """`content=<name>` (None for content=none), checked against what the data pairs G's output with."""
    if not node:
        return None
    term = instantiate_node(node, "content")
    if not isinstance(term, ContentTerm):
        raise ConfigError(f"content: {node.get('_target_')} is not a ganlab ContentTerm.")
    term.check(data, tuple(data.shape))
    return term


def pretrain_term(t: DictConfig, data: DataSource) -> ContentTerm | None:
    """trainer.pretrain_steps > 0: G first learns alone on a pixel loss to the paired target (SRResNet)."""
    if not t.pretrain_steps:
        return None
    from ganlab.content.l1 import L1Content
    from ganlab.content.mse import MSEContent

    term = MSEContent(1.0) if t.pretrain_content == "mse" else L1Content(1.0)
    if not callable(getattr(data, "sample_pair", None)):
        raise ConfigError(
            f"trainer.pretrain_steps={t.pretrain_steps}: pre-training fits G's output to a paired target, which "
            "needs image-conditioned data (data=super_resolution or paired_folder)."
        )
    if t.pretrain_steps >= t.steps:
        log.warning("trainer.pretrain_steps=%d >= trainer.steps=%d: D never trains", t.pretrain_steps, t.steps)
    return term


def build_stabilizers(
    nodes: Any, data_shape: tuple[int, ...], device: torch.device, G: nn.Module, D: nn.Module
) -> dict[str, Stabilizer]:
    """Every node under `stabilizers` (stabilizers=[name, ...] composes conf/stabilizers/<name>.yaml), checked
    against the data and the networks."""
    built: dict[str, Stabilizer] = {}
    for name, node in nodes.items():
        stabilizer = instantiate_node(node, f"stabilizers.{name}")
        if not isinstance(stabilizer, Stabilizer):
            raise ConfigError(f"stabilizers.{name}: {node.get('_target_')} is not a ganlab Stabilizer.")
        stabilizer.bind(tuple(data_shape), device)
        stabilizer.bind_networks(G, D)
        built[str(name)] = stabilizer
    return built
