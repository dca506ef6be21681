"""The loop: every model x loss trains, TensorBoard holds what the README promises, resume is exact."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.checkpoint import load_checkpoint
from ganlab.errors import ConfigError, RunStopped
from ganlab.train import train
from tests.conftest import IMAGE_TO_IMAGE, compose_cfg, image_conditioned, options, read_events

LOSSES = options("loss")
DATA_FOR_MODEL = {
    "dcgan": ["data=digits", "data.image_size=16"],
    "mlp": ["data=gaussians"],
    "resnet": ["data=digits", "data.image_size=32"],
    "progan": ["data=digits", "trainer.grow.stable_images=8", "trainer.grow.fade_images=8"],
    "stylegan2": ["data=digits"],
    "rnn": ["data=sines", "data.n=64"],
}


# DCGAN trains with every loss by default; the other models with their papers' loss by default (which every
# other loss is checked against on DCGAN), and with every other loss under `-m slow`.
OWN_LOSS = {
    "mlp": "gan",
    "resnet": "hinge",
    "progan": "wgan_gp",
    "stylegan2": "gan",
    "srresnet": "gan",
    "refiner": "gan",
    "unet": "gan",
    "rnn": "gan",
}
TRAINED_ELSEWHERE = {"rnn"}  # tests/test_sequence_training.py trains it by default, with its sequence options
MODEL_LOSS = [
    (model, loss)
    if OWN_LOSS.get(model, loss) == loss and model not in TRAINED_ELSEWHERE
    else pytest.param(model, loss, marks=pytest.mark.slow)
    for model in options("model")
    for loss in LOSSES
]


@pytest.mark.parametrize(("model", "loss"), MODEL_LOSS)
def test_every_model_and_loss_trains(model: str, loss: str, tmp_path: Path) -> None:
    data = image_conditioned(model, tmp_path) if model in IMAGE_TO_IMAGE else DATA_FOR_MODEL[model]
    cfg = compose_cfg(f"model={model}", f"loss={loss}", *data, "trainer.n_critic=2")
    train(cfg, tmp_path)
    scalars, _ = read_events(tmp_path)
    for tag in ("loss/D", "loss/G", "D/real", "D/fake"):
        assert [step for step, _ in scalars[tag]] == [2, 4]
        assert all(math.isfinite(value) for _, value in scalars[tag])
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(p).all() for p in state["G"].values() if p.is_floating_point())


def test_tensorboard_scalars_and_images(tmp_path: Path) -> None:
    cfg = compose_cfg("loss=wgan_gp", "trainer.steps=6", "trainer.log_every=3", "trainer.sample_every=2")
    train(cfg, tmp_path)
    scalars, images = read_events(tmp_path)
    expected = {"loss/D", "loss/G", "loss/gp", "D/real", "D/fake", "D/wasserstein", "lr/G", "lr/D", "perf/images_per_s"}
    assert expected <= set(scalars)
    assert [s for s, _ in scalars["loss/gp"]] == [3, 6]
    assert scalars["lr/D"][0][1] == pytest.approx(2e-4)
    assert all(v > 0 for _, v in scalars["perf/images_per_s"])
    real, fake, w = (dict(scalars[t]) for t in ("D/real", "D/fake", "D/wasserstein"))
    assert w[6] == pytest.approx(real[6] - fake[6], abs=1e-5)
    assert images["samples"] == [2, 4, 6]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step_0000002.png",
        "step_0000004.png",
        "step_0000006.png",
    ]
    assert (tmp_path / "config.yaml").is_file()


def test_two_dimensional_data_gets_a_scatter_picture(tmp_path: Path) -> None:
    from PIL import Image

    train(compose_cfg("model=mlp", "data=gaussians", "data.kind=grid25"), tmp_path)
    _, images = read_events(tmp_path)
    assert images["samples"] == [2, 4]
    picture = torch.tensor(np.array(Image.open(tmp_path / "samples/step_0000004.png")))
    assert picture.shape == (320, 320, 3)
    grey = (picture == torch.tensor([153, 153, 153], dtype=torch.uint8)).all(-1).sum()
    red = (picture == torch.tensor([217, 26, 26], dtype=torch.uint8)).all(-1).sum()
    assert grey > 100 and red > 0  # real points, and generated ones (still bunched near the origin)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return {f"{net}.{k}": v for net in ("G", "D") for k, v in state[net].items()} | {
        f"opt_{net}.{k}.{name}": value
        for net in ("G", "D")
        for k, moments in state[f"opt_{net}"]["state"].items()
        for name, value in moments.items()
    }


@pytest.mark.parametrize("loss", ["gan", "wgan_gp"])
def test_resume_is_bitwise_identical_to_a_straight_run(loss: str, tmp_path: Path) -> None:
    common = [f"loss={loss}", "trainer.log_every=1", "trainer.sample_every=3", "trainer.checkpoint_every=100"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(compose_cfg(*common, "trainer.steps=8"), straight)
    train(compose_cfg(*common, "trainer.steps=4"), split)  # a finished run of 4 steps ...
    train(compose_cfg(*common, "trainer.steps=8", f"resume={split}"), split)  # ... extended to 8

    a, b = _weights(straight), _weights(split)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert load_checkpoint(split / "checkpoints" / "last.pt")["step"] == 8

    scalars_a, images_a = read_events(straight)
    scalars_b, images_b = read_events(split)
    assert [s for s, _ in scalars_b["loss/D"]] == list(range(1, 9))  # every step once
    assert scalars_a["loss/D"] == scalars_b["loss/D"]
    assert images_a == {"samples": [3, 6, 8]}
    assert images_b == {"samples": [3, 4, 6, 8]}  # 4: the picture that ended the first, shorter run


def test_resume_after_a_crash_drops_events_logged_past_the_checkpoint(tmp_path: Path) -> None:
    """A run that logged steps 1..6 but checkpointed at 4 (then died) resumes at 4 and logs 5, 6 once."""
    import shutil

    common = ["trainer.log_every=1", "trainer.checkpoint_every=4", "trainer.sample_every=100"]
    train(compose_cfg(*common, "trainer.steps=6"), tmp_path)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    # Simulate the crash: restore the step-4 checkpoint, as if step 6's save never happened.
    train(compose_cfg(*common, "trainer.steps=4"), tmp_path / "four")
    shutil.copy(tmp_path / "four" / "checkpoints" / "last.pt", ckpt)
    train(compose_cfg(*common, "trainer.steps=6", f"resume={tmp_path}"), tmp_path)
    scalars, _ = read_events(tmp_path)
    assert [s for s, _ in scalars["loss/G"]] == [1, 2, 3, 4, 5, 6]


def test_a_resumed_log_purges_even_when_its_file_name_would_sort_first(tmp_path: Path) -> None:
    """Event files are read in name order: <seconds>.<host>.<pid>.<counter>. Within one second the unpadded
    counter decides and "10" < "9", which once let a resume's purge miss the events it had to drop."""
    from ganlab.run_log import RunLogger

    with RunLogger(tmp_path, start_step=0, total_steps=6) as first:
        for step in range(1, 7):
            first.scalars(step, {"loss/G": float(step)})
    (old,) = tmp_path.glob("events.out.tfevents.*")
    old.rename(old.with_name(".".join(old.name.split(".")[:-1] + ["9"])))  # as if the 9th writer of this process
    with RunLogger(tmp_path, start_step=4, total_steps=6, purge_step=5) as resumed:
        for step in (5, 6):
            resumed.scalars(step, {"loss/G": 10.0 * step})
    scalars, _ = read_events(tmp_path)
    assert scalars["loss/G"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 50.0), (6, 60.0)]


