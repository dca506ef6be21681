"""Files under data.root that are no image, or a broken one, on real malformed files: a file whose header PIL
cannot read is refused when the source is built (all such files named at once, before any worker starts); a
truncated file, whose header reads well, is refused by name when its pixels are decoded, in the cache's workers,
the stream's workers or the training process alike; the message is one sentence, never a worker's traceback."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganlab.data.image_folder import ImageFolderData, UnreadableImage
from ganlab.data.paired_folder import PairedFolderData
from ganlab.errors import ConfigError
from tests.conftest import exits_2, write_paired_folder


def write_images(folder: Path, n: int = 6) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def truncate(path: Path) -> None:
    """A real PNG cut in half, as an interrupted copy leaves it: its header opens, its pixels do not."""
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def clean(message: str) -> bool:
    return "Traceback" not in message and "\n" not in message


def test_files_that_are_no_image_are_all_named_before_any_worker_starts(tmp_path: Path) -> None:
    write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "notes.png").write_text("not an image")
    (tmp_path / "imgs" / "empty.jpg").write_bytes(b"")
    before = {p.pid for p in multiprocessing.active_children()}
    for cache in (True, False):
        with pytest.raises(UnreadableImage) as refused:
            ImageFolderData(str(tmp_path / "imgs"), image_size=8, num_workers=2, cache=cache)
        message = str(refused.value)
        assert message.startswith(f"2 files under data.root={tmp_path / 'imgs'} cannot be read as an image")
        assert "notes.png (not an image format PIL can identify)" in message and "empty.jpg" in message
        assert clean(message)
    assert {p.pid for p in multiprocessing.active_children()} <= before


@pytest.mark.parametrize(("cache", "workers"), [(True, 2), (False, 2), (False, 0)])
def test_a_truncated_image_is_named_when_it_is_decoded(tmp_path: Path, cache: bool, workers: int) -> None:
    write_images(tmp_path / "imgs")
    truncate(tmp_path / "imgs" / "cut.png")
    with pytest.raises(UnreadableImage) as refused:
        data = ImageFolderData(str(tmp_path / "imgs"), image_size=8, num_workers=workers, cache=cache)
        try:
            for _ in range(4):  # a pass over the 7 images reaches the cut one
                data.sample(4)
        finally:
            data.close()
    message = str(refused.value)
    assert message == (
        f"1 file cannot be read as an image (not an image, truncated or corrupt): {tmp_path / 'imgs' / 'cut.png'} "
        "(image file is truncated). Remove or replace it."
    )


def test_the_command_line_says_which_file_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_images(tmp_path / "imgs")
    truncate(tmp_path / "imgs" / "cut.png")
    argv = ["train", "debug=fast", "data=image_folder", f"data.root={tmp_path / 'imgs'}", "data.image_size=8"]
    err = exits_2([*argv, f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert "cut.png (image file is truncated)" in err and "Traceback" not in err and "Error in call" not in err


def test_a_paired_folder_names_the_unreadable_side(tmp_path: Path) -> None:
    write_paired_folder(tmp_path / "pairs")
    (tmp_path / "pairs" / "B" / "pair3.png").write_text("not an image")
    with pytest.raises(ConfigError, match=r"pair3\.png \(not an image format PIL can identify\)"):
        PairedFolderData(str(tmp_path / "pairs"), image_size=16, channels_a=1, channels_b=1)
    write_paired_folder(tmp_path / "cut")
    truncate(tmp_path / "cut" / "A" / "pair5.png")
    with pytest.raises(ConfigError, match=r"A/pair5\.png \(image file is truncated\)"):
        PairedFolderData(str(tmp_path / "cut"), image_size=16, channels_a=1, channels_b=1)
