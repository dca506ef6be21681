"""`ganlab sample` and `ganlab eval` end to end on short runs' checkpoints, and their answers to bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganlab
from ganlab.checkpoint import load_checkpoint, save_checkpoint
from ganlab.cli import main
from ganlab.generation import slerp
from tests.conftest import DIGITS_IMAGE_METRICS, exits_2

FAST = ["debug=fast", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step DCGAN run on 16x16 digits (debug=fast)."""
    root = tmp_path_factory.mktemp("image_run")
    main(["train", *FAST, f"hydra.run.dir={root / 'run'}"])
    return root / "run"


@pytest.fixture(scope="module")
def points_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("points_run")
    main(["train", *FAST, "model=mlp", "data=gaussians", f"hydra.run.dir={root / 'run'}"])
    return root / "run"


def run_main(*args: str) -> None:
    main(list(args))


def test_sample_grid_and_raw_samples(image_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_main("sample", f"run={image_run}", "n=16", f"out={tmp_path / 'grid.png'}")
    assert "wrote 16 samples" in capsys.readouterr().out
    with Image.open(tmp_path / "grid.png") as img:
        # 4 x 4 tiles of 16 px, 2 px apart (74 px), enlarged 600 // 74 = 8 times to be readable
        assert img.size == (8 * (2 + 4 * (16 + 2)), 8 * (2 + 4 * (16 + 2)))
    run_main("sample", f"run={image_run}", "n=10", f"out={tmp_path / 'a.npz'}", "seed=3")
    run_main("sample", f"run={image_run / 'checkpoints' / 'last.pt'}", "n=10", f"out={tmp_path / 'b.npz'}", "seed=3")
    run_main("sample", f"run={image_run}", "n=10", f"out={tmp_path / 'c.npz'}", "seed=4")
    a, b, c = (np.load(tmp_path / f"{k}.npz") for k in "abc")
    assert a.files == ["samples"]  # no labels: the model is unconditional
    assert a["samples"].shape == (10, 1, 16, 16) and a["samples"].dtype == np.float32
    assert a["samples"].min() >= -1 and a["samples"].max() <= 1
    assert np.array_equal(a["samples"], b["samples"])  # same seed, run dir or checkpoint file: same samples
    assert not np.array_equal(a["samples"], c["samples"])


def test_sample_defaults_to_the_run_directory(image_run: Path) -> None:
    run_main("sample", f"run={image_run}")
    with Image.open(image_run / "sample.png") as img:
        assert img.size == (4 * (2 + 8 * 18), 4 * (2 + 8 * 18))  # n=64, enlarged 4 times
    run_main("sample", f"run={image_run}", "n=4")  # a second plain sample keeps the first
    assert (image_run / "sample.png").stat().st_size != (image_run / "sample_2.png").stat().st_size


def test_interpolation_rows_run_between_two_latents(image_run: Path, tmp_path: Path) -> None:
    run_main("sample", f"run={image_run}", "n=12", "steps=6", "interpolate=true", f"out={tmp_path / 'i.png'}")
    with Image.open(tmp_path / "i.png") as img:
        assert img.size == (5 * (2 + 6 * 18), 5 * (2 + 2 * 18))  # 2 rows of 6, enlarged 600 // 110 = 5 times
    run_main("sample", f"run={image_run}", "n=12", "steps=6", "interpolate=true", f"out={tmp_path / 'i.npz'}")
    run_main("sample", f"run={image_run}", "n=4", f"out={tmp_path / 'ends.npz'}")  # latents 0..3 of seed 0
    path, ends = np.load(tmp_path / "i.npz")["samples"], np.load(tmp_path / "ends.npz")["samples"]
    assert path.shape == (12, 1, 16, 16)
    # Row r runs from latent r to latent rows + r of the seed: its first and last images are theirs.
    np.testing.assert_allclose(path[0], ends[0], atol=1e-6)
    np.testing.assert_allclose(path[5], ends[2], atol=1e-6)
    np.testing.assert_allclose(path[6], ends[1], atol=1e-6)
    np.testing.assert_allclose(path[11], ends[3], atol=1e-6)


def test_slerp_keeps_the_angle_steps_equal_and_the_ends_exact() -> None:
    z0, z1 = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))[0]
    torch.testing.assert_close(path[0], z0[0])
    torch.testing.assert_close(path[-1], z1[0])
    angles = torch.atan2(path[:, 1], path[:, 0])
    torch.testing.assert_close(angles, torch.linspace(0, math.pi / 2, 5))  # equal angular steps
    torch.testing.assert_close(path.norm(dim=1), torch.full((5,), 2.0))  # on the circle, not the chord
    same = slerp(z0, 3 * z0, torch.tensor([0.5]))[0, 0]  # parallel: falls back to a straight line
    torch.testing.assert_close(same, torch.tensor([4.0, 0.0]))


