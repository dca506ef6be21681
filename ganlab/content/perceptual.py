"""`content=perceptual`: the squared distance between G's output and its target in the feature space of a frozen
network: SRGAN's VGG loss (Ledig et al. 2017, eq. 5), which rewards matching textures and edges rather than
the per-pixel mean that MSE's blurry optimum is.

`content.network`:
- `vgg19`: ImageNet VGG19 through torchvision's weights, features after `content.layer` (relu5_4: the paper's
  VGG54; relu2_2: its VGG22), rescaled by 1/12.75 as the paper does. Greyscale images are repeated to RGB.
- `digits`: the digits classifier that ships with ganlab (ganlab/metrics/weights/digits.pt), its last
  convolutional features: the offline stand-in for grey digit-like data.
- `auto` (default): vgg19 when its weights are in torch's cache or can be downloaded, else the digits
  classifier for 1-channel images. A message says which is used.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.content.base import ContentTerm
from ganlab.errors import ConfigError

log = logging.getLogger("ganlab")

VGG_LAYERS = {"relu2_2": 9, "relu3_4": 18, "relu4_4": 27, "relu5_4": 36}  # torchvision vgg19().features[:i]
VGG_RESCALE = 1 / 12.75  # SRGAN, sec. 2.2.1: "a rescaling factor of 1/12.75 ... comparable in magnitude to MSE"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NETWORKS = ("auto", "vgg19", "digits")


VGG19_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def vgg19_features() -> nn.Sequential:
    """VGG19's convolutional part (Simonyan & Zisserman 2015, config E), laid out as torchvision's
    `vgg19().features` so that its checkpoint loads: written here because importing torchvision.models takes
    seconds, and its 120M-weight classifier is not needed."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """VGG19's convolutional features up to a layer, on images in [-1, 1] (normalised as ImageNet's)."""

    def __init__(self, state_dict: dict[str, Tensor], layer: str) -> None:
        super().__init__()
        features = vgg19_features()
        features.load_state_dict({k.removeprefix("features."): v for k, v in state_dict.items() if "features." in k})
        self.body = features[: VGG_LAYERS[layer]]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.body(((images + 1) / 2 - self.mean) / self.std) * VGG_RESCALE


class ClassifierFeatures(nn.Module):
    """The shipped digits classifier's last convolutional activations (before its final pooling), at the
    resolution it was trained at."""

    def __init__(self) -> None:
        from ganlab.metrics.classifier import load_classifier
        from ganlab.metrics.extractors import SHIPPED_WEIGHTS

        super().__init__()
        net, _ = load_classifier(SHIPPED_WEIGHTS / "digits.pt")
        self.resolution, self.channels = net.resolution, net.channels
        self.body = net.conv[:-2]  # the conv blocks without the last max-pool and the flatten

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = F.interpolate(images, size=(self.resolution, self.resolution), mode="bilinear", antialias=True)
        return self.body(images)


def vgg19_weights() -> dict[str, Tensor] | None:
    """ImageNet VGG19 weights from torch's cache, downloaded once if need be; None when they cannot be had."""
    from torchvision.models import VGG19_Weights

    try:
        return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as err:  # offline (URLError), a proxy, a truncated file: the caller decides what next
        log.info("content=perceptual: VGG19 weights unavailable (%s: %s)", type(err).__name__, err)
        return None


class PerceptualContent(ContentTerm):
    def __init__(self, weight: float = 1.0, network: str = "auto", layer: str = "relu5_4") -> None:
        super().__init__(weight)
        if network not in NETWORKS:
            raise ConfigError(f"content.network must be one of {', '.join(NETWORKS)}, got {network!r}.")
        if layer not in VGG_LAYERS:
            raise ConfigError(f"content.layer must be one of {', '.join(VGG_LAYERS)} (VGG19), got {layer!r}.")
        self.network, self.layer = network, layer
        self.features: nn.Module | None = None  # built in check(), once the data's channels and device are known

    def check(self, data: object, out_shape: tuple[int, ...]) -> None:
        super().check(data, out_shape)
        channels = out_shape[0]
        features, used = self._build(channels)
        device = data.sample_pair(1)[0].device
        self.features = features.to(device).eval().requires_grad_(False)
        self.used = used
        log.info("content=perceptual: features of %s", used)

    def _build(self, channels: int) -> tuple[nn.Module, str]:
        if self.network in ("auto", "vgg19"):
            weights = vgg19_weights()
            if weights is not None:
                return VGGFeatures(weights, self.layer), f"VGG19 ({self.layer})"
            if self.network == "vgg19":
                raise ConfigError(
                    "content.network=vgg19: torchvision's VGG19 weights are not in torch's cache and could not be "
                    "downloaded (offline?). Put vgg19-dcbb9e9d.pth in $TORCH_HOME/hub/checkpoints, or use "
                    "content.network=digits (grey images)."
                )
        if channels != 1:
            raise ConfigError(
                f"content=perceptual on {channels}-channel images needs VGG19 weights, which could not be had "
                "(offline?); the offline fallback, the digits classifier, reads grey images only."
            )
        if self.network == "auto":
            log.warning("content=perceptual: VGG19 weights unavailable offline; using the shipped digits classifier")
        return ClassifierFeatures(), "the shipped digits classifier (conv features)"

    def distance(self, output: Tensor, reference: Tensor) -> Tensor:
        if self.features is None:
            raise RuntimeError("PerceptualContent.check() builds the feature network before the first step")
        with torch.no_grad():
            target = self.features(reference.float())
        return (self.features(output.float()) - target).square().mean()
