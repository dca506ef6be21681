"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data",
Appendix B), written from the paper: every transformation is applied to each image independently with
probability p, so that D sees augmented reals and fakes alike and G cannot learn the augmentations ("leak") while
p stays below about 0.8.

p is a 0-d float32 tensor on the device and is never read back to the host, and every draw comes from the global
torch RNG on the images' device in a fixed amount whatever p is: a captured CUDA graph or a compiled D sees a
new p without being rebuilt, and a resumed run sees the same draws.

Geometry: all the `blit` and `geom` transformations of a sample are composed into one 3x3 homogeneous matrix in
centred pixel coordinates (x to the right, y down, origin at the image centre, one unit per pixel; so rotations
stay right on non-square images), and the image is resampled once. A matrix is a FORWARD transform: the point q of
the input ends up at M q in the output. Colour: the `color` transformations are composed into one (C+1)x(C+1)
affine matrix acting on each pixel's channel vector, applied once. Samples for which nothing was chosen are
returned bitwise unchanged, so at p = 0 the pipeline is exactly the identity.

Matrices are composed with broadcasting rather than matmul, so that TF32 matmul (if enabled) never rounds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.errors import ConfigError
from ganlab.stabilizers.grid_sample_twice import grid_sample

GROUPS = ("blit", "geom", "color")

# The paper's distributions (Appendix B). "lognormal(0, s^2)" is exp of N(0, s^2).
INT_TRANSLATION_MAX = 0.125  # integer translation: U(-0.125, 0.125) of the image size, rounded to whole pixels
SCALE_STD = 0.2 * math.log(2)  # isotropic and anisotropic scaling: lognormal(0, (0.2 ln 2)^2)
ROTATION_MAX = math.pi  # pre- and post-rotation: U(-pi, pi), each with probability 1 - sqrt(1 - p)
FRAC_TRANSLATION_STD = 0.125  # fractional translation: N(0, 0.125^2) of the image size
BRIGHTNESS_STD = 0.2  # brightness: N(0, 0.2^2), added
CONTRAST_STD = 0.5 * math.log(2)  # contrast: lognormal(0, (0.5 ln 2)^2), multiplied
HUE_MAX = math.pi  # hue rotation: U(-pi, pi) about the luma axis
SATURATION_STD = math.log(2)  # saturation: lognormal(0, (ln 2)^2)


def _eye(batch: int, n: int, device: torch.device | str) -> Tensor:
    return torch.eye(n, device=device).expand(batch, n, n)


def _compose(outer: Tensor, inner: Tensor) -> Tensor:
    """outer @ inner for batches of small matrices: inner is applied first."""
    return (outer.unsqueeze(-1) * inner.unsqueeze(-3)).sum(-2)


def _affine(a: Tensor, b: Tensor, tx: Tensor, c: Tensor, d: Tensor, ty: Tensor) -> Tensor:
    """The homogeneous matrices [[a, b, tx], [c, d, ty], [0, 0, 1]], one per entry of the (B,) arguments."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=-1).view(-1, 3, 3)


def _choose(chosen: Tensor, matrices: Tensor) -> Tensor:
    """The transformation where it was chosen, an exact identity elsewhere."""
    n = matrices.shape[-1]
    return torch.where(chosen.view(-1, 1, 1), matrices, _eye(matrices.shape[0], n, matrices.device))


def translation_matrix(tx: Tensor, ty: Tensor) -> Tensor:
    """Move the content by tx pixels to the right and ty pixels down."""
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine(one, zero, tx, zero, one, ty)


def scaling_matrix(sx: Tensor, sy: Tensor) -> Tensor:
    """Scale the content about the image centre by sx horizontally and sy vertically (sx = -1: an x-flip)."""
    zero = torch.zeros_like(sx)
    return _affine(sx, zero, zero, zero, sy, zero)


def rotation_matrix(theta: Tensor) -> Tensor:
    """Rotate the content about the image centre by theta radians counter-clockwise AS DISPLAYED (y pointing down):
    for theta = pi/2 what was right of the centre moves above it, as torch.rot90(x, 1, dims=(-2, -1)) does."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _affine(cos, sin, torch.zeros_like(theta), -sin, cos, torch.zeros_like(theta))


def _lognormal(batch: int, std: float, device: torch.device | str) -> Tensor:
    return torch.exp(torch.randn(batch, device=device) * std)


def _uniform(batch: int, limit: float, device: torch.device | str) -> Tensor:
    return (torch.rand(batch, device=device) * 2 - 1) * limit


