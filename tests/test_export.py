"""`ganlab export` and `ganlab.load_generator`: the files leave ganlab, each reproduces G, and bad input is refused
with nothing half-written."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

import ganlab
from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main
from ganlab.errors import ConfigError
from ganlab.export import check, onnx
from ganlab.export.spec import SPEC_FILE, sha256_of
from tests.conftest import cli_exit, exits_2, fill_disk, options

FAST = ["debug=fast", "trainer.device=cpu"]
# A class-conditional DCGAN with an EMA of G: the export must carry the labels and the averaged weights.
RUN = [*FAST, "model.conditional=true", "trainer.ema=0.9"]
FORMATS = "safetensors,pt2"  # the default suite's export; onnx (1-2 s more to write) is checked under -m slow
ALL_FORMATS = FORMATS + ("" if onnx.missing_packages() else ",onnx")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export_run") / "run"
    main(["train", *RUN, f"hydra.run.dir={root}"])
    measured = {"step": 4, "metrics": [{"metric": "fid_digits", "value": 12.5}, {"metric": "kid", "value": 0.01}]}
    (root / "metrics.json").write_text(json.dumps(measured))  # as `ganlab eval` writes it
    return root


@pytest.fixture(scope="module")
def exported(run: Path) -> Path:
    out = run.parent / "export"
    logger = logging.getLogger("ganlab")
    handlers, level = list(logger.handlers), logger.level
    try:
        main(["export", f"run={run}", f"out={out}", f"format={FORMATS}"])
    finally:  # a module fixture runs outside conftest's per-test restore: the command's stderr handler goes here
        logger.handlers[:], logger.level = handlers, level
    return out


def test_the_export_holds_checked_files_a_spec_and_a_model_card(run: Path, exported: Path) -> None:
    files = {p.name for p in exported.iterdir()}
    assert files == {"generator.safetensors", "generator.pt2", SPEC_FILE, "README.md"}
    assert not list(run.parent.glob(".export.partial-*"))  # the hidden folder it was built in is gone
    spec = json.loads((exported / SPEC_FILE).read_text())
    assert spec["condition"] == {"kind": "class", "num_classes": 10}
    assert (spec["weights"], spec["step"], spec["sample_shape"], spec["latent_size"]) == ("G_ema", 4, [1, 16, 16], 8)
    assert spec["value_range"] == [-1.0, 1.0] and spec["ganlab_version"] == ganlab.__version__
    assert spec["files"] == {name: sha256_of(exported / name) for name in files - {SPEC_FILE}}
    card = (exported / "README.md").read_text()
    fingerprint = load_checkpoint(run / "checkpoints" / "last.pt")["data_fingerprint"]
    assert len(fingerprint) == 16 and f"fingerprint `{fingerprint}`" in card
    assert "`ganlab train debug=fast trainer.device=cpu model.conditional=true trainer.ema=0.9`" in card
    assert "| step | 4 |" in card and "| weights | G_ema" in card and f"ganlab {ganlab.__version__}" in card
    assert "| output range | in [-1, 1] |" in card
    assert "| fid_digits | 12.5 |" in card and "| kid | 0.01 |" in card


def test_load_generator_draws_what_ganlab_sample_draws(run: Path, exported: Path, tmp_path: Path) -> None:
    main(["sample", f"run={run}", "n=10", "seed=3", f"out={tmp_path / 's.npz'}"])  # one per class, 0..9
    expected = torch.from_numpy(np.load(tmp_path / "s.npz")["samples"])
    from_export, from_run = ganlab.load_generator(exported), ganlab.load_generator(run)
    assert isinstance(from_export, torch.nn.Module)
    assert torch.equal(from_export.sample(10, seed=3), expected)
    assert torch.equal(from_run.sample(10, seed=3, labels=range(10)), expected)
    sevens = from_export.sample(3, seed=1, labels=7)
    assert sevens.shape == (3, 1, 16, 16) and torch.equal(sevens, from_export.sample(3, seed=1, labels=[7, 7, 7]))
    with pytest.raises(ValueError, match="from 0 to 9"):
        from_export.sample(2, labels=[3, 10])
    with pytest.raises(ConfigError, match="no w space"):
        from_export.sample(2, truncation=0.7)


def test_points_are_exported_as_unbounded(tmp_path: Path) -> None:
    """A 2-D mixture's G ends in a linear layer and writes the data's own coordinates (ring8's radius is 2): its
    export must not promise [-1, 1] as an image G's does."""
    run, out = tmp_path / "run", tmp_path / "export"
    main(["train", *FAST, "model=mlp", "data=gaussians", "data.kind=ring8", f"hydra.run.dir={run}"])
    main(["export", f"run={run}", f"out={out}", "format=safetensors"])
    assert json.loads((out / SPEC_FILE).read_text())["value_range"] is None
    assert "| output range | in the data's own coordinates (unbounded) |" in (out / "README.md").read_text()
    G = ganlab.load_generator(out)
    assert G.value_range is None and G.sample(5, seed=0).shape == (5, 2)


@pytest.mark.slow  # 5 s: a second Python that imports torch and torch.export (each export's own check loads it)
def test_the_pt2_file_runs_with_torch_alone(exported: Path, tmp_path: Path) -> None:
    """In a Python that cannot import ganlab: no site (so no editable-install hook), torch's folder only."""
    script = f"""
import importlib.util, sys
sys.path.append({sysconfig.get_paths()["purelib"]!r})
assert importlib.util.find_spec("ganlab") is None, "ganlab is importable"
import torch
G = torch.export.load({str(exported / "generator.pt2")!r}).module()
z = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
torch.save(G(z, torch.arange(5)), {str(tmp_path / "out.pt")!r})
"""
    done = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    expected = ganlab.load_generator(exported)(z, torch.arange(5))
    assert torch.allclose(torch.load(tmp_path / "out.pt", weights_only=True), expected, atol=1e-5, rtol=0)


@pytest.mark.slow  # 3 s: the ONNX exporter
def test_the_onnx_file_gives_torchs_output(run: Path, exported: Path, tmp_path: Path) -> None:
    if onnx.missing_packages():
        pytest.skip(f"format=onnx needs {', '.join(onnx.missing_packages())}: pip install 'ganlab[onnx]'")
    import onnxruntime

    main(["export", f"run={run}", f"out={tmp_path / 'x'}", f"format={ALL_FORMATS}"])
    assert json.loads((tmp_path / "x" / SPEC_FILE).read_text())["files"].keys() >= {"generator.onnx"}
    session = onnxruntime.InferenceSession(str(tmp_path / "x" / "generator.onnx"), providers=["CPUExecutionProvider"])
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([9, 0, 3, 3, 5, 1])
    got = session.run(None, {"z": z.numpy(), "condition": labels.numpy()})[0]
    expected = ganlab.load_generator(exported)(z, labels)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=0)


