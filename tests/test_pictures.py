"""Sample pictures: the grid matches torchvision's make_grid (the reference), PNGs round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.utils import make_grid

from ganlab.pictures import image_grid, save_png, scatter


@pytest.mark.parametrize(("n", "channels"), [(2, 1), (7, 3), (16, 1), (10, 3)])  # make_grid returns n=1 unpadded
def test_image_grid_matches_torchvision(n: int, channels: int) -> None:
    images = torch.rand(n, channels, 5, 6) * 2 - 1
    ours = image_grid(images)
    reference = make_grid((images + 1) / 2, nrow=max(1, round(n**0.5)), padding=2)
    assert torch.allclose(ours, reference)


def test_png_round_trip(tmp_path: Path) -> None:
    picture = torch.rand(3, 900, 13)  # 600 px or more a side: written as it is
    save_png(picture, tmp_path / "p.png")
    back = torch.from_numpy(np.array(Image.open(tmp_path / "p.png"))).permute(2, 0, 1).float() / 255
    assert back.shape == (3, 900, 13) and (back - picture).abs().max() <= 0.5 / 255 + 1e-6


def test_small_pictures_are_enlarged_by_a_whole_factor_pixel_for_pixel(tmp_path: Path) -> None:
    picture = torch.rand(3, 146, 100)  # the default run's grid: 64 digits of 16 px
    save_png(picture, tmp_path / "p.png")
    back = torch.from_numpy(np.array(Image.open(tmp_path / "p.png"))).permute(2, 0, 1).float() / 255
    assert back.shape == (3, 4 * 146, 4 * 100)  # 600 // 146 = 4
    assert (back[:, ::4, ::4] - picture).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.equal(back[:, 1::4, 3::4], back[:, ::4, ::4])  # each pixel a 4 x 4 block


def test_scatter_places_points_by_coordinates() -> None:
    real = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])
    fake = torch.tensor([[0.0, 2.0]])  # top centre
    picture = scatter(fake, real, size=101, extent=2.6)
    red = (picture[0] > 0.8) & (picture[1] < 0.2)
    rows, cols = red.nonzero(as_tuple=True)
    assert cols.float().mean() == pytest.approx(50, abs=0.5)  # x = 0 -> middle column
    assert rows.float().mean() < 20  # y = +2 -> near the top
    grey = (picture[0] - 0.6).abs() < 1e-6
    assert grey[:, :50].any() and grey[:, 51:].any()  # one real point on each side
