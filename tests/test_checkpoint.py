"""Checkpoints: atomic writes, safe loads, and the compatibility check on resume."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.checkpoint import (
    capture_rng,
    check_compatible,
    load_checkpoint,
    resolve_checkpoint,
    restore_rng,
    save_checkpoint,
)
from ganlab.errors import ConfigError
from ganlab.train import train
from tests.conftest import compose_cfg


def test_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    train(compose_cfg(), tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["format"] == "ganlab-checkpoint-v1"
    assert {"G", "D", "opt_G", "opt_D", "rng", "fixed_noise", "config", "overrides"} <= state.keys()
    assert state["config"]["model"]["generator"]["_target_"].endswith("DCGANGenerator")
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint({"step": 2, "unpicklable": lambda: None}, path)  # dies half-way through writing
    assert torch.load(path, weights_only=True)["step"] == 1  # a toy state: not a checkpoint load_checkpoint takes
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_rng_state_round_trip() -> None:
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    state = capture_rng()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    restore_rng(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_resume_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such run directory or checkpoint"):
        resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no checkpoints/last.pt"):
        resolve_checkpoint(tmp_path)
    for text in ("not a checkpoint", "x = 1\n"):  # torch fails on these with a KeyError / an "unsupported operand"
        junk = tmp_path / "junk.pt"
        junk.write_text(text)
        with pytest.raises(ConfigError, match="not a readable ganlab checkpoint") as err:
            load_checkpoint(junk)
        assert "neither a torch zip archive nor a pickle" in str(err.value) and "run code" not in str(err.value)
    good = tmp_path / "good.pt"
    save_checkpoint({"step": 1, "weights": torch.zeros(1000)}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:3000])  # a copy that did not finish
    with pytest.raises(ConfigError, match="the file is truncated: its zip archive has no end") as err:
        load_checkpoint(cut)
    assert str(err.value).endswith("resume=auto falls back to the newest good checkpoint of a run.")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ConfigError, match="not a ganlab checkpoint"):
        load_checkpoint(other)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "ganlab-checkpoint-v1", "obj": Path("/etc/passwd")}, path)
    with pytest.raises(ConfigError, match="not a readable ganlab checkpoint"):
        load_checkpoint(path)


def test_incompatible_config_names_the_keys() -> None:
    saved = {"model": {"z_dim": 100, "generator": {"width": 64}}, "data": {"image_size": 32, "root": "a"}}
    ok = {"model": {"z_dim": 100, "generator": {"width": 64}}, "data": {"image_size": 32, "root": "b"}}
    check_compatible(saved, ok, Path("x.pt"))  # moving the data root is fine
    bad = {"model": {"z_dim": 128, "generator": {"width": 64}}, "data": {"image_size": 16, "root": "a"}}
    with pytest.raises(ConfigError) as err:
        check_compatible(saved, bad, Path("x.pt"))
    assert "model.z_dim (checkpoint: 100, requested: 128)" in str(err.value)
    assert "data.image_size (checkpoint: 32, requested: 16)" in str(err.value)
    assert "root" not in str(err.value)


def test_resuming_with_a_loss_that_needs_another_d_says_so(tmp_path: Path) -> None:
    """loss=wgan_gp sets D's norm to layer through ${loss.d_norm}: the refusal names the loss, not just the key."""
    train(compose_cfg(), tmp_path)
    with pytest.raises(ConfigError) as err:
        train(compose_cfg("loss=wgan_gp", "trainer.steps=6", f"resume={tmp_path}"), tmp_path)
    assert "model.discriminator.norm (checkpoint: batch, requested: layer)" in str(err.value)
    assert "D's norm follows the loss (loss.d_norm) unless set: the checkpoint's D was built for loss=gan" in str(
        err.value
    )


def test_resume_with_a_different_model_is_refused(tmp_path: Path) -> None:
    train(compose_cfg(), tmp_path)
    with pytest.raises(ConfigError, match="model.generator.width"):
        train(compose_cfg("model.generator.width=16", "trainer.steps=6", f"resume={tmp_path}"), tmp_path)


def test_long_error_texts_are_cut_at_a_sentence_or_a_word() -> None:
    from ganlab.errors import first_line

    torch_text = (
        "PytorchStreamReader failed reading zip archive: failed finding central directory. This is an internal miniz "
        "error. If you are seeing this error, there is a high likelihood that your checkpoint file is corrupted."
    )
    assert first_line(torch_text, limit=120) == (
        "PytorchStreamReader failed reading zip archive: failed finding central directory. This is an internal miniz "
        "error."
    )
    assert first_line("word " * 50, limit=22) == "word word word word…"
    assert first_line("first line\nsecond") == "first line"