def test_the_check_fails_beyond_its_tolerance() -> None:
    expected = torch.zeros(2, 3)
    assert check.check_file("x", lambda: expected + 4e-6, (), expected) == pytest.approx(4e-6)
    for wrong in (expected + 3e-5, expected * float("nan"), torch.zeros(2, 4)):
        with pytest.raises(check.ExportCheckFailed):
            check.check_file("x", lambda wrong=wrong: wrong, (), expected)


@pytest.mark.parametrize(
    "options, says",
    [
        (["format=tflite"], "format=tflite: choose from safetensors, pt2, onnx"),
        (["format=pt2,,"], None),  # empty names are ignored: a trailing comma is not a mistake
    ],
)
def test_the_format_option(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], says: str | None
) -> None:
    argv = ["export", f"run={run}", f"out={tmp_path / 'x'}", *options]
    if says is None:
        main(argv)
        assert (tmp_path / "x" / "generator.pt2").is_file()
    else:
        assert says in exits_2(argv, capsys)
        assert not (tmp_path / "x").exists()


def test_bad_runs_and_outs_exit_2_and_write_nothing(
    run: Path, exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty_run").mkdir()
    assert "has no checkpoints/last.pt" in exits_2(["export", f"run={tmp_path / 'empty_run'}", "out=x"], capsys)
    assert "has no checkpoints/last.pt" in exits_2(["export", f"run={exported}", f"out={tmp_path / 'x'}"], capsys)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    assert "already exists" in exits_2(["export", f"run={run}", f"out={taken}"], capsys)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    assert not (tmp_path / "x").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["empty_run", "taken"]


def copy_of(exported: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(exported, tmp_path / "copy"))


def test_an_export_from_another_format_version_is_refused(exported: Path, tmp_path: Path) -> None:
    folder = copy_of(exported, tmp_path)
    spec = json.loads((folder / SPEC_FILE).read_text())
    (folder / SPEC_FILE).write_text(json.dumps({**spec, "format": "ganlab-export-v2", "ganlab_version": "9.0"}))
    with pytest.raises(ConfigError, match=r"exported as 'ganlab-export-v2' by ganlab 9.0; this ganlab .* reads"):
        ganlab.load_generator(folder)


def test_a_pickle_disguised_as_safetensors_is_never_unpickled(exported: Path, tmp_path: Path) -> None:
    folder = copy_of(exported, tmp_path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    weights = folder / "generator.safetensors"
    weights.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ConfigError, match="SHA-256 mismatch"):  # a file swapped after the export
        ganlab.load_generator(folder)
    spec = json.loads((folder / SPEC_FILE).read_text())
    spec["files"]["generator.safetensors"] = sha256_of(weights)  # and one whose description was edited to match
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match="not a readable safetensors file.*never unpickles"):
        ganlab.load_generator(folder)
    assert not marker.exists()


