"""What an image-conditioned run (srresnet, refiner, unet) shows after training: `ganlab sample` without input=
applies G to the data's held-out inputs, and `ganlab browse` draws the same triplets on the run's page. Such a G
has no latent space to interpolate and draws nothing from noise (both commands used to exit 2 on it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganlab.cli import main
from tests.conftest import IMAGE_TO_IMAGE, exits_2, image_conditioned
from tests.test_browse import read_page

N = 16  # the run's sample grids hold this many inputs: the last grid is then the picture both commands draw


@pytest.fixture(scope="module", params=sorted(IMAGE_TO_IMAGE))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step run, its last sample grid drawn by the final weights."""
    model = request.param
    folder = tmp_path_factory.mktemp(model)
    main(["train", "debug=fast", f"trainer.num_samples={N}", f"model={model}", *image_conditioned(model, folder),
          f"hydra.run.dir={folder / 'run'}"])  # fmt: skip
    assert (folder / "run" / "samples" / "step_0000004.png").is_file()
    return folder / "run"


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.int16)


def same_picture(a: Path, b: Path) -> bool:
    """Equal up to one level of rounding (the training and the loaded network may round differently)."""
    pa, pb = pixels(a), pixels(b)
    return pa.shape == pb.shape and int(np.abs(pa - pb).max()) <= 1


def test_sample_applies_g_to_the_held_out_inputs(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["sample", f"run={run}", f"n={N}", f"out={tmp_path / 'triplets.png'}"])
    assert "held-out inputs of its data" in capsys.readouterr().out
    assert same_picture(tmp_path / "triplets.png", run / "samples" / "step_0000004.png")
    main(["sample", f"run={run}", "n=2", f"out={tmp_path / 'raw.npz'}"])
    raw = np.load(tmp_path / "raw.npz")
    assert set(raw.files) == {"samples", "inputs", "targets"}
    assert len(raw["samples"]) == len(raw["inputs"]) == len(raw["targets"]) == 2
    assert raw["samples"].shape == raw["targets"].shape and np.isfinite(raw["samples"]).all()


def test_sample_refuses_what_draws_from_noise(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = exits_2(["sample", f"run={run}", "interpolate=true", f"out={tmp_path / 'x.png'}"], capsys)
    assert "interpolate= draws from noise" in err and "maps images" in err
    assert not (tmp_path / "x.png").exists()


def test_the_run_page_shows_the_same_triplets(run: Path) -> None:
    main(["browse", f"run={run}"])
    read_page(run / "browse.html")
    text = (run / "browse.html").read_text()
    assert "Held-out inputs, outputs and targets" in text and "Interpolation" not in text
    assert same_picture(run / "browse" / "held_out.png", run / "samples" / "step_0000004.png")
