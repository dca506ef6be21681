"""ADA's augmentation pipeline (ganlab/stabilizers/ada_pipeline.py): every expectation here is worked out by hand
(rotated, flipped, shifted and scaled images; colour transforms of chosen pixels; the shares of samples the paper's
probabilities give), never computed with the module itself."""

import math

import pytest
import torch

from ganlab.errors import ConfigError
from ganlab.stabilizers.ada_pipeline import (
    GROUPS,
    AugmentPipeline,
    apply_colour,
    apply_geometric,
    brightness_matrix,
    colour_matrices,
    contrast_matrix,
    geometric_matrices,
    hue_rotation_matrix,
    luma_flip_matrix,
    rotation_matrix,
    saturation_matrix,
    scaling_matrix,
    translation_matrix,
)

SHAPES = [(2, 3, 8, 8), (4, 1, 16, 12), (2, 3, 6, 10)]


def images(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) * 2 - 1


def batch_of(matrix: list[list[float]], batch: int) -> torch.Tensor:
    return torch.tensor(matrix).expand(batch, -1, -1)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 0.0) -> None:
    """torch.allclose with the largest difference in the message (torch.testing's first call costs half a second)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, atol=atol, rtol=rtol), (actual - expected).abs().max().item()


def one(value: float) -> torch.Tensor:
    return torch.tensor([value])


# --- p = 0 is the identity, bitwise -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("groups", [["blit"], ["geom"], ["color"], list(GROUPS)])
def test_p0_is_the_identity_bitwise(shape: tuple[int, ...], groups: list[str]) -> None:
    x = images(shape)
    assert torch.equal(AugmentPipeline(groups, 0.0, "cpu")(x), x)


# --- matrices ---------------------------------------------------------------------------------------------------


def test_elementary_matrices_by_hand() -> None:
    # Counter-clockwise as displayed (y down): the point right of the centre, (1, 0), goes above it, (0, -1).
    expected_rotation = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert_close(rotation_matrix(one(math.pi / 2))[0], expected_rotation, atol=1e-6, rtol=0)
    c, s = math.sqrt(3) / 2, 0.5  # pi/6
    expected_30 = torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    assert_close(rotation_matrix(one(math.pi / 6))[0], expected_30)
    assert torch.equal(scaling_matrix(one(2.0), one(0.5))[0], torch.diag(torch.tensor([2.0, 0.5, 1.0])))
    expected_shift = torch.tensor([[1.0, 0.0, 3.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])
    assert torch.equal(translation_matrix(one(3.0), one(-1.0))[0], expected_shift)


def test_composition_by_hand() -> None:
    # Rotate by 90 degrees, then move by (3, -1): (1, 0) -> (0, -1) -> (3, -2); (0, 1) -> (1, 0) -> (4, -1).
    composed = translation_matrix(one(3.0), one(-1.0))[0] @ rotation_matrix(one(math.pi / 2))[0]
    expected = torch.tensor([[0.0, 1.0, 3.0], [-1.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    assert_close(composed, expected, atol=1e-6, rtol=0)
    assert_close(composed @ torch.tensor([1.0, 0.0, 1.0]), torch.tensor([3.0, -2.0, 1.0]))
    assert_close(composed @ torch.tensor([0.0, 1.0, 1.0]), torch.tensor([4.0, -1.0, 1.0]))
    # Scale by (2, 0.5), then move: (1, 1) -> (2, 0.5) -> (5, -0.5).
    scaled = translation_matrix(one(3.0), one(-1.0))[0] @ scaling_matrix(one(2.0), one(0.5))[0]
    assert_close(scaled @ torch.tensor([1.0, 1.0, 1.0]), torch.tensor([5.0, -0.5, 1.0]))


# --- resampling -------------------------------------------------------------------------------------------------


def test_quarter_turn_is_rot90() -> None:
    x = images((2, 3, 8, 8))
    quarter = batch_of([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], 2)
    expected = torch.rot90(x, 1, dims=(-2, -1))  # counter-clockwise as displayed
    assert_close(apply_geometric(x, quarter), expected, atol=1e-5, rtol=0)
    assert_close(apply_geometric(x, rotation_matrix(torch.full((2,), math.pi / 2))), expected)


def test_quarter_turn_of_a_non_square_image_in_pixel_units() -> None:
    # 8 rows, 12 columns; f = x + 10 y in centred pixel coordinates. The forward map (x, y) -> (y, -x) makes the
    # output at (x, y) read the input at (-y, x): g = -y + 10 x, wherever that stays inside (the middle 8 columns).
    rows = torch.arange(8.0).view(8, 1) + 0.5 - 4
    cols = torch.arange(12.0).view(1, 12) + 0.5 - 6
    x = (cols + 10 * rows).expand(1, 1, 8, 12)
    quarter = batch_of([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], 1)
    expected = (-rows + 10 * cols).expand(1, 1, 8, 12)
    assert_close(apply_geometric(x, quarter)[..., 2:10], expected[..., 2:10], atol=1e-4, rtol=0)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (4, 1, 16, 12)])
def test_x_flip_and_whole_pixel_shifts(shape: tuple[int, ...]) -> None:
    x = images(shape)
    batch = shape[0]
    flip = batch_of([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], batch)
    assert_close(apply_geometric(x, flip), x.flip(-1), atol=1e-5, rtol=0)
    right = apply_geometric(x, translation_matrix(torch.ones(batch), torch.zeros(batch)))
    assert_close(right[..., 1:], x[..., :-1], atol=1e-5, rtol=0)  # column 0 is the reflected border
    down = apply_geometric(x, translation_matrix(torch.zeros(batch), torch.ones(batch)))
    assert_close(down[..., 1:, :], x[..., :-1, :], atol=1e-5, rtol=0)


def test_scaling_by_two_about_the_centre() -> None:
    # Row i, column j holds 10 i + j on 8 rows x 12 columns. Enlarging 2x about the centre, output pixel j reads
    # input column (j + 0.5 - 6) / 2 + 6 - 0.5 = j / 2 + 2.75 and row i / 2 + 1.75; bilinear is exact on a ramp.
    i = torch.arange(8.0).view(8, 1)
    j = torch.arange(12.0).view(1, 12)
    x = (10 * i + j).expand(1, 1, 8, 12)
    expected = (10 * (i / 2 + 1.75) + (j / 2 + 2.75)).expand(1, 1, 8, 12)
    out = apply_geometric(x, scaling_matrix(one(2.0), one(2.0)))
    assert_close(out, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_under_bfloat16_autocast_the_sampled_locations_are_not_rounded(dtype: torch.dtype) -> None:
    """trainer.precision=bf16 runs the pipeline under autocast, reals in float32 and G's fakes in bfloat16. The
    ramp j on 256 columns, enlarged 1.3x about the centre, is (j + 0.5 - 128) / 1.3 + 127.5 at column j: a grid
    made in bfloat16 (autocast's choice for affine_grid's bmm) missed it by up to 0.27."""
    j = torch.arange(256.0).view(1, 256)
    x = j.expand(1, 1, 4, 256).to(dtype)
    expected = ((j + 0.5 - 128) / 1.3 + 127.5).expand(1, 1, 4, 256)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = apply_geometric(x, scaling_matrix(one(1.3), one(1.3)))
    assert_close(out.float(), expected, atol=1e-3 if dtype == torch.float32 else 0.5)  # bf16 holds j to 0.5
    if dtype == torch.float32:
        return
    # the same bfloat16 images, sampled on the float32 grid: what the plain float32 pipeline gives them
    assert_close(out.float(), apply_geometric(x.float(), scaling_matrix(one(1.3), one(1.3))), atol=1e-4)


def test_colour_of_a_bfloat16_batch_is_computed_in_float32_and_rounded_once() -> None:
    x = images((2, 3, 8, 8)).to(torch.bfloat16)
    matrices = colour_matrices(2, torch.tensor(1.0), 3, x.device)
    out = apply_colour(x, matrices)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, apply_colour(x.float(), matrices).to(torch.bfloat16))


# --- colour -----------------------------------------------------------------------------------------------------


def test_brightness_and_contrast() -> None:
    x = images((2, 3, 4, 4))
    b, c = torch.tensor([0.3, -0.1]), torch.tensor([1.5, 0.25])
    view = (-1, 1, 1, 1)
    assert_close(apply_colour(x, brightness_matrix(b, 3)), x + b.view(view))
    assert_close(apply_colour(x, contrast_matrix(c, 3)), x * c.view(view))
    both = contrast_matrix(c, 3) @ brightness_matrix(b, 3)  # brightness first, then contrast
    assert_close(apply_colour(x, both), (x + b.view(view)) * c.view(view))


def test_luma_flip() -> None:
    grey = images((2, 1, 4, 4))
    assert_close(apply_colour(grey, luma_flip_matrix(torch.ones(2), 1)), -grey)
    pixels = torch.tensor([[0.4, 0.4, 0.4], [1.0, 0.0, 0.0]]).view(2, 3, 1, 1)  # a grey pixel, pure red
    # I - 2 v v^T with v = (1, 1, 1)/sqrt(3): grey -> its negation; red -> (1 - 2/3, -2/3, -2/3).
    expected = torch.tensor([[-0.4, -0.4, -0.4], [1 / 3, -2 / 3, -2 / 3]]).view(2, 3, 1, 1)
    assert_close(apply_colour(pixels, luma_flip_matrix(torch.ones(2), 3)), expected)
    assert torch.equal(apply_colour(pixels, luma_flip_matrix(torch.zeros(2), 3)), pixels)


def test_saturation_zero_makes_grey() -> None:
    x = images((2, 3, 4, 4))
    out = apply_colour(x, saturation_matrix(torch.zeros(2), 3))
    assert_close(out, x.mean(dim=1, keepdim=True).expand_as(x))
    grey = images((2, 1, 4, 4))
    assert torch.equal(apply_colour(grey, saturation_matrix(torch.zeros(2), 1)), grey)  # nothing to desaturate


def test_hue_rotation_by_a_third_turn_cycles_the_channels() -> None:
    x = images((2, 3, 4, 4))
    out = apply_colour(x, hue_rotation_matrix(torch.full((2,), 2 * math.pi / 3), 3))
    # Right-handed about (1, 1, 1): red -> green -> blue -> red, so new G = old R, new B = old G, new R = old B.
    assert_close(out, x[:, [2, 0, 1]], atol=1e-6, rtol=0)
    grey = images((2, 1, 4, 4))
    assert torch.equal(apply_colour(grey, hue_rotation_matrix(torch.full((2,), 1.0), 1)), grey)


# --- p = 1, p changed in place, gradients -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (4, 1, 16, 12)])
@pytest.mark.parametrize("group", ["geom", "color"])
def test_p1_changes_every_sample_and_p_is_a_live_tensor(shape: tuple[int, ...], group: str) -> None:
    torch.manual_seed(0)
    pipeline = AugmentPipeline([group], 1.0, "cpu")
    assert pipeline.p.dim() == 0 and pipeline.p.dtype == torch.float32
    x = images(shape)
    assert (pipeline(x) != x).flatten(1).any(1).all()
    pipeline.p.fill_(0.0)
    assert torch.equal(pipeline(x), x)


def test_gradients_reach_the_input() -> None:
    torch.manual_seed(0)
    x = images((2, 3, 8, 8)).requires_grad_()
    AugmentPipeline(GROUPS, 1.0, "cpu")(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and (x.grad != 0).any()


# --- how often, how much ----------------------------------------------------------------------------------------


def test_frequencies_follow_p() -> None:
    torch.manual_seed(0)
    n, p = 4000, torch.tensor(0.3)
    blit = geometric_matrices(n, p, 8, 8, ["blit"], "cpu")
    flipped = torch.linalg.det(blit[:, :2, :2]) < 0  # only the x-flip reverses orientation
    assert abs(flipped.float().mean().item() - 0.3) < 0.03
    # Five geometric steps: three with p and two rotations with 1 - sqrt(1 - p), so untouched with (1 - p)^4.
    geom = geometric_matrices(n, p, 8, 8, ["geom"], "cpu")
    moved = (geom != torch.eye(3)).flatten(1).any(1)
    assert abs(moved.float().mean().item() - (1 - 0.7**4)) < 0.03  # 0.76; p for the rotations would give 0.83
    # Colour: four steps with p, and the luma flip with p but i = 1 only half the time.
    x = images((n, 3, 2, 2))
    changed = (AugmentPipeline(["color"], 0.3, "cpu")(x) != x).flatten(1).any(1)
    assert abs(changed.float().mean().item() - (1 - 0.7**4 * 0.85)) < 0.03  # 0.80
    assert colour_matrices(n, torch.tensor(0.0), 3, "cpu").eq(torch.eye(4)).all()


def test_draws_follow_the_papers_distributions() -> None:
    torch.manual_seed(0)
    n = 4000
    geom = geometric_matrices(n, torch.tensor(1.0), 8, 8, ["geom"], "cpu")
    # Rotations and the anisotropic (s, 1/s) keep areas: det = s_iso^2, log s_iso ~ N(0, (0.2 ln 2)^2).
    log_scale = torch.linalg.det(geom[:, :2, :2]).log() / 2
    assert abs(log_scale.std().item() / (0.2 * math.log(2)) - 1) < 0.1
    assert abs(log_scale.mean().item()) < 0.01
    blit = geometric_matrices(n, torch.tensor(1.0), 16, 16, ["blit"], "cpu")
    shifts = blit[:, :2, 2]
    assert torch.equal(shifts, shifts.round()) and shifts.abs().max() == 2  # round(U(-0.125, 0.125) * 16)
    quarter_turns = blit[:, :2, :2]
    assert torch.equal(quarter_turns, quarter_turns.round())  # whole-pixel blits stay exact


# --- configuration ----------------------------------------------------------------------------------------------


def test_unknown_or_no_groups_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="blit, geom, color") as error:
        AugmentPipeline(["blit", "cutout"], 0.5, "cpu")
    assert "cutout" in str(error.value) and "augment.ada_groups" in str(error.value)
    with pytest.raises(ConfigError, match="blit, geom, color"):
        AugmentPipeline([], 0.5, "cpu")
    with pytest.raises(ConfigError, match="augment.ada_p"):
        AugmentPipeline(["blit"], 1.5, "cpu")
