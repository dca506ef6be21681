"""Sweeps beyond Hydra's basic launcher, run for real: joblib's parallel jobs, an Optuna search from a shipped
hparams_search preset, the SLURM launcher config (as far as it goes without SLURM), one GPU per parallel job, and
a sweep re-run with resume=auto after an interruption."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main
from ganlab.config import CONF_DIR, CONFIG_NAME
from ganlab.errors import RunInterrupted
from ganlab.jobs.launchers import JobFailed
from ganlab.jobs.run_lock import LOCK_FILE
from ganlab.jobs.signals import SweepStops
from ganlab.overrides import is_multirun
from ganlab.status import FINISHED, STATUS_FILE, read_status
from tests.conftest import exits_2, ganlab_cli, options, read_events

TOY = ["debug=fast", "model=mlp", "data=gaussians"]
SEARCHED = {"optimizer.lr_g", "optimizer.lr_d", "optimizer.betas_g", "trainer.n_critic", "loss"}


def _run(argv: list[str]) -> int:
    """`ganlab <argv>` in this process; its exit code (0 when it returns)."""
    try:
        main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


@pytest.mark.slow  # 10 s: two worker processes each start torch; the in-process sweeps cover the rest
def test_joblib_runs_the_jobs_in_parallel_processes(tmp_path: Path) -> None:
    """Two jobs train in two worker processes; a third fails there, and its mistake travels back to the command
    (one message, exit code 2, not a silent 0). Its device, ${job_gpu:4}, resolves in the worker to cuda:<2 mod 4>,
    which this machine does not have."""
    sweep = tmp_path / "sweep"
    result = ganlab_cli(
        "train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TOY, "trainer.device=cpu,cpu,${job_gpu:4}",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "ganlab: error: trainer.device=cuda:2 but no CUDA device is available" in result.stderr
    assert "Traceback" not in result.stderr
    records = [read_status(sweep / job) for job in ("0", "1")]
    assert [r["state"] for r in records] == [FINISHED, FINISHED]
    assert records[0]["pid"] != records[1]["pid"]  # a worker process each
    for job in ("0", "1"):
        assert load_checkpoint(sweep / job / "checkpoints" / "last.pt")["step"] == 4
        assert [s for s, _ in read_events(sweep / job)[0]["loss/D"]] == [2, 4]
    assert not (sweep / "2").exists()  # refused before its first step: nothing left behind


def test_the_sweep_directory_is_fixed_before_hydra_starts_as_conf_train_yaml_would_name_it() -> None:
    import yaml

    from ganlab.config import CONF_DIR
    from ganlab.jobs.train_job import SWEEP_DIR_PATTERN, pin_sweep_dir

    configured = yaml.safe_load((CONF_DIR / "train.yaml").read_text())["hydra"]["sweep"]["dir"]
    assert configured.replace("${now:", "").replace("}", "") == SWEEP_DIR_PATTERN
    args, folder = pin_sweep_dir(["-m", "loss=gan,hinge"])
    assert args == ["-m", "loss=gan,hinge", f"hydra.sweep.dir={folder}"] and folder.startswith("outputs/multirun/")
    assert pin_sweep_dir(["-m", "hydra.sweep.dir=/x/y"]) == (["-m", "hydra.sweep.dir=/x/y"], "/x/y")


def test_job_gpu_gives_each_job_of_a_batch_a_gpu_of_its_own(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The README's one-GPU-per-job recipe, checked on a CPU: each job's trainer.device resolves to cuda:<job mod 2>
    (the jobs then stop, since this machine has no GPU, and say which device they were given)."""
    code = _run(["train", "-m", *TOY, "trainer.device=${job_gpu:2}", "hydra.sweeper.max_batch_size=2", "seed=0,1,2",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    devices = [line.split("trainer.device=")[1].split()[0] for line in err.splitlines() if "trainer.device=" in line]
    assert devices == ["cuda:0", "cuda:1"]  # jobs 0 and 2 share cuda:0 (one message), in different batches
    assert not (tmp_path / "sweep" / "0").exists()  # refused before the first step: nothing left behind


@pytest.mark.parametrize("preset", options("hparams_search"))
def test_every_hparams_search_preset_composes(preset: str) -> None:
    overrides = [f"hparams_search={preset}", "debug=fast"]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        hydra_cfg = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True).hydra
        cfg = compose(CONFIG_NAME, overrides=overrides)
    sweeper = hydra_cfg.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert set(sweeper.params) == SEARCHED and "log" in sweeper.params["optimizer.lr_g"]
    assert hydra_cfg.mode.name == "MULTIRUN" and sweeper.sampler.seed is not None
    assert list(cfg.optimizer.betas_d) == list(cfg.optimizer.betas_g)  # one searched pair for both networks
    points = cfg.data._target_.endswith("GaussiansData")
    assert cfg.trainer.monitor == ("kl_all" if points else "fid")  # what the evaluation computes for this data


class RecordReturns(Callback):
    """What each job hands the sweeper (Hydra calls this in the job's process: here, the test's own)."""

    returned: list[tuple[int, Any]] = []

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        RecordReturns.returned.append((config.hydra.job.num, job_return.return_value))


def _search(sweep: Path, steps: int, trials: int) -> list[str]:
    return ["train", "hparams_search=ring8_optuna", *TOY, f"hydra.sweeper.n_trials={trials}", f"trainer.steps={steps}",
            "trainer.eval_n=500", "trainer.log_every=10", "trainer.checkpoint_every=10", "trainer.sample_every=1000",
            "+hydra.callbacks.record._target_=tests.test_sweeps.RecordReturns", f"hydra.sweep.dir={sweep}"]  # fmt: skip


def test_optuna_search_on_ring8_minimises_the_returned_kl(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    RecordReturns.returned = []
    assert _run([*_search(sweep, steps=4, trials=2), "resume=auto"]) == 0
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    kl = {}
    for job in ("0", "1"):
        state = load_checkpoint(sweep / job / "checkpoints" / "last.pt")
        kl[job] = state["metrics"]["kl_all"]  # the preset's monitor: what each trial hands the sweeper
        trial = dict(o.split("=", 1) for o in state["overrides"] if o.split("=", 1)[0] in SEARCHED)
        assert set(trial) == SEARCHED  # each trial got its own draw of every searched value
        assert state["config"]["loss"]["_target_"].split(".")[2] == trial["loss"]
    assert sorted(RecordReturns.returned) == [(int(job), value) for job, value in kl.items()]
    assert results["best_value"] == min(kl.values())
    assert set(results["best_params"]) == SEARCHED


@pytest.mark.slow  # three real multiruns (3.5 s)
def test_a_sweep_rerun_with_resume_auto_skips_finished_jobs_and_continues_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A search stopped in its second job (SIGTERM, as SLURM does) and then re-run with the identical command:
    job 0 is left as it was and still hands the sweeper its KL; job 1 continues from its checkpoint to the end."""
    sweep, steps = tmp_path / "sweep", 40
    argv = [*_search(sweep, steps=steps, trials=2), "resume=auto"]

    def preempt() -> None:
        deadline = time.monotonic() + 120
        while not (sweep / "1" / STATUS_FILE).is_file() and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGTERM)

    RecordReturns.returned = []
    thread = threading.Thread(target=preempt, daemon=True)
    thread.start()
    assert _run(argv) == 128 + signal.SIGTERM
    thread.join()
    err = capsys.readouterr().err
    assert "sweep stopped by SIGTERM: each running job saved a checkpoint" in err
    assert f"Re-run the same command with resume=auto hydra.sweep.dir={sweep}:" in err
    first_kl = load_checkpoint(sweep / "0" / "checkpoints" / "last.pt")["metrics"]["kl_all"]
    assert RecordReturns.returned == [(0, first_kl)]
    stopped_at = load_checkpoint(sweep / "1" / "checkpoints" / "last.pt")["step"]
    assert 0 < stopped_at < steps and read_status(sweep / "1")["state"] == "interrupted"
    job0 = _snapshot(sweep / "0")

    RecordReturns.returned = []
    assert _run(argv) == 0
    assert _snapshot(sweep / "0") == job0  # events, checkpoints, samples, status.json: untouched
    assert f"the run is already at step {steps} of {steps}" in (sweep / "0" / "train.log").read_text()
    last = load_checkpoint(sweep / "1" / "checkpoints" / "last.pt")
    assert last["step"] == steps and read_status(sweep / "1")["state"] == FINISHED
    assert f"at step {stopped_at}" in (sweep / "1" / "train.log").read_text().split("resumed")[-1].splitlines()[0]
    logged = [s for s, _ in read_events(sweep / "1")[0]["loss/D"]]
    assert logged == sorted(set(logged)) and set(range(10, steps + 1, 10)) <= set(logged)  # each step once
    assert RecordReturns.returned == [(0, first_kl), (1, last["metrics"]["kl_all"])]  # job 0's value again, for Optuna
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == min(first_kl, last["metrics"]["kl_all"])


@pytest.mark.parametrize(
    ("target", "signum"),
    [
        # 10 s each (worker processes that start torch): test_sweep_stops_hands_a_signal_on_to_the_workers checks
        # the hand-over in seconds
        pytest.param("the main process", signal.SIGTERM, marks=pytest.mark.slow),  # `kill <pid>`
        pytest.param("the process group", signal.SIGINT, marks=pytest.mark.slow),  # Ctrl-C in a terminal
    ],
)
def test_a_signal_stops_a_joblib_sweep_with_a_checkpoint_per_job(target: str, signum: int, tmp_path: Path) -> None:
    """Three workers for two jobs, so one is idle: whichever processes the signal reaches, every job stops at a
    step boundary with its checkpoint, no worker trains on as an orphan or dies and breaks the pool, and the
    command ends with 128 + signal and says how to continue."""
    sweep = tmp_path / "sweep"
    command = [str(Path(sys.executable).with_name("ganlab")), "train", "-m", "hydra/launcher=joblib",
               "hydra.launcher.n_jobs=3", *TOY, "trainer.steps=100000", "loss=gan,hinge",
               f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not all((sweep / job / STATUS_FILE).is_file() for job in ("0", "1")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        workers = _loky_workers(proc.pid)
        assert len(workers) == 3
        if target == "the main process":
            proc.send_signal(signum)
        else:
            os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, err
    assert f"sweep stopped by {signal.Signals(signum).name}" in err and "resume=auto" in err
    assert "Traceback" not in err
    for job in ("0", "1"):
        record = read_status(sweep / job)
        assert record["state"] == "interrupted"
        assert load_checkpoint(sweep / job / "checkpoints" / "last.pt")["step"] == record["step"] > 0
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "a worker outlived the sweep"


def _loky_workers(pid: int) -> list[int]:
    """The joblib (loky) worker processes that `pid` started, found through Linux's /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            worker = b"LokyProcess" in (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == pid and worker:
            found.append(int(stat.parent.name))
    return found


def _snapshot(run: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file a job wrote itself (Hydra rewrites .hydra/ and appends to
    train.log for each launch, and each launch writes its pid into the directory's lock file)."""
    return {
        str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in run.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.name not in ("train.log", LOCK_FILE)
    }


def test_a_sweep_job_does_not_continue_another_jobs_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """resume=auto in a sweep whose command changed: job 0's folder holds a run with other overrides, which it must
    not train on as its own."""
    sweep = tmp_path / "sweep"
    assert _run(["train", "-m", *TOY, "loss=gan", f"hydra.sweep.dir={sweep}", "resume=auto"]) == 0
    before = _snapshot(sweep / "0")
    record = {p.name: p.read_bytes() for p in (sweep / "0" / ".hydra").iterdir()}
    assert _run(["train", "-m", *TOY, "loss=hinge", f"hydra.sweep.dir={sweep}", "resume=auto"]) == 2
    err = capsys.readouterr().err
    assert "holds a checkpoint of another job (overrides that differ: loss=gan, loss=hinge)" in err
    assert _snapshot(sweep / "0") == before
    # Hydra rewrote the job's .hydra/ before the job was refused; the record of how it was launched is put back.
    assert {p.name: p.read_bytes() for p in (sweep / "0" / ".hydra").iterdir()} == record
    # Raising trainer.steps extends the same sweep.
    assert _run(["train", "-m", *TOY, "loss=gan", f"hydra.sweep.dir={sweep}", "resume=auto", "trainer.steps=6"]) == 0
    assert load_checkpoint(sweep / "0" / "checkpoints" / "last.pt")["step"] == 6


def test_the_slurm_launcher_config_asks_for_a_gpu_time_memory_and_requeue(tmp_path: Path) -> None:
    """No SLURM here: compose hydra/launcher=slurm and let submitit write the sbatch script it would submit.
    (submitit's SLURM executor only checks that an `srun` is on PATH; a stand-in satisfies that.)"""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                              f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)  # fmt: skip
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.partition) == (1, 1, "gpu")
    assert launcher.timeout_min > 0 and launcher.mem_gb > 0 and launcher.max_num_timeout > 0
    stand_in = tmp_path / "bin" / "srun"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    os.environ["PATH"] = f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}"
    try:  # the parameters as hydra-submitit-launcher's SlurmLauncher.launch hands them to submitit
        params = OmegaConf.to_container(launcher, resolve=False)
        executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="slurm",
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))  # fmt: skip
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        skip = {"_target_", "submitit_folder", "name"}
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items() if k not in skip})
        sbatch = executor._executor._make_submission_file_text("python -m submitit.core._submit", "uid")
    finally:
        os.environ["PATH"] = os.environ["PATH"].split(os.pathsep, 1)[1]
    for flag in ("--partition=gpu", "--gpus-per-node=1", "--time=240", "--mem=32GB", "--signal=USR2@120",
                 "--requeue"):  # fmt: skip
        assert f"#SBATCH {flag}\n" in sbatch, flag