def test_a_full_disk_leaves_no_half_written_export(
    run: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_disk(small_disk, leave=8_000)  # room for the folder, not for the weights (about 60 kB)
    out = small_disk / "export"
    assert "cannot write there" in exits_2(["export", f"run={run}", f"out={out}"], capsys)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_read_only_place_is_refused(run: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        err = exits_2(["export", f"run={run}", f"out={small_disk / 'export'}"], capsys)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert "cannot write" in err and "Read-only file system" in err
    assert list(small_disk.iterdir()) == []


def data_for(model: str, tmp_path: Path) -> list[str]:
    from tests.conftest import IMAGE_TO_IMAGE, image_conditioned
    from tests.test_train import DATA_FOR_MODEL

    return image_conditioned(model, tmp_path) if model in IMAGE_TO_IMAGE else DATA_FOR_MODEL[model]


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, extra",
    [(model, []) for model in options("model")]
    + [
        ("rnn", ["data.prefix=4"]),
        ("rnn", ["model.generator.feedback=true"]),
        ("stylegan2", ["model.conditional=true"]),
    ],
)
def test_every_model_exports_to_every_format(
    model: str, extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trained for a few steps, exported to all formats (each checked on writing), and loaded back as it was."""
    run = tmp_path / "run"
    main(["train", *FAST, f"model={model}", *data_for(model, tmp_path), *extra, f"hydra.run.dir={run}"])
    formats = ALL_FORMATS
    if model == "unet" and "onnx" in formats:  # its dropout stays on when sampling: onnx cannot be checked
        code, err = cli_exit(["export", f"run={run}", f"out={tmp_path / 'x'}", f"format={formats}"], capsys)
        assert code == 2 and "draws random numbers in eval mode" in err  # after a line on the data it read
        assert not (tmp_path / "x").exists()
        formats = "safetensors,pt2"
    main(["export", f"run={run}", f"out={tmp_path / 'x'}", f"format={formats}"])
    G, reference = ganlab.load_generator(tmp_path / "x"), ganlab.load_generator(run)
    condition = None
    if G.spec.condition["kind"] == "tensor":  # what the data gives: the export's check used the same seam
        from ganlab.export.describe import describe
        from ganlab.trained_generator import load_snapshot

        condition = describe(load_snapshot(str(run), torch.device("cpu")))[1].condition[:3]
    a = seeded_sample(G, condition)
    n = 3 if condition is None else len(condition)  # paired data gives as many as it holds out
    assert a.shape == (n, *G.sample_shape) and torch.equal(a, seeded_sample(reference, condition))


def seeded_sample(G: torch.nn.Module, condition: torch.Tensor | None) -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # pix2pix's dropout stays on in eval mode
        return G.sample(3 if condition is None else len(condition), seed=2, condition=condition)


def test_an_lstm_generator_exports_without_torchs_warning_about_its_own_weights() -> None:
    """torch.export warned, on the user's screen, that nn.LSTM's `_flat_weights` were reassigned: torch's own
    module, nothing the user can act on (and the exported file is checked against G all the same)."""
    import warnings

    from ganlab.export.pt2 import to_bytes
    from ganlab.models.rnn import RNNGenerator

    G = RNNGenerator(4, (8, 2), hidden=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert to_bytes(G, (torch.randn(2, 8 * 4),))  # a z_dim-sized latent per step of the sequence
