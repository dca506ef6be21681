"""data=rendered_digits: synthetic digits from matplotlib's fonts, the synthetic side of SimGAN. Their shape and
range, balanced labels, determinism by seed, variety, the knobs' checks, and that they carry the real digits'
content: a classifier trained on them recognises scikit-learn's handwritten digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.data.base import to_model_range
from ganlab.data.digits import load_digits_tensor
from ganlab.data.rendered_digits import FONT_FILES, RenderedDigitsData
from ganlab.errors import ConfigError
from ganlab.protocols import InMemoryImageSource, LabelledSource
from ganlab.targets import instantiate_node
from tests.conftest import compose_cfg


@pytest.mark.parametrize(("n", "size"), [(205, 8), (60, 32)])
def test_shape_range_and_balanced_labels(n: int, size: int) -> None:
    data = RenderedDigitsData(n=n, image_size=size)
    assert len(data) == n and data.shape == (1, size, size) and data.num_classes == 10
    assert data.images.dtype == torch.uint8 and data.labels.dtype == torch.int64
    counts = data.labels.bincount(minlength=10)
    assert counts.numel() == 10 and counts.max() - counts.min() <= 1  # 205: five digits 21 times, five 20
    x = to_model_range(data.images)
    assert x.min() == -1.0 and x.max() == 1.0  # black background, saturated strokes
    corners = x[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == -1).float().mean() > 0.95  # centred glyphs leave the corners black
    batch, labels = data.sample_labeled(8)
    assert batch.shape == (8, 1, size, size) and batch.dtype == torch.float32 and labels.dtype == torch.int64


def test_a_seed_gives_the_same_images_and_leaves_the_torch_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = RenderedDigitsData(n=100, seed=3), RenderedDigitsData(n=100, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.fingerprint() == b.fingerprint()
    c = RenderedDigitsData(n=100, seed=4)
    assert a.fingerprint() != c.fingerprint()
    assert (a.images.float() - c.images.float()).abs().mean() > 20  # not the same images in another order


def test_images_of_one_digit_differ() -> None:
    data = RenderedDigitsData(n=300, image_size=16)
    sevens = data.images[data.labels == 7].flatten(1).float() / 255
    assert torch.unique(sevens, dim=0).shape[0] == sevens.shape[0]
    distance = torch.cdist(sevens, sevens)
    off_diagonal = distance[~torch.eye(len(sevens), dtype=torch.bool)]
    assert off_diagonal.min() > 0.5 and off_diagonal.median() > 3  # font, size, slant, stroke and shift vary


def test_knobs_change_the_look() -> None:
    thin = RenderedDigitsData(n=100, stroke=[0.06, 0.06], fonts=["DejaVuSans"])
    thick = RenderedDigitsData(n=100, stroke=[0.25, 0.25], fonts=["DejaVuSans"])
    assert thick.images.float().mean() > 1.8 * thin.images.float().mean()
    small = RenderedDigitsData(n=100, height=[0.5, 0.5], stroke=[0.1, 0.1], jitter=0)
    rows = small.images[:, 0].amax(dim=2) > 128  # rows with ink
    assert not rows[:, :3].any() and not rows[:, -3:].any()  # half the frame's height, centred: 4 rows free each side


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"n": 9}, "data.n must be at least 10"),
        ({"n": 10.5}, "data.n must be an integer"),
        ({"image_size": 7}, "from 8 to 32"),
        ({"image_size": 33}, "from 8 to 32"),
        ({"seed": -1}, "data.seed"),
        ({"height": [0.9, 0.8]}, "data.height must be a .min, max. pair"),
        ({"height": [0.8, 1.2]}, "data.height"),
        ({"height": 0.9}, "data.height must be a .min, max. pair"),
        ({"width": [0.0, 1.0]}, "data.width"),
        ({"stroke": [0.0, 0.1]}, "data.stroke"),
        ({"stroke": [0.2, 0.45]}, "under half data.height's min"),
        ({"slant": [-2.0, 0.0]}, "data.slant"),
        ({"slant": ["a", "b"]}, "data.slant"),
        ({"jitter": -0.1}, "data.jitter"),
        ({"jitter": [0, 1]}, "data.jitter"),
        ({"fonts": ["Arial"]}, "data.fonts: \\['Arial'\\]"),
        ({"fonts": []}, "data.fonts"),
    ],
)
def test_bad_knobs_are_config_errors(knobs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RenderedDigitsData(**{"n": 20, **knobs})


def test_the_config_option_builds_a_labelled_in_memory_source() -> None:
    cfg = compose_cfg("data=rendered_digits", "data.n=30", "data.fonts=[cmr10,DejaVuSans-Bold]")
    assert cfg.data.image_size == 16 and cfg.data.stroke == [0.1, 0.2]
    data = instantiate_node(cfg.data, device="cpu")
    assert isinstance(data, LabelledSource) and isinstance(data, InMemoryImageSource)
    assert data.fonts == ("cmr10", "DejaVuSans-Bold") and set(data.fonts) <= set(FONT_FILES)


def test_a_classifier_trained_on_rendered_digits_reads_the_real_ones() -> None:
    """Nearest class mean on the 8x8 pixels: trained on 1000 rendered digits, tested on the 1797 real ones.
    Chance is 10%; about 60% is what these defaults give (the fonts' shapes are not handwriting: the gap a
    SimGAN refiner is there to close). Their ink covers about as much of the frame as the real digits' (0.31)."""
    rendered = RenderedDigitsData(n=1000, image_size=8)
    x, y = to_model_range(rendered.images).flatten(1), rendered.labels
    real_x, real_y = load_digits_tensor(8)
    centroids = torch.stack([x[y == digit].mean(0) for digit in range(10)])
    accuracy = (torch.cdist(real_x.flatten(1), centroids).argmin(1) == real_y).float().mean().item()
    assert accuracy > 0.3
    coverage = x.add(1).div(2).mean().item()
    assert 0.2 < coverage < 0.4


def test_a_conditional_gan_trains_on_rendered_digits(tmp_path: Path) -> None:
    """As any labelled image source: here a class-conditional DCGAN, a few steps."""
    from ganlab.checkpoint import load_checkpoint
    from ganlab.train import train

    train(compose_cfg("data=rendered_digits", "data.n=100", "model.conditional=true"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["num_classes"] == 10 and state["data_shape"] == [1, 16, 16]