def geometric_matrices(
    batch: int, p: Tensor, height: int, width: int, groups: Sequence[str], device: torch.device | str
) -> Tensor:
    """(B, 3, 3) forward transforms in centred pixel coordinates for the chosen groups among `blit` and `geom`;
    exactly the identity where nothing was chosen. Each step is applied after the previous one (left-multiplied)."""

    def chosen(probability: Tensor) -> Tensor:
        return torch.rand(batch, device=device) < probability

    matrix = _eye(batch, 3, device)
    steps: list[tuple[Tensor, Tensor]] = []
    if "blit" in groups:
        ones = torch.ones(batch, device=device)
        steps.append((chosen(p), scaling_matrix(-ones, ones)))  # x-flip
        quarter = torch.randint(0, 4, (batch,), device=device) * (math.pi / 2)  # 90-degree rotations, exact entries
        cos, sin = torch.round(torch.cos(quarter)), torch.round(torch.sin(quarter))
        steps.append((chosen(p), _affine(cos, sin, torch.zeros_like(cos), -sin, cos, torch.zeros_like(cos))))
        tx = torch.round(_uniform(batch, INT_TRANSLATION_MAX, device) * width)
        ty = torch.round(_uniform(batch, INT_TRANSLATION_MAX, device) * height)
        steps.append((chosen(p), translation_matrix(tx, ty)))
    if "geom" in groups:
        p_rot = 1 - torch.sqrt((1 - p).clamp(min=0))  # so that at least one of the two rotations happens with p
        s = _lognormal(batch, SCALE_STD, device)
        steps.append((chosen(p), scaling_matrix(s, s)))  # isotropic
        steps.append((chosen(p_rot), rotation_matrix(_uniform(batch, ROTATION_MAX, device))))  # pre-rotation
        s = _lognormal(batch, SCALE_STD, device)
        steps.append((chosen(p), scaling_matrix(s, 1 / s)))  # anisotropic
        steps.append((chosen(p_rot), rotation_matrix(_uniform(batch, ROTATION_MAX, device))))  # post-rotation
        tx = torch.randn(batch, device=device) * (FRAC_TRANSLATION_STD * width)
        ty = torch.randn(batch, device=device) * (FRAC_TRANSLATION_STD * height)
        steps.append((chosen(p), translation_matrix(tx, ty)))
    for mask, step in steps:
        matrix = _compose(_choose(mask, step), matrix)
    return matrix


def _inverse_affine(m: Tensor) -> Tensor:
    """The inverse of affine 3x3 matrices (last row 0, 0, 1) in closed form: no solver that checks on the host."""
    a, b, tx, c, d, ty = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2], m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return _affine(ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty))


def apply_geometric(x: Tensor, matrices: Tensor) -> Tensor:
    """Resample each image once under its forward transform (bilinear, reflected at the border); a sample whose
    matrix is exactly the identity comes back bitwise unchanged."""
    batch, _, height, width = x.shape
    ones = torch.ones(batch, device=x.device)
    to_normalised = scaling_matrix(ones * (2 / width), ones * (2 / height))  # affine_grid's [-1, 1], corners out
    from_normalised = scaling_matrix(ones * (width / 2), ones * (height / 2))
    # affine_grid's theta maps each output location to the input location it samples: the inverse transform.
    theta = _compose(to_normalised, _compose(_inverse_affine(matrices.float()), from_normalised))
    # The grid in float32 whatever the precision: autocast would run affine_grid's bmm in bfloat16, moving the
    # sampled locations by up to 0.7 px at 256 px (and 4.7 px at 1024), for reals and fakes alike.
    with torch.autocast(x.device.type, enabled=False):
        grid = F.affine_grid(theta[:, :2], list(x.shape), align_corners=False)
    if not torch.is_autocast_enabled(x.device.type) and x.dtype != torch.float32:
        grid = grid.to(x.dtype)  # a half-precision batch outside autocast: grid_sample wants one dtype
    out = grid_sample(x, grid, padding_mode="reflection", align_corners=False)  # R1 differentiates it twice
    unchanged = (matrices == _eye(batch, 3, matrices.device)).flatten(1).all(1)
    return torch.where(unchanged.view(-1, 1, 1, 1), x, out)


def _homogeneous(linear: Tensor, offset: Tensor) -> Tensor:
    """(B, C, C) and (B, C) -> (B, C+1, C+1) acting on [colour; 1]."""
    batch, channels = offset.shape
    last = torch.cat(
        [torch.zeros(batch, 1, channels, device=offset.device), torch.ones(batch, 1, 1, device=offset.device)], -1
    )
    return torch.cat([torch.cat([linear, offset.unsqueeze(-1)], -1), last], -2)


def _luma_projection(channels: int, device: torch.device | str) -> Tensor:
    """v v^T for the luma axis v = ones(C) / sqrt(C): the projection onto the grey line."""
    return torch.full((channels, channels), 1 / channels, device=device)


def brightness_matrix(b: Tensor, channels: int) -> Tensor:
    """Add b to every channel."""
    eye = torch.eye(channels, device=b.device).expand(b.shape[0], channels, channels)
    return _homogeneous(eye, b.unsqueeze(-1).expand(-1, channels))


def contrast_matrix(c: Tensor, channels: int) -> Tensor:
    """Multiply every channel by c (about 0, the middle of [-1, 1])."""
    eye = torch.eye(channels, device=c.device)
    return _homogeneous(eye * c.view(-1, 1, 1), torch.zeros(c.shape[0], channels, device=c.device))


