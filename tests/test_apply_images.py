"""`ganlab sample run= input= out=`: a trained image-conditioned G applied to the user's images
(ganlab/apply_images.py). One tiny SRResNet is trained for a step; the refiner and the noise model are
checkpoints made by hand from its state (their weights untrained: only shapes and routing are tested)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.apply_images import receptive_radius, tile_spans, upscale_tiled
from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main as ganlab_main
from ganlab.models.mlp import MLPGenerator
from ganlab.models.refiner import RefinerGenerator
from ganlab.trained_generator import load_snapshot
from tests.conftest import compose_cfg, exits_2, write_png_folder

SR_OVERRIDES = (
    "model=srresnet",
    "data=super_resolution",
    "data.image_size=16",
    "data.scale=4",
    "model.generator.blocks=1",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "model.discriminator.hidden=16",
    "trainer.steps=1",
)


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ganlab.train import train

    run = tmp_path_factory.mktemp("sr_run")
    with pytest.MonkeyPatch.context() as mp:  # the autouse cache fixture is per test; this runs before it
        mp.setenv("GANLAB_CACHE", str(run.parent / "cache"))
        mp.setenv("TORCH_HOME", str(run.parent / "torch"))
        train(compose_cfg(*SR_OVERRIDES), run)
    return run


def handmade(sr_run: Path, path: Path, generator: dict, G: torch.nn.Module, shape: tuple[int, ...]) -> Path:
    """A checkpoint of the SR run's format holding another generator (untrained) and data of `shape`."""
    state = load_checkpoint(sr_run / "checkpoints" / "last.pt")
    state["config"]["model"]["generator"] = generator
    state["config"]["model"]["z_dim"] = generator["z_dim"]
    state["config"]["data"] = {"_target_": "ganlab.data.digits.DigitsData", "image_size": shape[-1]}
    state.update(data_shape=list(shape), G=G.state_dict(), G_ema=None)
    torch.save(state, path)
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img).astype(np.int16)


def test_upscales_a_folder_keeping_names(sr_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    write_png_folder(photos, n=4, size=(40, 30))  # a/img1.png, a/img3.png, b/nested/img0.png, b/nested/img2.png
    Image.fromarray(np.full((9, 11, 3), 200, np.uint8)).save(photos / "top.jpg")
    Image.fromarray(np.full((5, 7), 90, np.uint8)).save(photos / "a" / "grey.bmp")
    out = tmp_path / "up"
    ganlab_main(["sample", f"run={sr_run}", f"input={photos}", f"out={out}"])
    assert "wrote 6 images upscaled" in capsys.readouterr().out
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a/grey.png", "a/img1.png", "a/img3.png", "b/nested/img0.png", "b/nested/img2.png", "top.jpg"]
    with Image.open(out / "b" / "nested" / "img0.png") as img:
        assert img.size == (160, 120) and img.mode == "L"  # 4x, and G's one channel
    with Image.open(out / "top.jpg") as img:
        assert img.size == (44, 36) and img.format == "JPEG"
    with Image.open(out / "a" / "grey.png") as img:
        assert img.size == (28, 20) and img.format == "PNG"

    # the same folder in tiles of 24 low-res pixels: the same pictures (up to a rounding flip of the 8-bit value)
    tiled = tmp_path / "tiled"
    ganlab_main(["sample", f"run={sr_run}", f"input={photos}", f"out={tiled}", "tile=24"])
    assert "went in tiles of 24 overlapping by 2 x 10" in capsys.readouterr().out
    for name in written:
        assert np.abs(pixels(out / name) - pixels(tiled / name)).max() <= 1, name


def test_tiled_equals_untiled_when_the_overlap_covers_the_receptive_field(sr_run: Path) -> None:
    """The overlap defaults to G's receptive radius (10 low-res pixels for one residual block: 4 for the 9x9
    head, 2 for the block, 1 for the body's last conv, 3 for the sub-pixel tail and the 9x9 output conv). With it
    no kept pixel sees a tile's zero padding, so tiling changes nothing anywhere, seams and image borders
    included; with no overlap, or one pixel too little, the seams differ, and only there."""
    G = load_snapshot(str(sr_run), torch.device("cpu")).G
    radius = receptive_radius(G)
    assert radius == 10
    image = torch.rand(1, 70, 53, generator=torch.Generator().manual_seed(0)) * 2 - 1  # no multiple of anything
    whole = upscale_tiled(G, image, tile=128, overlap=0, z_dim=1)  # one tile: G on the whole image
    assert whole.shape == (1, 280, 212)

    tile = 30
    tiled = upscale_tiled(G, image, tile=tile, overlap=radius, z_dim=1)
    assert len(tile_spans(70, tile, radius)) == 5 and len(tile_spans(53, tile, radius)) == 4
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)

    # no overlap: seams at the tile edges, whose neighbourhoods (radius low-res pixels) differ; far from them
    # every tile still sees what the whole image shows it, so the outputs agree there
    seamed = upscale_tiled(G, image, tile=tile, overlap=0, z_dim=1)
    diff = (seamed - whole).abs()[0]
    assert diff.max() > 1e-3
    near = torch.zeros_like(diff, dtype=torch.bool)
    for axis, size in ((0, 70), (1, 53)):
        for _, start, _ in tile_spans(size, tile, 0)[1:]:  # the seams, in low-res pixels
            band = slice(4 * (start - radius), 4 * (start + radius))
            if axis == 0:
                near[band, :] = True
            else:
                near[:, band] = True
    assert diff[~near].max() < 1e-5
    assert diff[near].max() > 1e-3

    short = upscale_tiled(G, image, tile=tile, overlap=radius - 1, z_dim=1)  # the radius is the least that works
    assert (short - whole).abs().max() > 1e-4