def test_sample_uses_the_ema_generator_when_the_checkpoint_has_one_unless_told(image_run: Path, tmp_path: Path) -> None:
    state = load_checkpoint(image_run / "checkpoints" / "last.pt")
    ema = {k: v.clone() for k, v in state["G"].items()}
    last_conv = [k for k in ema if k.endswith("weight") and ema[k].dim() == 4][-1].rsplit(".", 1)[0]
    for key in ema:
        if key.startswith(f"{last_conv}."):
            ema[key].zero_()  # G_ema's last layer outputs zero: tanh(0) = 0 everywhere
    save_checkpoint({**state, "G_ema": ema}, tmp_path / "ema.pt")
    run_main("sample", f"run={tmp_path / 'ema.pt'}", "n=4", f"out={tmp_path / 'ema.npz'}")
    assert np.abs(np.load(tmp_path / "ema.npz")["samples"]).max() == 0.0
    run_main("sample", f"run={tmp_path / 'ema.pt'}", "n=4", f"out={tmp_path / 'also_ema.npz'}", "generator=G_ema")
    assert np.abs(np.load(tmp_path / "also_ema.npz")["samples"]).max() == 0.0
    # generator=G: the trained weights themselves, the same samples as the checkpoint without an EMA gives
    run_main("sample", f"run={tmp_path / 'ema.pt'}", "n=4", f"out={tmp_path / 'raw.npz'}", "generator=G")
    run_main("sample", f"run={image_run}", "n=4", f"out={tmp_path / 'plain.npz'}")
    raw, plain = (np.load(tmp_path / f"{k}.npz")["samples"] for k in ("raw", "plain"))
    assert np.abs(raw).max() > 0 and np.array_equal(raw, plain)
    run_main("eval", f"run={tmp_path / 'ema.pt'}", "n=20", f"out={tmp_path / 'g.json'}", "generator=G")
    assert json.loads((tmp_path / "g.json").read_text())["generator"] == "G"


def test_two_dimensional_samples_and_scatter(points_run: Path, tmp_path: Path) -> None:
    run_main("sample", f"run={points_run}", "n=500", f"out={tmp_path / 'p.npz'}")
    assert np.load(tmp_path / "p.npz")["samples"].shape == (500, 2)
    run_main("sample", f"run={points_run}", "n=500", f"out={tmp_path / 'p.png'}")
    with Image.open(tmp_path / "p.png") as img:
        pixels = np.asarray(img.convert("RGB"))
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80)
    grey = (abs(pixels[..., 0].astype(int) - 153) < 3) & (abs(pixels[..., 1].astype(int) - 153) < 3)
    assert red.any() and grey.any()  # generated points over the real ones