class _HidePlugins:
    """An import finder that finds no Hydra plugin, as on a plain install."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.startswith("hydra_plugins.hydra_"):
            raise ModuleNotFoundError(name)


def test_a_missing_plugin_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "meta_path", [_HidePlugins(), *sys.meta_path])
    for name in [n for n in sys.modules if n.startswith("hydra_plugins.hydra_")]:
        monkeypatch.delitem(sys.modules, name)
    for arg, extra in (("hparams_search=ring8_optuna", "sweep"), ("hydra/launcher=joblib", "sweep"),
                       ("hydra/launcher=slurm", "slurm"), ("hydra/launcher=submitit_local", "slurm")):  # fmt: skip
        err = exits_2(["train", "-m", arg], capsys)
        assert err.endswith(f'{arg} needs a Hydra plugin that is not installed: pip install "ganlab[{extra}]".\n')


def test_joblib_with_no_jobs_is_refused_before_the_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """joblib raised "n_jobs == 0 in Parallel has no meaning" with a traceback after the sweep was set up."""
    sweep = tmp_path / "sweep"
    argv = ["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", *TOY, f"hydra.sweep.dir={sweep}"]
    assert "hydra.launcher.n_jobs=0 runs no job" in exits_2(argv, capsys)
    assert not sweep.exists()


LOCAL_LAUNCHER = """\
# submitit's local executor, which acts out a SLURM time limit: SIGUSR2 30 s before timeout_min runs out, and a
# restart of the job when it asks to be requeued.
_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher
submitit_folder: ${hydra.sweep.dir}/.submitit/%j
timeout_min: 1
max_num_timeout: 5
tasks_per_node: 1
nodes: 1
name: ${hydra.job.name}
"""


@pytest.mark.slow
def test_a_job_near_its_time_limit_checkpoints_then_submitit_requeues_it(tmp_path: Path) -> None:
    """The SLURM path without SLURM (about a minute): SIGUSR2 reaches the job 30 s into its attempt; ganlab stops at a
    step boundary with a checkpoint, submitit requeues the job, and the requeued job continues from that step
    (resume=auto). The sweep is then ended here: how far the job gets in 30 s depends on the machine."""
    (tmp_path / "conf" / "hydra" / "launcher").mkdir(parents=True)
    (tmp_path / "conf" / "hydra" / "launcher" / "local_time_limit.yaml").write_text(LOCAL_LAUNCHER)
    sweep = tmp_path / "sweep"
    argv = ["train", "-m", "hydra/launcher=local_time_limit", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *TOY,
            "trainer.steps=1000000", "trainer.log_every=50", "trainer.checkpoint_every=100000", "resume=auto",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    exe = Path(sys.executable).with_name("ganlab")
    proc = subprocess.Popen([str(exe), *argv], cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "2"})  # fmt: skip
    log, stopped, deadline = sweep / "0" / "train.log", None, time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text() if log.is_file() else ""
            if stopped is None and "stopped by SIGUSR2 at step " in text:
                stopped = int(text.split("stopped by SIGUSR2 at step ")[1].split()[0])
                first_pid = read_status(sweep / "0")["pid"]
            after = text.split("stopped by SIGUSR2")[1] if stopped is not None else ""
            if f"at step {stopped}\n" in after and _progress(after.split(f"at step {stopped}\n", 1)[1]) > stopped:
                break  # resumed where it stopped, and trained on
            time.sleep(0.2)
        else:
            pytest.fail(f"no stop and resume in time ({proc.poll()=}):\n{log.read_text() if log.is_file() else ''}")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep started here: the CLI, submitit's controller, the job
        proc.wait()
    assert read_status(sweep / "0")["pid"] != first_pid  # submitit started the job anew: it was requeued
    assert load_checkpoint(sweep / "0" / "checkpoints" / "last.pt")["step"] >= stopped


def _progress(log_text: str) -> int:
    """The last step of the progress lines ("step 150/1000000 | ...") in a piece of train.log; 0 if none."""
    steps = [int(line.split("step ")[1].split("/")[0]) for line in log_text.splitlines() if " - step " in line]
    return steps[-1] if steps else 0


def test_a_stop_travels_between_processes_with_its_message_and_exit_code() -> None:
    # submitit hands a job's exception back to the main process pickled
    stop = pickle.loads(pickle.dumps(RunInterrupted("stopped by SIGTERM at step 7", signal.SIGTERM)))
    assert str(stop) == "stopped by SIGTERM at step 7" and stop.exit_code == 143
    # joblib and submitit hand a failed job back the same way: its one message and its exit code
    failed = pickle.loads(pickle.dumps(JobFailed("error: loss.r1 is a penalty weight", 2)))
    assert str(failed) == "error: loss.r1 is a penalty weight" and failed.exit_code == 2


def test_the_slurm_launcher_without_slurm_says_where_to_run_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun here (nor anywhere on this machine)
    err = exits_2(["train", "-m", "hydra/launcher=slurm", *TOY, f"hydra.sweep.dir={tmp_path / 'sweep'}"], capsys)
    assert "this machine has no srun on its PATH: run the command on a login node" in err
    assert not (tmp_path / "sweep").exists()


def test_sweep_stops_keeps_an_ignored_ctrl_c_ignored_and_knows_a_multirun_by_hydra_mode() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a command started with & by a script
    try:
        with SweepStops() as stops:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here: no KeyboardInterrupt
        assert stops.signum is None and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert is_multirun(["hydra.mode=MULTIRUN"]) and is_multirun(["-m"]) and not is_multirun(["seed=1"])


def _wait_for_sigterm(ready: object) -> None:
    """A stand-in for a sweep's worker process: it reports SIGTERM by its exit code."""
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(100 + signum))
    ready.set()  # type: ignore[attr-defined]
    time.sleep(60)
    os._exit(1)