def test_resuming_a_finished_run_does_nothing(tmp_path: Path) -> None:
    train(compose_cfg(), tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").stat().st_mtime_ns
    train(compose_cfg(f"resume={tmp_path}"), tmp_path)
    assert (tmp_path / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_resume_takes_new_hyperparameters_and_a_diverging_run_keeps_its_last_good_checkpoint(
    tmp_path: Path,
) -> None:
    common = ["model=mlp", "data=gaussians", "optimizer=sgd", "trainer.log_every=1"]
    train(compose_cfg(*common, "trainer.steps=4"), tmp_path)
    good = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    # Resuming with an absurd learning rate: the config's rate is used (not the checkpoint's) and blows up.
    bad_lr = ["optimizer.lr_g=1e20", "optimizer.lr_d=1e20", "trainer.steps=20", f"resume={tmp_path}"]
    with pytest.raises(RunStopped, match=r"training diverged at step 5: .*nan.*\(step 4\), is kept") as stopped:
        train(compose_cfg(*common, *bad_lr), tmp_path)
    assert stopped.value.exit_code == 1
    kept = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert kept["step"] == 4
    assert all(torch.equal(kept["G"][k], good["G"][k]) for k in good["G"])


def test_kept_checkpoints(tmp_path: Path) -> None:
    train(compose_cfg("trainer.steps=9", "trainer.checkpoint_every=2", "trainer.keep_every=3"), tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["last.pt", "step_0000003.pt", "step_0000006.pt", "step_0000009.pt"]
    assert load_checkpoint(tmp_path / "checkpoints" / "step_0000003.pt")["step"] == 3


def test_a_checkpoint_step_that_blows_up_the_weights_does_not_overwrite_last(tmp_path: Path) -> None:
    """The losses of a step are computed before its updates: the weights are checked before saving too."""
    common = ["optimizer=sgd", "trainer.checkpoint_every=1"]
    train(compose_cfg(*common, "trainer.steps=4"), tmp_path)
    good = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    huge = ["optimizer.lr_g=3e38", "trainer.steps=5", f"resume={tmp_path}"]
    with pytest.raises(RunStopped, match=r"diverged at step 5: G"):
        train(compose_cfg(*common, *huge), tmp_path)
    kept = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert kept["step"] == 4 and all(torch.equal(kept["G"][k], good["G"][k]) for k in good["G"])


@pytest.mark.parametrize(("loss", "n_critic"), [("wgan", 5), ("gan", 3)])
def test_the_loop_runs_n_critic_d_steps_per_g_step_and_the_loss_hook(loss: str, n_critic: int, tmp_path: Path) -> None:
    overrides = [f"loss={loss}", "trainer.steps=3"] + ([] if loss == "wgan" else [f"trainer.n_critic={n_critic}"])
    train(compose_cfg(*overrides), tmp_path)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    adam_steps = {net: {float(s["step"]) for s in state[f"opt_{net}"]["state"].values()} for net in ("G", "D")}
    assert adam_steps == {"G": {3.0}, "D": {3.0 * n_critic}}
    if loss == "wgan":  # weight clipping ran after the last D step
        weights = [v for k, v in state["D"].items() if "running_" not in k and v.is_floating_point()]
        assert max(w.abs().max().item() for w in weights) <= 0.01


def test_resume_with_another_optimizer_is_refused(tmp_path: Path) -> None:
    train(compose_cfg(), tmp_path)
    with pytest.raises(ConfigError, match=r"optimizer.generator._target_ \(checkpoint: torch.optim.Adam"):
        train(compose_cfg("optimizer=rmsprop", "trainer.steps=8", f"resume={tmp_path}"), tmp_path)


def test_image_folder_streams_through_worker_processes(tmp_path: Path) -> None:
    from tests.conftest import write_png_folder

    write_png_folder(tmp_path / "imgs", n=10)
    cfg = compose_cfg(
        "data=image_folder",
        f"data.root={tmp_path / 'imgs'}",
        "data.image_size=16",
        "data.num_workers=2",
        "data.cache=false",  # auto would cache these ten images
        "trainer.batch_size=4",
    )
    train(cfg, tmp_path / "run")
    scalars, images = read_events(tmp_path / "run")
    assert [s for s, _ in scalars["loss/D"]] == [2, 4] and images["samples"] == [2, 4]