def test_eval_of_an_image_run_writes_metrics_json(image_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_main("eval", f"run={image_run}", "n=200")
    out = capsys.readouterr().out
    assert "fid_digits" in out and "class_kl" in out and "features=digits" in out
    report = json.loads((image_run / "metrics.json").read_text())
    assert report["ganlab_version"] == ganlab.__version__ and report["step"] == 4 and report["generator"] == "G"
    by_name = {m["metric"]: m for m in report["metrics"]}
    assert set(by_name) == DIGITS_IMAGE_METRICS
    for record in by_name.values():
        assert record["n_samples"] == 200 and record["features"] == "digits" and math.isfinite(record["value"])
    assert by_name["fid_digits"]["lower_is_better"] and not by_name["is_digits"]["lower_is_better"]
    assert 0 <= by_name["precision_digits"]["value"] <= 1 and 1 <= by_name["is_digits"]["value"] <= 10


def test_eval_of_a_2d_run_gives_mode_metrics(points_run: Path, tmp_path: Path) -> None:
    run_main("eval", f"run={points_run}", f"out={tmp_path / 'm.json'}")
    report = json.loads((tmp_path / "m.json").read_text())
    by_name = {m["metric"]: m for m in report["metrics"]}
    assert set(by_name) == {"modes", "high_quality", "kl", "kl_all"}
    assert by_name["modes"]["n_samples"] == 2500 and by_name["modes"]["features"] is None
    assert 0 <= by_name["modes"]["value"] <= 8 and 0 <= by_name["kl"]["value"] <= math.log(8) + 1e-9


def test_eval_writes_its_metrics_where_out_says(image_run: Path, tmp_path: Path) -> None:
    run_main("eval", f"run={image_run}", "n=100", f"out={tmp_path / 'x.json'}")  # the console script: test_cli
    assert json.loads((tmp_path / "x.json").read_text())["metrics"][0]["metric"] == "fid_digits"


_fails = exits_2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sample", "run=/no/such/run"], "run=/no/such/run: no such run directory or checkpoint file"),
        (["eval", "run=/no/such/run"], "run=/no/such/run: no such run directory or checkpoint file"),
        (["sample"], "run= must be given"),
        (["sample", "RUN", "grid.png"], "expected key=value, got 'grid.png'"),
        (["sample", "RUN", "count=3"], "Key 'count' not in 'SampleOptions'"),
        (["sample", "RUN", "n=many"], "ganlab sample: n=many: Value 'many' of type 'str' could not be converted"),
        (["sample", "RUN", "steps=5"], "steps= is the images per row of interpolate=true; give that too"),
        (["sample", "RUN", "out=grid.png/"], "out=grid.png/ names a folder; give the file to write in it"),
        (["eval", "RUN", "out=metrics/"], "out=metrics/ names a folder"),
        (["sample", "RUN", "n=0"], "n must be between 1 and"),
        (["eval", "RUN", "n=0"], "n must be between 1 and"),
        (["eval", "RUN", "n=-5"], "n must be between 1 and"),
        (["eval", "RUN", "features=vgg16"], "features='vgg16' is not a feature extractor"),
        (["sample", "RUN", "out=grid.gif"], "write a picture (.png, .jpg) or raw samples (.npz)"),
        (["sample", "RUN", "device=tpu"], "device='tpu' is not a device"),
        (["sample", "RUN", "interpolate=true", "steps=1"], "steps must be between 2 and 1,000"),
        (["sample", "RUN", "seed=99999999999999999999"], "seed must be between 0 and 2**63 - 1"),
        (["eval", "RUN", "seed=-1"], "seed must be between 0 and 2**63 - 1"),
        (["eval", "RUN", "n=99999999999999999999"], "n must be between 1 and 10,000,000"),
        (["eval", "RUN", "batch_size=0"], "batch_size must be between 1 and 1,000,000"),
        (["sample", "RUN", "device=meta"], "device='meta': ganlab runs on cpu, cuda or mps"),
        (["eval", "RUN", "generator=ema"], "generator=ema: choose one of auto, G, G_ema"),
        (["sample", "RUN", "generator=G_ema"], "holds no EMA of G (the run trained with trainer.ema off)"),
    ],
)
def test_bad_input_exits_2(args: list[str], expected: str, image_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [f"run={image_run}" if a == "RUN" else a for a in args]
    assert expected in _fails(args, capsys)


def test_a_file_of_another_kind_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ganlab.metrics.extractors import SHIPPED_WEIGHTS

    err = _fails(["eval", f"run={SHIPPED_WEIGHTS / 'digits.pt'}"], capsys)  # a classifier, not a GAN run
    assert "this file is not a ganlab checkpoint" in err
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a readable ganlab checkpoint" in _fails(["sample", f"run={tmp_path / 'notes.txt'}"], capsys)
    (tmp_path / "empty").mkdir()
    assert "has no checkpoints/last.pt" in _fails(["sample", f"run={tmp_path / 'empty'}"], capsys)


def test_an_unwritable_out_is_refused_and_leaves_nothing_behind(
    image_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    err = _fails(["sample", f"run={image_run}", f"out={blocker / 'grid.png'}"], capsys)
    assert f"out={blocker / 'grid.png'}: {blocker} is a file, not a folder to write in" in err
    folder = tmp_path / "folder.png"
    folder.mkdir()  # out names an existing directory
    assert "cannot write there" in _fails(["sample", f"run={image_run}", f"out={folder}"], capsys)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.png"]


def test_an_upper_case_npz_suffix(image_run: Path, tmp_path: Path) -> None:
    run_main("sample", f"run={image_run}", "n=3", f"out={tmp_path / 'S.NPZ'}")
    assert np.load(tmp_path / "S.NPZ")["samples"].shape == (3, 1, 16, 16)
    assert [p.name for p in tmp_path.iterdir()] == ["S.NPZ"]


def test_eval_refuses_an_unwritable_out_before_evaluating(
    image_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _fails(["eval", f"run={image_run}", f"out={blocker / 'm.json'}"], capsys)
    assert f"{blocker} is a file, not a folder" in err and "fid" not in capsys.readouterr().out


def test_class_metrics_only_for_a_classifier_of_the_data_s_classes(mnist_root: Path) -> None:
    from ganlab.metrics.extractors import get_extractor
    from tests.conftest import compose_cfg

    cpu = torch.device("cpu")
    fashion = compose_cfg("data=fashion_mnist", f"data.root={mnist_root}", "data.download=false").data
    mnist = compose_cfg("data=mnist", f"data.root={mnist_root}", "data.download=false").data
    assert not get_extractor("digits", fashion, cpu).dataset_classes  # digits' classes are not clothes
    assert get_extractor("digits", mnist, cpu).dataset_classes  # both are the digits 0-9


def test_eval_of_a_copied_run_directory(image_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "moved"
    shutil.copytree(image_run, copy)
    run_main("eval", f"run={copy}", "n=50")
    assert json.loads((copy / "metrics.json").read_text())["checkpoint"] == str(copy / "checkpoints" / "last.pt")


def test_eval_reads_data_that_moved_from_data_root(
    mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["train", *FAST, "data=mnist", f"data.root={mnist_root}", "data.download=false", f"hydra.run.dir={run}"])
    moved = shutil.move(mnist_root, tmp_path / "moved")
    err = exits_2(["eval", f"run={run}", "features=digits", "n=32"], capsys)
    assert f"read its data from data.root={mnist_root}; if the data has moved, give its new place" in err
    main(["eval", f"run={run}", "features=digits", "n=32", f"data.root={moved}"])
    assert json.loads((run / "metrics.json").read_text())["step"] == 4
    err = exits_2(["eval", f"run={run}", f"data.root={moved}", "data.image_size=32"], capsys)
    assert "data.image_size= would change the data the run was trained on" in err
