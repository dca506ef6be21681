"""`model=refiner`: SimGAN's networks (Shrivastava et al. 2017, "Learning from Simulated and Unsupervised Images
through Adversarial Training", sec. 3 and 4.1). Data: `data=unpaired`, whose condition is a synthetic image and
whose real samples are unrelated real images of the same size.

G (the refiner, sec. 4.1): the synthetic image -> 3x3 conv (width) + ReLU -> `blocks` ResNet blocks (two 3x3
convs of `width` channels, fig. 6) -> 1x1 conv to C channels -> tanh. Every conv keeps the size, so the refined
image is pixel-aligned with the synthetic one, which the self-regularisation loss (sec. 2.1, an L1 between them)
relies on. G is image-to-image: it takes z and ignores it (SimGAN's refiner has no noise input).

D (sec. 2.2, 4.1): the local adversarial discriminator: conv 3x3 stride 2 (96) -> conv 3x3 stride 2 (64) ->
max-pool 3x3 stride 1 -> conv 3x3 (32) -> conv 1x1 (32) -> conv 1x1 to the output. The paper ends in two
channels and a softmax (real vs refined); one logit channel is the same classifier (the softmax of two logits is
the sigmoid of their difference), and the loss decides how to read it. D returns the logit map (B, h', w') with
h' = ceil(ceil(H / 2) / 2): each logit judges one local patch of 23x23 pixels (the receptive field of the stack
above), so that G cannot fool D with artefacts a global D would average away, and the loss averages over the
patches as the paper's sum of per-patch cross-entropies does. Channels scale with `width` (3w, 2w, w, w; the
paper's 96, 64, 32, 32 at width 32). The paper does not give D's padding or activation: convs are padded to keep
any image size >= 1 valid, and hidden layers use ReLU. D ignores the condition: it judges realism, not
faithfulness to the synthetic input.
Init: PyTorch's defaults (the paper does not specify one).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.errors import check_positive
from ganlab.models.layers import check_condition, conv_norm, image_dims, refuse_classes
from ganlab.normalization import check_norm


class ResNetBlock(nn.Module):
    """The refiner's block (fig. 6): conv 3x3 - ReLU - conv 3x3, plus the input, then ReLU (He et al. 2016)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, 1, 1)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.body(x))


class RefinerGenerator(nn.Module):
    """SimGAN's refiner: a synthetic image -> a refined image of the same shape `out_shape`, in [-1, 1]."""

    takes_image = True  # conditioned on an image (ganlab/condition.py's Paired data), not on noise alone

    def __init__(
        self,
        z_dim: int,
        out_shape: tuple[int, ...],
        width: int = 64,
        blocks: int = 4,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        refuse_classes(num_classes, "refiner", "the synthetic input", "model.generator")
        check_positive("model.generator", z_dim=z_dim, width=width, blocks=blocks)
        channels, height, side = image_dims(tuple(out_shape), "refiner", "the generator")
        self.z_dim, self.out_shape = z_dim, (channels, height, side)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1),
            nn.ReLU(inplace=True),
            *(ResNetBlock(width) for _ in range(blocks)),
            nn.Conv2d(width, channels, 1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """`z` is ignored (image-to-image); `condition` is the synthetic image, the same shape as the output."""
        check_condition(
            condition,
            self.out_shape,
            lambda: f"RefinerGenerator needs the synthetic image {self.out_shape} as its condition (data=unpaired)",
        )
        return self.net(condition)


class RefinerDiscriminator(nn.Module):
    """SimGAN's local adversarial D: a logit map (B, h', w'), one logit per 23x23 patch; the condition is ignored."""

    RECEPTIVE_FIELD = 23  # conv3 s2, conv3 s2, maxpool3 s1, conv3 s1, then 1x1 convs: 3 + 2*2 + 2*4 + 2*4

    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 32,
        norm: str = "none",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        refuse_classes(num_classes, "refiner", "the synthetic input", "model.discriminator")
        check_norm(norm, "model.discriminator.norm")
        check_positive("model.discriminator", width=width)
        channels, _, _ = image_dims(tuple(in_shape), "refiner", "the discriminator")
        self.norm = norm
        bias = norm == "none"  # a norm layer's shift makes a conv bias redundant
        self.net = nn.Sequential(
            nn.Conv2d(channels, 3 * width, 3, 2, 1),  # no norm on the input layer (DCGAN's rule)
            nn.ReLU(inplace=True),
            nn.Conv2d(3 * width, 2 * width, 3, 2, 1, bias=bias),
            conv_norm(norm, 2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 1, 1),
            nn.Conv2d(2 * width, width, 3, 1, 1, bias=bias),
            conv_norm(norm, width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 1, bias=bias),
            conv_norm(norm, width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """(B, ceil(H/4), ceil(W/4)) logits, one per local patch."""
        return self.net(x).squeeze(1)
