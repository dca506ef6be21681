"""Every built-in data option keeps the contracts of ganlab/protocols.py that the loop, evaluation and the
classifier features read, so a change to a source cannot drop a member one of them needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganlab.data.base import close_source
from ganlab.data.selection import build_data
from ganlab.protocols import (
    DataSource,
    ImagePairSource,
    ImageSource,
    InMemoryImageSource,
    LabelledSource,
    PointMixture,
    SequenceSource,
)
from tests.conftest import compose_cfg, options, write_paired_folder, write_png_folder

EXPECTED = {  # the contracts each option must keep (cifar10 has no offline files here: its loader is mnist's)
    "digits": (LabelledSource, InMemoryImageSource),
    "gaussians": (PointMixture,),
    "mnist": (LabelledSource, InMemoryImageSource),
    "fashion_mnist": (LabelledSource, InMemoryImageSource),
    "image_folder": (LabelledSource, ImageSource),
    "rendered_digits": (LabelledSource, InMemoryImageSource),
    "super_resolution": (ImagePairSource,),
    "unpaired": (ImagePairSource,),
    "paired_folder": (ImagePairSource,),
    "sines": (SequenceSource,),
    "csv": (SequenceSource, LabelledSource),
}


def test_every_data_option_is_listed() -> None:
    assert set(options("data")) - {"cifar10"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("cache", ["true", "false"])
def test_a_data_option_keeps_its_contracts(name: str, cache: str, mnist_root: Path, tmp_path: Path) -> None:
    if cache == "false" and name != "image_folder":
        pytest.skip("only an image folder streams")
    extra = {
        "mnist": [f"data.root={mnist_root}"],
        "fashion_mnist": [f"data.root={mnist_root}"],
        "image_folder": [
            f"data.root={tmp_path / 'imgs'}",
            "data.image_size=16",
            f"data.cache={cache}",
            "data.num_workers=0",
        ],
    }.get(name, [])
    if name == "image_folder":
        write_png_folder(tmp_path / "imgs", n=8)
    if name == "paired_folder":
        write_paired_folder(tmp_path / "pairs")
        extra = [f"data.root={tmp_path / 'pairs'}", "data.image_size=16", "data.heldout=0.25"]
    if name == "csv":
        (tmp_path / "s.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30)))
        extra = [f"data.path={tmp_path / 's.csv'}", "data.length=6", "data.label_column=y"]
    data = build_data(compose_cfg(f"data={name}", *extra).data, "cpu")
    try:
        assert isinstance(data, DataSource)
        for contract in EXPECTED[name]:
            assert isinstance(data, contract), f"data={name} is no longer a {contract.__name__}"
        batch = data.sample(4)
        assert tuple(batch.shape) == (4, *data.shape)
        if isinstance(data, ImageSource):
            assert batch.min() >= -1 and batch.max() <= 1
        if isinstance(data, SequenceSource):
            assert batch.min() >= 0 and batch.max() <= 1
    finally:
        close_source(data)
