"""`ganlab train` as users run it: the installed console script (subprocess) for runs, sweeps and resume;
`ganlab.cli.main` in-process for the many bad inputs, which must exit 2 with one readable message."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ganlab import cli
from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main
from tests.conftest import cli_exit, exits_2, ganlab_cli, read_events

FAST = ["debug=fast", "trainer.steps=4"]


def test_the_console_script_skips_the_exits_garbage_collections_and_keeps_the_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frozen: list[bool] = []
    monkeypatch.setattr(cli.gc, "freeze", lambda: frozen.append(True))  # frozen for real, it would stay so here
    monkeypatch.setattr(sys, "argv", ["ganlab", "--version"])
    cli.run()
    assert frozen == [True] and capsys.readouterr().out.startswith("ganlab ")
    monkeypatch.setattr(sys, "argv", ["ganlab", "no-such-command"])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 2 and frozen == [True, True]
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_train_end_to_end(tmp_path: Path) -> None:
    result = ganlab_cli("train", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "outputs").glob("*/*")  # the default run directory: outputs/<date>/<time>
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}", run.relative_to(tmp_path / "outputs").as_posix())
    assert "config" in result.stdout and "step 4/4" in result.stdout  # config tree, plain progress lines
    for name in (
        ".hydra/config.yaml",
        "config.yaml",
        "train.log",
        "checkpoints/last.pt",
        "samples/step_0000002.png",
        "samples/step_0000004.png",
    ):
        assert (run / name).is_file(), name
    scalars, images = read_events(run)
    assert [s for s, _ in scalars["loss/G"]] == [2, 4] and images["samples"] == [2, 4]
    assert "step 4/4" in (run / "train.log").read_text()
    said = result.stdout + result.stderr  # the run says where it went, at the start and the end, when piped
    assert f"run directory: {run}" in said and f"finished at step 4: {run} (ganlab sample run={run})" in said


def test_multirun_sweep_gives_one_directory_per_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # in-process, into the default outputs/ folder of the working directory
    main(["train", "-m", *FAST, "loss=gan,hinge"])
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")  # outputs/multirun/<date>/<time>/<job>
    out = capsys.readouterr().out
    assert f"sweep directory: {sweep.relative_to(tmp_path)} (compare its runs: ganlab report" in out
    assert out.count("├── model") == 1  # the config tree once per sweep, not once per job
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    targets = []
    for job in ("0", "1"):
        state = load_checkpoint(sweep / job / "checkpoints" / "last.pt")
        targets.append(state["config"]["loss"]["_target_"])
        assert read_events(sweep / job)[0]["loss/D"][-1][0] == 4
    assert targets == ["ganlab.losses.gan.NonSaturatingLoss", "ganlab.losses.hinge.HingeLoss"]
    assert (sweep / "multirun.yaml").is_file()


def test_resume_recomposes_the_original_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process: `ganlab.cli.main` is the console script's entry point (test_train_end_to_end runs the script).
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "the run's folder"  # a space and a quote: the stored overrides are quoted to be read back
    main(["train", "debug=fast", "model=mlp", "data=gaussians", "data.kind=grid25", "trainer.steps=4",
          f'hydra.run.dir="{run}"'])  # fmt: skip
    # Only resume= and the new length: model, data and the rest come back from the checkpoint.
    main(["train", f"resume={run}", "trainer.steps=6"])
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 6
    assert state["config"]["data"]["kind"] == "grid25" and state["config"]["model"]["z_dim"] == 8
    assert [s for s, _ in read_events(run)[0]["loss/D"]] == [2, 4, 6]
    assert not Path("outputs").exists()  # continued in place, no new run directory
    # A resumed run resumes again; a new value for a stored group replaces it (and here does not fit).
    main(["train", f'resume="{run}"', "trainer.steps=8"])  # quoted as Hydra takes any value
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 8
    capsys.readouterr()
    err = exits_2(["train", f"resume={run}", "model=dcgan", "trainer.steps=10"], capsys)
    assert "model=dcgan needs image data" in err


def _fails(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    return exits_2(["train", *args], capsys)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=resnet9000"], ["Could not find 'model/resnet9000'", "dcgan", "mlp"]),
        (["loss=wgangp"], ["Available options in 'loss'", "wgan_gp", "hinge"]),
        (["optimizer.lr_g=0"], ["optimizer.lr_g must be a finite number > 0, got 0"]),
        (["optimizer.lr_d=-1e-4"], ["optimizer.lr_d must be a finite number > 0"]),
        (["trainer.n_critic=0"], ["trainer.n_critic must be >= 1"]),
        (["trainer.steps=0"], ["trainer.steps must be >= 1"]),
        (["trainer.steps=many"], ["trainer.steps must be an integer, got 'many'."]),
        (["trainer.compile=maybe"], ["trainer.compile must be true or false, got 'maybe'."]),
        (["augment.ada_kimg=true"], ["augment.ada_kimg must be a number, got 'true'."]),
        (["data=gaussians"], ["model=dcgan needs image data", "model=mlp"]),
        (["data.image_size=48"], ["power of two from 16 to 128", "(1, 48, 48)"]),
        (["loss=wgan_gp", "model.discriminator.norm=batch"], ["BatchNorm in D", "norm=layer"]),
        (["data=image_folder", "data.root=/no/such/folder"], ["data.root=/no/such/folder is not a directory"]),
        (["trainer.device=tpu"], ["trainer.device='tpu'"]),
        (["data=image_folder"], ["data.root must be given (data.root=...)"]),
        (["optimizer.lr_g=abc"], ["optimizer.lr_g must be a finite number > 0, got 'abc'"]),
        (["optimizer.betas_g=0.5"], ["optimizer.betas_g must be a pair [beta1, beta2], got 0.5."]),
        (["optimizer.betas_g=[1.5,0.9]"], ["optimizer.betas_g must be a number in [0, 1) for each beta", "got 1.5."]),
        (["optimizer=sgd", "optimizer.momentum_d=-1"], ["optimizer.momentum_d must be a number in [0, 1), got -1."]),
        (["model=rnn", "data=sines", "model.conditional=true"], ["SinesData has no class labels", "data=csv with"]),
        (
            ["model=srresnet", "data=super_resolution", "data.image_size=16", "model.conditional=true"],
            ["conditioned on an image already; keep model.conditional=false"],
        ),
        (["model.z_dim=0"], ["model.z_dim must be a positive integer, got 0"]),
        (["model.z_dim=abc"], ["model.z_dim must be a positive integer, got 'abc'"]),
        (["model.generator.width=-4"], ["model.generator.width must be a positive integer, got -4"]),
        (["model.discriminator.max_width=0"], ["model.discriminator.max_width must be a positive integer"]),
        (["model=mlp", "data=gaussians", "model.discriminator.depth=0"], ["model.discriminator.depth"]),
        (["loss=wgan", "loss.clip_value=-1"], ["loss.clip_value must be a finite number > 0"]),
        (["loss=wgan_gp", "loss.gp_weight=-10"], ["loss.gp_weight must be a finite number >= 0"]),
        (["loss.n_critic=0"], ["loss.n_critic must be a positive integer"]),
        (["+model.generator.dropout=0.5"], ["DCGANGenerator", "dropout"]),
        (["trainer.keep_every=0"], ["trainer.keep_every must be >= 1"]),
        (
            ["model=[dcgan,mlp]"],
            [
                "model takes the name of one option "
                "(dcgan, mlp, progan, refiner, resnet, rnn, srresnet, stylegan2, unet)"
            ],
        ),
        (["loss=0"], ["loss takes the name of one option"]),
        (["model.generator.width=100000"], ["larger than ganlab builds (at most 65536)"]),
        (["trainer.num_samples=5000"], ["trainer.num_samples must be at most 4096"]),
        # values of the wrong type or out of range that used to train wrongly, diverge or give a traceback
        (["data.xflip=no"], ["data.xflip must be true or false, got 'no'"]),
        (["data.classes=5"], ["data.classes must be a list of class indices", "got 5"]),
        (["data.classes=[1.5]"], ["data.classes must be a list of class indices"]),
        (["data.limit=2.5"], ["data.limit must be a whole number of images", "got 2.5"]),
        (["data.limit=abc"], ["data.limit must be a whole number of images"]),
        (["model.discriminator.freeze=abc"], ["model.discriminator.freeze must be a whole number", "'abc'"]),
        (["optimizer.betas_g=[0.5]"], ["optimizer.betas_g must be a pair [beta1, beta2], got (0.5,)."]),
        (["optimizer.betas_d=[0.5,0.9,0.1]"], ["optimizer.betas_d must be a pair [beta1, beta2]"]),
        (["optimizer.lr_d=inf"], ["optimizer.lr_d must be a finite number > 0, got inf"]),
        (["optimizer.lr_g=null"], ["optimizer.lr_g must be a finite number > 0, got None"]),
        (["optimizer.weight_decay=inf"], ["optimizer.weight_decay must be a finite number >= 0, got inf."]),
        (["optimizer.weight_decay=true"], ["optimizer.weight_decay must be a finite number >= 0, got True."]),
        (["optimizer.betas_g=null"], ["optimizer.betas_g must be a pair [beta1, beta2], got None."]),
        (["optimizer.weight_decay=abc"], ["optimizer.weight_decay must be a finite number >= 0, got 'abc'."]),
        (
            ["optimizer=rmsprop", "optimizer.alpha=2"],
            ["optimizer.alpha must be a number in [0, 1] (the squared gradients'"],
        ),
        (["loss.r1=inf"], ["loss.r1 must be a finite number >= 0 (a penalty weight gamma; 0: off), got inf"]),
        (["loss.r1=abc"], ["loss.r1 must be a finite number >= 0", "'abc'"]),
        (["augment.instance_noise=inf"], ["augment.instance_noise must be a finite number >= 0 (a std), got inf"]),
        (["loss=wgan_gp", "loss.drift=abc"], ["loss.drift must be a number, got 'abc'"]),
        (["loss.label_smoothing=1"], ["loss.label_smoothing must be a number in [0, 1)"]),
        # a value against the annotation of the class argument it goes to (targets.check_argument_types)
        (["data.image_size=abc"], ["data.image_size must be an integer, got 'abc'"]),
        (["model=rnn", "data=sines", "data.seed=1.5"], ["data.seed must be an integer, got 1.5"]),
        (["model.generator.width=1.5"], ["model.generator.width must be an integer, got 1.5"]),
        (["model=mlp", "data=gaussians", "data.kind=5"], ["data.kind must be a string, got 5"]),
        # deletions and ++ (Hydra's "delete" and "set or add")
        (["~seed"], ["~seed: seed is read by the run, so it cannot be deleted; set it instead (seed=...)"]),
        (["~trainer.ema"], ["trainer.ema is read by the run, so it cannot be deleted"]),
        (["~optimizer.lr_g"], ["optimizer.lr_g is read by the run"]),
        (["~model"], ["~model: every run needs a model; choose one with model=<option>"]),
        (["+trainer.steps=3"], ["set it without the +: trainer.steps=3."]),
        (["++optimizer.nope=1"], ["nothing reads optimizer.nope"]),
    ],
)
def test_bad_input_exits_2_with_a_message(
    args: list[str], expected: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    err = _fails([*FAST, *args, f"hydra.run.dir={run}"], capsys)
    for text in expected:
        assert text in err
    assert not run.exists()  # refused before the first step: no half-made run directory


def test_missing_torchvision_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(
        [*FAST, "data=mnist", f"data.root={tmp_path}", "data.download=false", f"hydra.run.dir={tmp_path / 'run'}"],
        capsys,
    )
    assert "data=mnist: the dataset files are not under" in err and "data.download=true" in err


def test_bad_resume_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no such run directory or checkpoint" in _fails([f"resume={tmp_path / 'gone'}"], capsys)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    assert "not a readable ganlab checkpoint" in _fails([f"resume={junk}"], capsys)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert "is not a ganlab checkpoint" in _fails([f"resume={foreign}"], capsys)
    assert "resume the jobs of a sweep one at a time" in _fails(["-m", f"resume={foreign}"], capsys)
    kept = tmp_path / "kept" / "checkpoints"  # last.pt gone, trainer.keep_every's step checkpoints left
    kept.mkdir(parents=True)
    for step in (2, 4):
        (kept / f"step_000000{step}.pt").write_bytes(b"")
    err = _fails([f"resume={tmp_path / 'kept'}"], capsys)
    assert "keeps 2 step checkpoint(s); give one" in err and str(kept / "step_0000004.pt") in err


def test_resume_with_a_different_shape_names_the_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    main(["train", *FAST, f"hydra.run.dir={run}"])
    before = (run / "checkpoints" / "last.pt").read_bytes()
    launch = (run / ".hydra" / "overrides.yaml").read_text()
    err = _fails([f"resume={run}", "data.image_size=32", "model.z_dim=16", "trainer.steps=8"], capsys)
    assert "data.image_size (checkpoint: 16, requested: 32)" in err and "model.z_dim" in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before  # the run is untouched
    assert (run / ".hydra" / "overrides.yaml").read_text() == launch
    assert (run / "config.yaml").is_file() and (run / "samples").is_dir()


def test_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "ganlab train" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["trian"])
    assert exit_info.value.code == 2 and "unknown command 'trian'" in capsys.readouterr().err


def test_version_and_each_commands_help(capsys: pytest.CaptureFixture[str]) -> None:
    import ganlab

    main(["--version"])
    assert capsys.readouterr().out == f"ganlab {ganlab.__version__}\n"
    for command, option in [
        ("sample", "interpolate="),
        ("eval", "features="),
        ("export", "format="),
        ("report", "metric="),
    ]:
        main([command, "--help"])  # not "expected key=value, got '--help'"
        out = capsys.readouterr().out
        assert f"ganlab {command}" in out and f"  {option}" in out, out
    main(["export", "-h"])
    assert "run=     required; run directory" in capsys.readouterr().out


def test_a_bad_option_exits_2_with_hydras_list_of_options(capsys: pytest.CaptureFixture[str]) -> None:
    # In-process: the console script is this same main() (test_train_end_to_end and the SIGTERM test run it).
    assert "Available options in 'loss'" in exits_2(["train", "loss=nope"], capsys)


def test_a_sweep_that_cannot_compose_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert "Available options in 'loss'" in exits_2(["train", "-m", *FAST, "loss=gan,nope"], capsys)
    assert not (tmp_path / "outputs").exists() or list((tmp_path / "outputs").rglob("*")) == [
        tmp_path / "outputs" / "multirun"
    ]


def test_sigterm_checkpoints_at_a_step_boundary_and_resume_auto_finishes_the_run(tmp_path: Path) -> None:
    """What a cluster does on pre-emption: SIGTERM, then the same command again (a requeue) with resume=auto.
    The run stops cleanly between steps and continues to the same final step."""
    run = tmp_path / "run"
    args = [
        "debug=fast",
        "trainer.steps=60",
        "resume=auto",
        "trainer.log_every=5",
        "trainer.checkpoint_every=100000",
        "trainer.sample_every=100000",
        f"hydra.run.dir={run}",
    ]
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("ganlab")), "train", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until it is training, then pre-empt it
        if "step 10/" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM at step" in err and f"resume={run}" in err
    stopped_at = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert f"stopped by SIGTERM at step {stopped_at}" in (run / "train.log").read_text()
    assert 10 <= stopped_at < 60

    main(["train", *args])  # the same command again (in this process: the console script ran above)
    assert f"resumed {run / 'checkpoints' / 'last.pt'} at step {stopped_at}" in (run / "train.log").read_text()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 60
    steps = [s for s, _ in read_events(run)[0]["loss/D"]]
    assert steps == sorted(set(steps)) and steps[-1] == 60 and stopped_at in steps


@pytest.mark.parametrize(
    "override, says",
    [
        (
            "los=hinge",
            "los: the configuration has no such key, so nothing would read it. Did you mean the group `loss=",
        ),
        ("+los=hinge", "+los=hinge: nothing reads los, so it would be ignored. Did you mean the group `loss="),
        ("lr_d=1e-4", "Did you mean `optimizer.lr_d`?"),
        ("+lr_d=1e-4", "+lr_d=1e-4: nothing reads lr_d, so it would be ignored. Did you mean `optimizer.lr_d`?"),
        ("data.kind=ring8", "`data.kind` belongs to data=gaussians: choose one, e.g. `data=gaussians data.kind=...`"),
        ("trainer.stepz=3", "Did you mean `trainer.steps`?"),
        ("+trainer.steps=3", "trainer.steps exists already; set it without the +: trainer.steps=3."),
        ("+optimizer.lr_x=1", "nothing reads optimizer.lr_x"),
    ],
)
def test_unknown_keys_are_refused_with_the_key_meant(
    override: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not Hydra's advice to add the key with +, which then trains with the key ignored and exits 0."""
    err = exits_2(["train", *FAST, override, f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert says in err and "To append to your config" not in err
    assert not (tmp_path / "run").exists()


def test_keys_added_inside_a_class_node_still_reach_the_class(capsys: pytest.CaptureFixture[str]) -> None:
    from ganlab.unknown_keys import check_keys

    check_keys(["+model.generator.dropout=0.5", "+data.synthetic_options.n=100", "+loss.x=1", "+hydra.a=1"])
    check_keys(["+stabilizers.mine._target_=mylab.Mine", "+optimizer.generator.fused=false"])
    # `++` sets a key ganlab has (as without it); `~` deletes what a class takes (its default) or a defaults entry
    check_keys(["++trainer.steps=3", "++optimizer.lr_g=1e-3", "++model.z_dim=4", "++loss.r1=0.1"])
    check_keys(["~loss.label_smoothing", "~model.generator.dropout", "~stabilizers", "~hydra/launcher"])


def test_sweep_functions_over_groups_reach_hydra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["train", "-m", *FAST, "loss=glob(wgan_*)", "optimizer=choice(rmsprop)", f"hydra.sweep.dir={tmp_path / 's'}"])
    state = load_checkpoint(tmp_path / "s" / "0" / "checkpoints" / "last.pt")
    assert state["config"]["loss"]["_target_"].endswith("WGANGPLoss")
    assert state["config"]["optimizer"]["generator"]["_target_"] == "torch.optim.RMSprop"
    assert not (tmp_path / "s" / "1").exists()
    assert "selects none of loss (gan, hinge," in exits_2(["train", "-m", *FAST, "loss=glob(zz*)"], capsys)
    assert "nope is not an option of loss" in exits_2(["train", "-m", *FAST, "loss=choice(gan,nope)"], capsys)


def test_typos_are_answered_before_torch_is_imported(tmp_path: Path) -> None:
    """A mistyped key costs a second, not torch's and Hydra's start-up (about 5 s on a 2-core machine)."""
    script = """
import sys
from ganlab.cli import main
for argv in (["train", "los=hinge"], ["train", "trainer.stepz=3"], ["sample", "runn=x"],
             ["eval", "run=x", "data.image_size=3"], ["export", "run=x"]):
    try:
        main(argv)
    except SystemExit as end:
        assert end.code == 2, argv
print("torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]
    assert done.stderr.count("ganlab: error:") == 5


def test_a_run_dir_that_is_a_file_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    err = exits_2(["train", *FAST, f"hydra.run.dir={taken}"], capsys)
    assert f"{taken} is a file, and the run needs a folder there" in err and "File exists" not in err
    assert taken.read_text() == "mine"


class _SecondCtrlCWhileWriting:
    """A checkpoint's file whose first write gets Ctrl-C twice, for real, from this process: the first asks the
    loop to stop, the second interrupts torch.save there and then."""

    def __init__(self, f: Any) -> None:
        self.f, self.sent = f, False

    def write(self, data: Any) -> int:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return self.f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def test_a_second_ctrl_c_inside_a_checkpoint_write_is_an_interruption_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Ctrl-C 10 ms apart during a checkpoint write gave KeyboardInterrupt and torch's RuntimeError ("unexpected
    pos") tracebacks, exit 1, and a status.json that said crashed."""
    import ganlab.checkpoint
    from ganlab.atomic_write import atomic_write
    from ganlab.status import read_status

    writes = []

    def interrupted_third_write(path: Path, write: Any) -> None:
        writes.append(path)
        if len(writes) == 3:
            return atomic_write(path, lambda f: write(_SecondCtrlCWhileWriting(f)))
        return atomic_write(path, write)

    monkeypatch.setattr(ganlab.checkpoint, "atomic_write", interrupted_third_write)
    run = tmp_path / "run"
    try:
        code, err = cli_exit(["train", "debug=fast", "trainer.steps=20", "trainer.checkpoint_every=1",
                              f"hydra.run.dir={run}"], capsys)  # fmt: skip
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C escaped as a KeyboardInterrupt")
    assert code == 128 + signal.SIGINT and "Traceback" not in err, err
    assert f"stopped at once by a second Ctrl-C at step 3; the checkpoint of step 2 is kept. Continue with: ganlab " \
           f"train resume={run}" in err  # fmt: skip
    assert read_status(run)["state"] == "interrupted"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    assert not list((run / "checkpoints").glob(".*tmp*"))


CTRL_C_WHILE_BUILDING = """
import os, signal, sys
import ganlab.train
from ganlab import cli

real_build = ganlab.train.build

def build_then_ctrl_c(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt at the next line
    return real_build(*args, **kwargs)

ganlab.train.build = build_then_ctrl_c
sys.argv = ["ganlab", "train", "debug=fast", "hydra.run.dir=" + sys.argv[1]]
cli.run()
"""


def test_ctrl_c_before_training_begins_exits_130_in_one_line_and_leaves_no_folder(tmp_path: Path) -> None:
    """Ctrl-C while the run was being built (before the loop, which stops at a step boundary) gave Python's
    KeyboardInterrupt traceback, death by the signal, and a run directory holding only Hydra's files."""
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_BUILDING, str(run)], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 128 + signal.SIGINT, result.stderr
    assert result.stderr.endswith("ganlab: interrupted by Ctrl-C.\n") and "Traceback" not in result.stderr
    assert not run.exists()
