"""Metric names carry the feature space they were measured in (issue 20): fid_digits and fid_inception never
share a name, a TensorBoard tag or a report column."""

from __future__ import annotations

import pytest

from ganlab.evaluation import describe, lower_is_better
from ganlab.metric_names import rename, resolve, split, with_extractor


@pytest.mark.parametrize(
    ("plain", "extractor", "named"),
    [
        ("fid", "digits", "fid_digits"),
        ("kid_std", "inception", "kid_inception_std"),
        ("is", "fashion_mnist", "is_fashion_mnist"),
        ("is_std", "fashion_mnist", "is_fashion_mnist_std"),
        ("fid_bicubic", "digits", "fid_digits_bicubic"),
        ("fid_raw", "mnist", "fid_mnist_raw"),
        ("precision", "inception", "precision_inception"),
    ],
)
def test_feature_metrics_name_their_extractor_and_the_name_reads_back(plain: str, extractor: str, named: str) -> None:
    assert with_extractor(plain, extractor) == named
    assert split(named) == (plain, extractor)


def test_metrics_outside_a_feature_space_keep_their_names() -> None:
    for name in ("classes", "class_kl", "psnr", "kl_all", "discriminative_std", "marginal_2", "l1"):
        assert with_extractor(name, "digits") == name and split(name) == (name, None)
    assert rename({"fid": 1.0, "classes": 10.0}, "digits") == {"fid_digits": 1.0, "classes": 10.0}
    assert with_extractor("fid", None) == "fid"  # 2-D data: no extractor
    assert split("fid") == ("fid", None)  # what runs from before the rename logged


def test_a_plain_monitor_resolves_to_the_runs_extractor() -> None:
    names = ["fid_digits", "kid_digits", "kid_digits_std", "classes"]
    assert resolve("fid", names) == "fid_digits" and resolve("kid_std", names) == "kid_digits_std"
    assert resolve("fid_inception", names) == "fid_inception"  # not computed: the caller says so
    assert resolve("classes", names) == "classes" and resolve("sharpness", names) == "sharpness"


def test_direction_and_description_follow_the_plain_name() -> None:
    assert lower_is_better("fid_inception") and lower_is_better("kid_digits_std") and lower_is_better("fid_digits_raw")
    assert not lower_is_better("is_digits") and not lower_is_better("precision_inception")
    assert describe("fid_inception") == "Frechet distance of features [inception features]"
