"""data.classes, data.limit and data.xflip (issue 21): which images train, for any image source."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.data.base import to_model_range
from ganlab.data.selection import LIMIT_SEED, build_data, limited_indices, mirror_half
from ganlab.errors import ConfigError
from tests.conftest import write_png_folder

DIGITS = {"_target_": "ganlab.data.digits.DigitsData", "image_size": 8}


def test_a_limit_is_a_fixed_class_balanced_subset_and_the_metrics_keep_the_whole_set() -> None:
    data = build_data({**DIGITS, "limit": 100}, "cpu")
    assert len(data) == 100 and data.labels.bincount().tolist() == [10] * 10
    again = build_data({**DIGITS, "limit": 100}, "cpu")
    torch.manual_seed(123)  # the run's seed does not choose the subset
    assert torch.equal(data.images, again.images) and LIMIT_SEED == 0
    assert len(data.reference) == 1797  # the bundled digits: FID compares with all of them
    whole = next(data.reference_batches(1797, 1797))
    assert whole.shape[0] == 1797
    trained = next(data.training_batches(1797, 1797))
    assert trained.shape[0] == 100 and torch.equal(trained.sort(0).values, to_model_range(data.images).sort(0).values)
    # 13 images over 10 classes: one of each class, then 3 more of three classes
    assert sorted(build_data({**DIGITS, "limit": 13}, "cpu").labels.bincount().tolist()) == [1] * 7 + [2] * 3


def test_limited_indices_balance_by_hand() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2])  # 4, 2 and 1 images
    picked = limited_indices(7, 5, labels)
    assert sorted(labels[picked].tolist()) == [0, 0, 1, 1, 2]
    assert limited_indices(7, 3, None).tolist() == sorted(limited_indices(7, 3, None).tolist())


def test_classes_keep_their_labels_for_training_and_for_the_metrics() -> None:
    data = build_data({**DIGITS, "classes": [5, 6, 7, 8, 9], "limit": 50}, "cpu")
    assert data.labels.bincount(minlength=10).tolist() == [0] * 5 + [10] * 5
    assert set(data.reference.labels.unique().tolist()) == {5, 6, 7, 8, 9} and data.num_classes == 10
    with pytest.raises(ConfigError, match=r"data.classes=\[12\]: the data's classes are 0..9"):
        build_data({**DIGITS, "classes": [12]}, "cpu")


def test_xflip_mirrors_half_of_the_drawn_images_and_keeps_labels() -> None:
    torch.manual_seed(0)
    data = build_data({**DIGITS, "limit": 1, "xflip": True}, "cpu")
    image = to_model_range(data.images[:1])[0]  # the one image of the subset, as batches hand it out
    batch, labels = data.sample_labeled(400)
    original = (batch == image).flatten(1).all(1)
    mirrored = (batch == image.flip(-1)).flatten(1).all(1)
    assert (original | mirrored).all() and 150 < int(mirrored.sum()) < 250
    assert (labels == data.labels[0]).all()
    x = torch.arange(6.0).view(2, 1, 1, 3)
    assert {tuple(row.flatten().tolist()) for row in mirror_half(x.repeat(50, 1, 1, 1))} == {
        (0.0, 1.0, 2.0), (2.0, 1.0, 0.0), (3.0, 4.0, 5.0), (5.0, 4.0, 3.0)
    }  # fmt: skip


def test_bad_selections_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.limit=5000: the data holds 1797 images"):
        build_data({**DIGITS, "limit": 5000}, "cpu")
    with pytest.raises(ConfigError, match="select images"):
        build_data({"_target_": "ganlab.data.gaussians.GaussiansData", "xflip": True}, "cpu")
    write_png_folder(tmp_path / "folder", n=4, size=(12, 12))
    streamed = {"_target_": "ganlab.data.image_folder.ImageFolderData", "root": str(tmp_path / "folder"),
                "image_size": 8, "num_workers": 0, "cache": False, "limit": 2}  # fmt: skip
    with pytest.raises(ConfigError, match="add data.cache=true"):
        build_data(streamed, "cpu")
    assert len(build_data({**streamed, "cache": True}, "cpu")) == 2