def test_sweep_stops_hands_a_signal_on_to_the_workers() -> None:
    """A SIGTERM to the sweep's main process (`kill <pid>`) reaches its worker processes as SIGTERM, and the main
    process only remembers it: it goes on to wait for its workers' checkpoints."""
    import multiprocessing

    from ganlab.jobs.signals import pending_stop

    context = multiprocessing.get_context("fork")
    ready = [context.Event() for _ in range(2)]
    workers = [context.Process(target=_wait_for_sigterm, args=(event,)) for event in ready]
    for worker in workers:
        worker.start()
    try:
        assert all(event.wait(30) for event in ready)
        with SweepStops() as stops:
            os.kill(os.getpid(), signal.SIGTERM)  # handled here: the process is still alive after this line
            for worker in workers:
                worker.join(30)
            assert pending_stop() == signal.SIGTERM  # no later job of this sweep starts
        assert [worker.exitcode for worker in workers] == [100 + signal.SIGTERM] * 2
        assert stops.signum == signal.SIGTERM and stops.name == "SIGTERM" and pending_stop() is None
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()


@pytest.mark.slow
def test_a_stopped_joblib_sweep_leaves_no_stop_behind_for_the_next_sweep_in_the_process(tmp_path: Path) -> None:
    """ganlab.cli.main called twice in one process (as tests and notebooks do): loky would reuse the first
    sweep's workers, which remember its stop; each sweep gets workers of its own."""
    argv = ["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TOY, "loss=gan,hinge"]
    first = tmp_path / "first"

    def stop_when_training() -> None:
        deadline = time.monotonic() + 120
        while not all((first / j / STATUS_FILE).is_file() for j in "01") and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # reaches SweepStops, which passes it on to the workers

    thread = threading.Thread(target=stop_when_training, daemon=True)
    thread.start()
    assert _run([*argv, "trainer.steps=100000", f"hydra.sweep.dir={first}"]) == 128 + signal.SIGTERM
    thread.join()
    assert all(read_status(first / j)["state"] == "interrupted" for j in "01")
    second = tmp_path / "second"
    assert _run([*argv, f"hydra.sweep.dir={second}"]) == 0
    assert all(read_status(second / j)["state"] == FINISHED for j in "01")


@pytest.mark.parametrize(
    "sweep, says",
    [
        ("optimizer.lr_d=range(0,1,0)", "optimizer.lr_d=range(0,1,0): range() arg 3 must not be zero; give a step"),
        ("seed=range(3,1)", "seed=range(3,1) selects no value: range(start, stop, step) counts from start towards"),
        ("seed=glob(*)", "seed=glob(*): glob() picks options of a config group (model, loss, optimizer, data, ...)"),
        ("hydra.sweeper.max_batch_size=0", "hydra.sweeper.max_batch_size=0: give how many jobs to launch at once"),
    ],
)
def test_sweeps_that_would_run_no_job_or_crash_in_hydra_are_refused(
    sweep: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A step of 0 and max_batch_size=0 gave a ValueError and an AssertionError traceback; an empty range and a glob
    over a plain value launched 0 jobs and exited 0."""
    err = exits_2(["train", "-m", *TOY, "seed=0,1", sweep, f"hydra.sweep.dir={tmp_path / 'sweep'}"], capsys)
    assert says in err
    assert not (tmp_path / "sweep").exists()


def test_an_optuna_search_whose_every_trial_fails_says_so_and_names_each_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every trial diverged: the sweeper's study.best_trial raised "No trials are completed yet" with a traceback,
    each trial was said to have returned a non-float, and the two alike divergences were printed once, unnamed."""
    sweep = tmp_path / "sweep"
    search = _search(sweep, steps=2, trials=2)
    search.remove("+hydra.callbacks.record._target_=tests.test_sweeps.RecordReturns")
    code = _run([*search, "trainer.on_nan=stop", "loss=gan", "optimizer.lr_d=tag(log, interval(1e20,1e30))"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.startswith("ganlab: ")]  # after Optuna's own
    assert lines[0] == "ganlab: error: no trial of the search finished, so it has no best settings:"
    assert lines[1].startswith("ganlab: jobs 0, 1: training diverged at step 1")
    assert "float-castable" not in captured.out + captured.err
    assert not (sweep / "optimization_results.yaml").exists()