def luma_flip_matrix(flip: Tensor, channels: int) -> Tensor:
    """I - 2 v v^T where flip is 1 (a reflection through the plane orthogonal to the luma axis), I where it is 0."""
    eye, vvt = torch.eye(channels, device=flip.device), _luma_projection(channels, flip.device)
    linear = eye - 2 * vvt * flip.view(-1, 1, 1)
    return _homogeneous(linear, torch.zeros(flip.shape[0], channels, device=flip.device))


def hue_rotation_matrix(theta: Tensor, channels: int) -> Tensor:
    """Rotate RGB by theta about the luma axis (1, 1, 1)/sqrt(3), right-handed (Rodrigues): theta = 2pi/3 sends
    red to green, green to blue, blue to red. Only RGB has a hue: the identity for any other channel count."""
    batch = theta.shape[0]
    if channels != 3:
        return _eye(batch, channels + 1, theta.device)
    eye, vvt = torch.eye(3, device=theta.device), _luma_projection(3, theta.device)
    cross = (eye.roll(1, 0) - eye.roll(-1, 0)) / math.sqrt(3)  # [v]x: v x u == cross @ u, no host-made tensor
    cos, sin = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    linear = eye * cos + cross * sin + vvt * (1 - cos)
    return _homogeneous(linear, torch.zeros(batch, 3, device=theta.device))


def saturation_matrix(s: Tensor, channels: int) -> Tensor:
    """v v^T + (I - v v^T) s: keep the grey component, scale the rest by s (s = 0: grey; the identity if C == 1)."""
    eye, vvt = torch.eye(channels, device=s.device), _luma_projection(channels, s.device)
    linear = vvt + (eye - vvt) * s.view(-1, 1, 1)
    return _homogeneous(linear, torch.zeros(s.shape[0], channels, device=s.device))


def colour_matrices(batch: int, p: Tensor, channels: int, device: torch.device | str) -> Tensor:
    """(B, C+1, C+1): brightness, contrast, luma flip, hue rotation and saturation, each with probability p, in
    that order; exactly the identity where nothing was chosen."""

    def chosen() -> Tensor:
        return torch.rand(batch, device=device) < p

    flip = torch.randint(0, 2, (batch,), device=device).float()
    steps = [
        (chosen(), brightness_matrix(torch.randn(batch, device=device) * BRIGHTNESS_STD, channels)),
        (chosen(), contrast_matrix(_lognormal(batch, CONTRAST_STD, device), channels)),
        (chosen(), luma_flip_matrix(flip, channels)),
        (chosen(), hue_rotation_matrix(_uniform(batch, HUE_MAX, device), channels)),
        (chosen(), saturation_matrix(_lognormal(batch, SATURATION_STD, device), channels)),
    ]
    matrix = _eye(batch, channels + 1, device)
    for mask, step in steps:
        matrix = _compose(_choose(mask, step), matrix)
    return matrix


def apply_colour(x: Tensor, matrices: Tensor) -> Tensor:
    """Apply each sample's affine colour matrix to every pixel's channel vector; a sample whose matrix is exactly
    the identity comes back bitwise unchanged. A sum over input channels, not a matmul: no TF32 rounding."""
    batch, channels = x.shape[:2]
    linear, offset = matrices[:, :channels, :channels].float(), matrices[:, :channels, channels].float()
    pixels = x.float()  # a bfloat16 batch (G's output under autocast) is coloured in float32, then rounded once
    out = offset.view(batch, channels, 1, 1).expand_as(pixels)
    for k in range(channels):
        out = out + linear[:, :, k].view(batch, channels, 1, 1) * pixels[:, k : k + 1]
    out = out.to(x.dtype)
    unchanged = (matrices == _eye(batch, channels + 1, matrices.device)).flatten(1).all(1)
    return torch.where(unchanged.view(-1, 1, 1, 1), x, out)


class AugmentPipeline:
    """ADA's pipeline; p lives on the device (a 0-d float32 tensor), set by whoever adapts it."""

    def __init__(self, groups: Sequence[str], p: float, device: torch.device | str) -> None:
        groups = tuple(groups)
        unknown = [str(g) for g in groups if g not in GROUPS]
        if unknown:
            raise ConfigError(
                f"augment.ada_groups: {', '.join(unknown)} not known; choose from {', '.join(GROUPS)} "
                "(e.g. augment.ada_groups=[blit,geom,color])."
            )
        if not groups:
            raise ConfigError(f"augment.ada_groups is empty; choose one or more of {', '.join(GROUPS)}.")
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ConfigError(f"augment.ada_p must be a number in [0, 1], got {p!r}.")
        self.groups = groups
        self.p: Tensor = torch.tensor(float(p), dtype=torch.float32, device=device)

    def __call__(self, x: Tensor) -> Tensor:
        """Augment a batch (B, C, H, W): the geometric groups in one resampling, then the colour group."""
        batch, channels, height, width = x.shape
        geometric = [g for g in self.groups if g in ("blit", "geom")]
        if geometric:
            x = apply_geometric(x, geometric_matrices(batch, self.p, height, width, geometric, x.device))
        if "color" in self.groups:
            x = apply_colour(x, colour_matrices(batch, self.p, channels, x.device))
        return x
