"""data=image_folder with non-square images (`data.crop`: center, pad, resize) and with images in other modes
than RGB and L (RGBA, LA, palette): converted to the requested channels, transparent pixels composited on black,
and one message per source that counts them, whether the folder is cached or streamed."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2

from ganlab.data import image_folder
from ganlab.data.image_folder import ImageFiles, ImageFolderData
from ganlab.data.square_images import native_uint8_resize
from ganlab.errors import ConfigError
from tests.conftest import exits_2

PURE = {"k": (0, 0, 0), "r": (255, 0, 0), "g": (0, 255, 0), "b": (0, 0, 255)}  # black, red, green, blue


def colour_names(square: Tensor) -> list[str]:
    """Each pixel of a (3, H, W) uint8 image as the letter of its nearest pure colour, one string per row."""
    palette = torch.tensor(list(PURE.values()), dtype=torch.float32)  # (4, 3)
    pixels = square.permute(1, 2, 0).float()  # (H, W, 3)
    nearest = (pixels[:, :, None, :] - palette).square().sum(-1).argmin(-1)
    letters = list(PURE)
    return ["".join(letters[i] for i in row) for row in nearest.tolist()]


def write_bands(path: Path, width: int, height: int) -> None:
    """Green in the left quarter, red in the middle half, blue in the right quarter."""
    pixels = np.zeros((height, width, 3), np.uint8)
    quarter = width // 4
    pixels[:, :quarter] = PURE["g"]
    pixels[:, quarter : width - quarter] = PURE["r"]
    pixels[:, width - quarter :] = PURE["b"]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def squares(root: Path, crop: str, size: int = 8, channels: int = 3, cache: bool = True) -> list[Tensor]:
    """Every image of the folder as the source makes it: uint8 (C, size, size), in file order."""
    data = ImageFolderData(str(root), image_size=size, channels=channels, num_workers=0, cache=cache, crop=crop)
    if cache:
        assert data.memory is not None
        return list(data.memory.images)
    return [data.dataset[i].add(1).mul(127.5).round().to(torch.uint8) for i in range(len(data))]  # type: ignore[union-attr]


@pytest.fixture
def wide(tmp_path: Path) -> Path:
    """One 40x20 image (green | red red | blue), twice as wide as high."""
    write_bands(tmp_path / "wide" / "bands.png", 40, 20)
    return tmp_path / "wide"


@pytest.mark.parametrize("cache", [True, False])
def test_center_keeps_the_middle_of_the_long_side(wide: Path, cache: bool) -> None:
    # 40x20 -> 16x8, whose middle 8 columns are the red half of the original
    assert colour_names(squares(wide, "center", cache=cache)[0]) == ["rrrrrrrr"] * 8


@pytest.mark.parametrize("cache", [True, False])
def test_pad_fits_the_long_side_and_pads_the_short_one_with_black(wide: Path, cache: bool) -> None:
    # 40x20 -> 8x4, padded with 2 black rows above and 2 below; every band keeps its share of the width
    square = squares(wide, "pad", cache=cache)[0]
    assert colour_names(square) == ["kkkkkkkk"] * 2 + ["ggrrrrbb"] * 4 + ["kkkkkkkk"] * 2
    assert (square[:, :2] == 0).all() and (square[:, 6:] == 0).all()  # exactly 0 ([0, 255]), -1 in [-1, 1]


def test_pad_of_an_odd_tall_image_puts_the_odd_column_right(tmp_path: Path) -> None:
    # 10x30 -> 3x8 (10 * 8 / 30 = 2.67, rounded): 5 columns of padding, 2 left and 3 right
    write_bands(tmp_path / "tall" / "bands.png", 10, 30)  # quarter = 2 columns: green 2, red 6, blue 2
    square = squares(tmp_path / "tall", "pad")[0]
    assert all(row[:2] == "kk" and row[3] == "r" and row[5:] == "kkk" for row in colour_names(square))
    assert (square[:, :, :2] == 0).all() and (square[:, :, 5:] == 0).all()
    assert (square[:, :, 2:5].amax(0) > 0).all()  # the image itself, 3 columns wide


@pytest.mark.parametrize("cache", [True, False])
def test_resize_stretches_to_the_square_keeping_every_band(wide: Path, cache: bool) -> None:
    # 40x20 -> 8x8: the green quarter -> 2 columns, the red half -> 4, the blue quarter -> 2
    assert colour_names(squares(wide, "resize", cache=cache)[0]) == ["ggrrrrbb"] * 8


def test_center_is_the_transform_it_always_was(tmp_path: Path, monkeypatch) -> None:
    # torchvision 0.23 and older resized uint8 through float32 on AVX-512 CPUs; ganlab makes today's choice
    monkeypatch.setattr(v2.functional._geometry, "_do_native_uint8_resize_on_cpu", lambda _: native_uint8_resize())
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, size=(23, 37, 3), dtype=np.uint8))
    before = v2.Compose([v2.PILToTensor(), v2.Resize(16, antialias=True), v2.CenterCrop(16)])
    assert torch.equal(ImageFiles([], 16, 3).crop(image), before(image))


def test_the_fingerprint_tells_the_crops_apart(wide: Path) -> None:
    prints = {
        crop: ImageFolderData(str(wide), image_size=8, num_workers=0, cache=False, crop=crop).fingerprint()
        for crop in ("center", "pad", "resize")
    }
    assert len(set(prints.values())) == 3


@pytest.mark.parametrize("crop", ["square", "Center", "", None, 1])
def test_a_wrong_crop_is_refused_naming_the_choices_before_decoding(
    wide: Path, crop: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was opened before data.crop was checked")

    monkeypatch.setattr(image_folder.Image, "open", no_decoding)
    with pytest.raises(ConfigError, match=r"data\.crop=.*center.*pad.*resize"):
        ImageFolderData(str(wide), image_size=8, num_workers=0, cache=True, crop=crop)  # type: ignore[arg-type]


def test_a_wrong_crop_exits_2_from_the_cli(wide: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "debug=fast", "data=image_folder", f"data.root={wide}", "data.crop=square"]
    err = exits_2([*argv, f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert "data.crop='square'" in err and all(choice in err for choice in ("center", "pad", "resize"))


# --- modes other than RGB and L ----------------------------------------------------------------------------------


def write_modes(root: Path) -> None:
    """4x4 images, sorted by name: RGB, L, two RGBA, LA, P with a transparent entry, P without. The transparent
    pixels hide white (what PIL's plain convert would show); the left half is opaque."""
    root.mkdir(parents=True)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = (255, 0, 0, 255)  # opaque red
    rgba[:, 2:] = (255, 255, 255, 0)  # transparent, hiding white
    rgba[0, 3] = (0, 255, 0, 128)  # half-transparent green: (0, 128, 0) on black
    la = np.zeros((4, 4, 2), np.uint8)
    la[:, :2] = (200, 255)
    la[:, 2:] = (255, 0)
    indices = np.zeros((4, 4), np.uint8)
    indices[:, 2:] = 1
    palette = [255, 0, 0, 255, 255, 255] + [0] * 762  # 0: red, 1: white
    Image.new("RGB", (4, 4), (0, 0, 255)).save(root / "a_rgb.png")
    Image.new("L", (4, 4), 100).save(root / "b_l.png")
    Image.fromarray(rgba, "RGBA").save(root / "c_rgba.png")
    Image.fromarray(rgba, "RGBA").save(root / "d_rgba.png")
    Image.fromarray(la, "LA").save(root / "e_la.png")
    for name, transparency in (("f_p_transparent.png", 1), ("g_p_opaque.png", None)):
        image = Image.fromarray(indices, "P")
        image.putpalette(palette)
        image.save(root / name, **({} if transparency is None else {"transparency": transparency}))


def conversion_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ganlab" and "were converted to" in r.getMessage()]


@pytest.mark.parametrize("cache", [True, False])
def test_other_modes_are_composited_on_black_and_counted_once(
    tmp_path: Path, cache: bool, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "modes"
    write_modes(root)
    with caplog.at_level(logging.INFO, logger="ganlab"):
        data = ImageFolderData(str(root), image_size=4, num_workers=0, cache=cache)
        data.sample(8)  # streaming: decodes 8 images here, in the main process (no workers)
        data.sample(8)
        list(data.reference_batches(7, 4))
        rgb = squares(root, "center", size=4, cache=cache)
    assert (
        conversion_messages(caplog)
        == [
            f"image_folder: 5 of 7 images in {root} were converted to RGB (P: 2, RGBA: 2, LA: 1); transparent pixels "
            "(in 4 of them) are composited on black"
        ]
        * 2
    )  # one per source: `data` and the one squares() built

    assert all(square.shape == (3, 4, 4) for square in rgb)
    plain_rgb, plain_l, rgba, _, la, p_transparent, p_opaque = rgb
    assert (plain_rgb == torch.tensor([0, 0, 255])[:, None, None]).all()
    assert (plain_l == 100).all()  # L -> RGB as PIL converts it
    expected_rgba = torch.zeros(3, 4, 4, dtype=torch.uint8)
    expected_rgba[0, :, :2] = 255
    expected_rgba[1, 0, 3] = 128
    assert torch.equal(rgba, expected_rgba)
    assert (la[:, :, :2] == 200).all() and (la[:, :, 2:] == 0).all()
    assert colour_names(p_transparent) == ["rrkk"] * 4
    assert (p_opaque[:, :, 2:] == 255).all()  # no transparent entry: white stays white


def test_other_modes_to_greyscale_have_one_channel(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "modes"
    write_modes(root)
    with caplog.at_level(logging.INFO, logger="ganlab"):
        grey = squares(root, "center", size=4, channels=1)
    assert all(square.shape == (1, 4, 4) for square in grey)
    rgba, la = grey[2], grey[4]
    assert (rgba[:, :, 2:].flatten().tolist()) == [0, 75] + [0] * 6  # green at half alpha: L of (0, 128, 0)
    assert (la[:, :, :2] == 200).all() and (la[:, :, 2:] == 0).all()
    assert len(conversion_messages(caplog)) == 1 and "converted to L (" in conversion_messages(caplog)[0]


def test_rgb_and_grey_folders_log_no_conversion(wide: Path, caplog: pytest.LogCaptureFixture) -> None:
    Image.new("L", (20, 10), 50).save(wide / "grey.png")
    with caplog.at_level(logging.INFO, logger="ganlab"):
        ImageFolderData(str(wide), image_size=8, num_workers=0, cache=True)
    assert conversion_messages(caplog) == []