def test_tile_spans_cover_each_pixel_once() -> None:
    for size, tile, overlap in [(70, 30, 10), (53, 30, 0), (31, 30, 14), (100, 7, 1), (12, 30, 10)]:
        spans = tile_spans(size, tile, overlap)
        assert spans[0][1] == 0 and spans[-1][2] == size
        for (start, keep_from, keep_to), following in zip(spans, [*spans[1:], None], strict=True):
            assert start <= keep_from < keep_to <= start + min(tile, size)
            assert keep_from == 0 or keep_from >= start + overlap  # kept parts stay clear of inner tile edges
            assert keep_to == size or keep_to <= start + tile - overlap
            assert following is None or following[1] == keep_to  # the kept parts abut


def test_refiner_resizes_to_its_trained_size(sr_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = {"_target_": "ganlab.models.refiner.RefinerGenerator", "z_dim": 1, "width": 4, "blocks": 1}
    G = RefinerGenerator(1, (3, 16, 16), width=4, blocks=1)
    ckpt = handmade(sr_run, tmp_path / "refiner.pt", node, G, (3, 16, 16))
    Image.fromarray(np.full((30, 40), 128, np.uint8)).save(tmp_path / "synthetic.gif")  # grey into an RGB G
    out = tmp_path / "refined"
    ganlab_main(["sample", f"run={ckpt}", f"input={tmp_path / 'synthetic.gif'}", f"out={out}"])
    printed = capsys.readouterr().out
    assert "resizing inputs to 16x16" in printed and "(40x30)" in printed and "1 resized to 16x16" in printed
    with Image.open(out / "synthetic.png") as img:
        assert img.size == (16, 16) and img.mode == "RGB"
    exits_2(["sample", f"run={ckpt}", f"input={tmp_path / 'synthetic.gif'}", f"out={out}", "tile=32"], capsys)


def test_refusals(sr_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    write_png_folder(photos, n=2, size=(8, 8))
    run, out = f"run={sr_run}", f"out={tmp_path / 'out'}"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    (tmp_path / "a_file.png").write_bytes(b"not a picture")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a picture")
    cases = {
        "out=<folder>": [run, f"input={photos}"],
        "input= is empty": [run, "input=", out],
        "is a file": [run, f"input={photos}", f"out={tmp_path / 'a_file.png'}"],
        "no such image file or folder": [run, f"input={tmp_path / 'missing'}", out],
        "holds no images": [run, f"input={tmp_path / 'empty'}", out],
        "bad/broken.png (not an image format PIL can identify)": [run, f"input={tmp_path / 'bad'}", out],
        "would overwrite the input image": [run, f"input={photos}", f"out={photos}"],
        "n= draws from noise": [run, f"input={photos}", out, "n=16"],
        "give input= too": [run, "tile=32"],
        "larger than 2 x overlap": [run, f"input={photos}", out, "tile=20", "overlap=10"],
        "overlap=-1": [run, f"input={photos}", out, "overlap=-1"],
    }
    for expected, argv in cases.items():
        assert expected in exits_2(["sample", *argv], capsys), expected

    assert not (tmp_path / "out").exists()

    node = {"_target_": "ganlab.models.mlp.MLPGenerator", "z_dim": 8, "width": 8, "depth": 1}
    noise = handmade(sr_run, tmp_path / "mlp.pt", node, MLPGenerator(8, (1, 16, 16), width=8, depth=1), (1, 16, 16))
    err = exits_2(["sample", f"run={noise}", f"input={photos}", out], capsys)
    assert "from noise (model=mlp)" in err and "n= instead" in err


def test_an_unreadable_input_leaves_no_output_folder(
    sr_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is no image is refused before out= is made; one whose pixels are cut short fails while it is
    decoded, after other outputs were written: the folders that the command made go with them."""
    photos = tmp_path / "photos"
    write_png_folder(photos, n=2, size=(8, 8))
    whole = next(photos.rglob("*.png")).read_bytes()
    (photos / "zz_truncated.png").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "new" / "outputs"
    err = exits_2(["sample", f"run={sr_run}", f"input={photos}", f"out={out}"], capsys)
    assert "zz_truncated.png" in err and "cannot be read as an image" in err
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty.png").write_bytes(b"")
    err = exits_2(["sample", f"run={sr_run}", f"input={tmp_path / 'empty.png'}", f"out={out}"], capsys)
    assert f"under input={tmp_path / 'empty.png'}" in err and not (tmp_path / "new").exists()
