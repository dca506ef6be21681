"""Evaluation during training: metrics/ in TensorBoard, checkpoints/best.pt, the returned value for sweepers,
and no effect on the training itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.errors import ConfigError
from ganlab.train import train
from tests.conftest import compose_cfg, read_events

EVAL = ["trainer.steps=6", "trainer.eval_every=2", "trainer.eval_n=50"]


def test_periodic_evaluation_logs_metrics_keeps_the_best_and_returns_the_final_value(tmp_path: Path) -> None:
    returned = train(compose_cfg(*EVAL), tmp_path)
    scalars, _ = read_events(tmp_path)
    fid = dict(scalars["metrics/fid_digits"])
    assert sorted(fid) == [2, 4, 6]
    for tag in ("kid_digits", "is_digits", "precision_digits", "recall_digits", "classes", "class_kl"):
        assert [s for s, _ in scalars[f"metrics/{tag}"]] == [2, 4, 6]
    assert returned == pytest.approx(fid[6])
    best_step = min(fid, key=fid.get)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["step"] == best_step
    assert best["best"] == {
        "metric": "fid_digits",
        "value": pytest.approx(fid[best_step]),
        "step": best_step,
        "features": "digits",
        "n": 50,
        "seed": 0,
    }
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["metrics"]["fid_digits"] == pytest.approx(fid[6])


def test_evaluating_does_not_change_the_training(tmp_path: Path) -> None:
    train(compose_cfg("trainer.steps=6"), tmp_path / "plain")
    train(compose_cfg(*EVAL), tmp_path / "judged")
    plain = load_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt")
    judged = load_checkpoint(tmp_path / "judged" / "checkpoints" / "last.pt")
    for net in ("G", "D"):
        for name, tensor in plain[net].items():
            assert torch.equal(tensor, judged[net][name]), f"{net}.{name}"


def test_a_monitor_where_higher_is_better_and_resume_keeps_the_best(tmp_path: Path) -> None:
    cfg = compose_cfg("trainer.steps=4", "trainer.eval_every=2", "trainer.eval_n=50", "trainer.monitor=recall")
    train(cfg, tmp_path)
    resumed = train(
        compose_cfg("trainer.steps=8", "trainer.eval_every=2", "trainer.eval_n=50", "trainer.monitor=recall",
                    f"resume={tmp_path}"),
        tmp_path,
    )  # fmt: skip
    scalars, _ = read_events(tmp_path)
    recall = dict(scalars["metrics/recall_digits"])  # trainer.monitor=recall: in the run's extractor
    assert sorted(recall) == [2, 4, 6, 8]
    best_step = max(recall, key=lambda s: (recall[s], -s))  # the first step that reached the maximum
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == best_step
    assert resumed == pytest.approx(recall[8])
    # A finished run asked again returns its final value without training.
    again = compose_cfg("trainer.steps=8", "trainer.eval_every=2", "trainer.monitor=recall", f"resume={tmp_path}")
    assert train(again, tmp_path) == pytest.approx(recall[8])


def test_an_evaluation_cut_off_by_a_stop_is_done_on_resume(tmp_path: Path) -> None:
    from ganlab.checkpoint import save_checkpoint

    train(compose_cfg(*EVAL), tmp_path)
    scalars, _ = read_events(tmp_path)
    uninterrupted = dict(scalars["metrics/fid_digits"])[6]
    # What a SIGTERM at the last step leaves: last.pt at step 6, whose evaluation never ran.
    last = tmp_path / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    save_checkpoint({k: v for k, v in state.items() if k != "format"} | {"evaluated_step": 4}, last)
    resumed = train(compose_cfg(*EVAL, f"resume={tmp_path}"), tmp_path)
    assert resumed == pytest.approx(uninterrupted)
    assert load_checkpoint(last)["evaluated_step"] == 6
    # Asked again, the finished and evaluated run returns at once with the same value.
    assert train(compose_cfg(*EVAL, f"resume={tmp_path}"), tmp_path) == pytest.approx(uninterrupted)


def test_a_best_measured_differently_is_not_compared(tmp_path: Path) -> None:
    cfg = ["trainer.eval_every=2", "trainer.monitor=recall"]
    train(compose_cfg("trainer.steps=2", *cfg, "trainer.eval_n=40"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["best"]["n"] == 40
    train(compose_cfg("trainer.steps=4", *cfg, "trainer.eval_n=60", f"resume={tmp_path}"), tmp_path)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")["best"]
    assert best["n"] == 60 and best["step"] == 4  # the n=40 best was set aside, not compared


def test_resuming_into_another_directory_writes_its_own_best(tmp_path: Path) -> None:
    train(compose_cfg("trainer.steps=2", "trainer.eval_every=2", "trainer.eval_n=40"), tmp_path / "a")
    elsewhere = tmp_path / "copy.pt"
    elsewhere.write_bytes((tmp_path / "a" / "checkpoints" / "last.pt").read_bytes())
    cfg = compose_cfg("trainer.steps=4", "trainer.eval_every=2", "trainer.eval_n=40", f"resume={elsewhere}")
    train(cfg, tmp_path / "b")
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "best.pt")["best"]["step"] == 4


def test_monitor_alone_evaluates_once_at_the_end_for_sweepers(tmp_path: Path) -> None:
    cfg = compose_cfg("model=mlp", "data=gaussians", "trainer.steps=4", "trainer.monitor=modes", "trainer.eval_n=400")
    value = train(cfg, tmp_path)
    scalars, _ = read_events(tmp_path)
    assert [s for s, _ in scalars["metrics/modes"]] == [4]
    assert value == scalars["metrics/modes"][0][1] and 0 <= value <= 8
    assert {"metrics/high_quality", "metrics/kl"} <= set(scalars)


def test_2d_runs_monitor_kl_all_by_default(tmp_path: Path) -> None:
    value = train(compose_cfg("model=mlp", "data=gaussians", "trainer.eval_every=4", "trainer.eval_n=400"), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert state["best"]["metric"] == "kl_all" and value == state["metrics"]["kl_all"] > 0


def test_no_evaluation_by_default(tmp_path: Path) -> None:
    assert train(compose_cfg(), tmp_path) is None
    scalars, _ = read_events(tmp_path)
    assert not any(tag.startswith("metrics/") for tag in scalars)
    assert not (tmp_path / "checkpoints" / "best.pt").exists()


def test_too_few_real_images_for_the_metrics_is_refused_before_training(tmp_path: Path) -> None:
    from tests.conftest import write_png_folder

    write_png_folder(tmp_path / "imgs", n=3)
    cfg = compose_cfg(
        "data=image_folder", f"data.root={tmp_path / 'imgs'}", "data.image_size=16", "data.channels=1",
        "data.num_workers=0", "trainer.eval_every=2", "trainer.eval_features=digits", "trainer.eval_n=10",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="the data holds 3 images; image metrics need at least 4"):
        train(cfg, tmp_path / "run")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.monitor=fid", "data=gaussians", "model=mlp"], "trainer.monitor=fid is not computed for this data"),
        (["trainer.monitor=sharpness"], "choose one of fid_digits, kid_digits"),
        (["trainer.eval_every=0"], "trainer.eval_every must be >= 1"),
        (["trainer.eval_every=2", "trainer.eval_n=3"], "trainer.eval_n >= 10"),
        (["trainer.eval_every=2", "trainer.eval_n=0"], "trainer.eval_n must be between 1 and"),
        (["trainer.eval_every=2", "trainer.eval_features=vgg"], "trainer.eval_features='vgg' is not a feature"),
        (
            ["trainer.monitor=kl", "model=mlp", "data=gaussians", "trainer.eval_features=digits"],
            "trainer.eval_features=digits: 2-D data is judged by mode metrics",
        ),
    ],
)
def test_bad_evaluation_settings_are_refused_before_training(
    overrides: list[str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        train(compose_cfg(*overrides), tmp_path)
    assert not (tmp_path / "checkpoints").exists()
