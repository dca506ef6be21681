"""`ganlab report` on a real multirun whose jobs end differently (finished, diverged, crashed), the status.json
that train() keeps, and the HParams record each finished run leaves in its own event file."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from ganlab.cli import main
from ganlab.errors import ConfigError, RunInterrupted
from ganlab.runs import read_run
from ganlab.status import CRASHED, INTERRUPTED, RUNNING, STATUS_FILE, current_state, read_status
from ganlab.train import train
from tests.conftest import compose_cfg, exits_2, fill_disk, read_events

# Modes 0.1 apart, so that a tiny G's first samples straddle several of them and each job gets its own KL.
TOY = ["debug=fast", "model=mlp", "data=gaussians", "data.kind=grid25", "data.spacing=0.1", "data.std=0.05"]
# Job 2's learning rate blows the weights up (diverged); job 3 cannot write its checkpoint (crashed).
LRS = ["4e-3", "1e-3", "1e30", "2e-3"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    (root / "3" / "checkpoints" / "last.pt").mkdir(parents=True)  # a folder where job 3's checkpoint must go
    loggers = [logging.getLogger(), logging.getLogger("ganlab")]
    saved = [(lg, list(lg.handlers), lg.level) for lg in loggers]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "-m", *TOY, "trainer.eval_every=2", "trainer.eval_n=200",
                  f"optimizer.lr_g={','.join(LRS)}", f"hydra.sweep.dir={root}"])  # fmt: skip
    finally:  # Hydra pointed the root logger at this sweep's files: put the handlers back
        for lg, handlers, level in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
    assert exit_info.value.code == 1  # jobs failed; the sweep still ran every job
    return root


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_ranks_the_jobs_by_their_metric_and_tells_how_each_ended(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["report", str(sweep)])
    out = capsys.readouterr().out
    assert "best first by kl_all (lower is better)" in out and "crashed" in out and "diverged" in out
    assert f"wrote {sweep / 'report.md'}" in out

    rows = _csv_rows(sweep / "report.csv")
    by_run = {row["run"]: row for row in rows}
    assert {run: row["status"] for run, row in by_run.items()} == {
        "0": "finished",
        "1": "finished",
        "2": "diverged",
        "3": "crashed",
    }
    # The finished jobs first, by their final kl_all (the 2-D monitor) read back from TensorBoard; the failed ones
    # after, by name.
    final_kl = {job: read_events(sweep / job)[0]["metrics/kl_all"][-1][1] for job in ("0", "1")}
    assert final_kl["0"] != final_kl["1"]  # something to sort
    assert [row["run"] for row in rows] == [*sorted(final_kl, key=final_kl.get), "2", "3"]
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    for job, kl in final_kl.items():
        assert float(by_run[job]["kl_all"]) == kl
        scalars = read_events(sweep / job)[0]
        assert float(by_run[job]["high_quality"]) == scalars["metrics/high_quality"][-1][1]
        assert (by_run[job]["step"], by_run[job]["steps"], by_run[job]["saved_step"]) == ("4", "4", "4")
    for job, lr in enumerate(LRS):  # Hydra writes a swept value its own way: 4e-3 becomes 0.004
        overrides = dict(o.split("=", 1) for o in by_run[str(job)]["overrides"].split())
        assert float(overrides["optimizer.lr_g"]) == float(lr) and overrides["data.kind"] == "grid25"
    # How far the failed ones got, and why they stopped.
    assert by_run["3"]["kl_all"] == "" and (by_run["3"]["step"], by_run["3"]["saved_step"]) == ("2", "0")
    assert "could not write the checkpoint" in by_run["3"]["note"]
    assert by_run["2"]["note"].startswith("training diverged at step ")

    md = (sweep / "report.md").read_text()
    assert "| # | run | status | step | overrides | kl_all | high_quality | kl | modes | note |" in md
    assert "Every run: `" + " ".join(TOY) in md  # what the jobs share is said once
    assert f"| 1 | {rows[0]['run']} | finished | 4/4 | optimizer.lr_g={float(LRS[int(rows[0]['run'])])} |" in md
    assert "| 4 | 3 | crashed | 2/4 |" in md and "![" in md
    with Image.open(sweep / "report.png") as picture:
        assert picture.format == "PNG" and picture.width >= 1000


def test_options_pick_the_runs_the_metric_and_the_folder(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    main(["report", str(sweep / "0"), str(sweep / "1"), f"out={out}", "metric=high_quality"])
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.md", "report.png"]
    rows = _csv_rows(out / "report.csv")
    values = [float(row["high_quality"]) for row in rows]
    assert len(rows) == 2 and values == sorted(values, reverse=True)  # higher is better for this one
    assert list(rows[0])[7] == "high_quality"  # the ranking metric is the first metric column


def test_each_finished_run_records_its_hparams_in_its_own_log(sweep: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.api_pb2 import Status

    def hparams_of(run: Path) -> dict[str, bytes]:
        acc = EventAccumulator(str(run))
        acc.Reload()
        try:
            return acc.PluginTagToContent(metadata.PLUGIN_NAME)
        except KeyError:  # no hparams at all
            return {}

    content = hparams_of(sweep / "0")
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    values = {key: getattr(value, value.WhichOneof("kind")) for key, value in start.hparams.items()}
    assert values["optimizer.lr_g"] == pytest.approx(4e-3)  # the swept value, as a number the tab can plot
    assert {k: values[k] for k in ("model", "loss", "optimizer", "data", "data.kind", "debug")} == {
        "model": "mlp",
        "loss": "gan",
        "optimizer": "adam",
        "data": "gaussians",
        "data.kind": "grid25",
        "debug": "fast",
    }
    assert values["trainer.steps"] == 4 and values["seed"] == 0
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == Status.Value("STATUS_SUCCESS")
    assert metadata.EXPERIMENT_TAG not in content  # the tab builds its columns from every run's hparams
    # In the run's own folder (the metrics the tab shows are its scalars there), not a timestamped sub-folder.
    assert sorted(p.name for p in (sweep / "0").iterdir() if p.is_dir()) == [".hydra", "checkpoints", "samples"]
    assert metadata.SESSION_START_INFO_TAG not in hparams_of(sweep / "2")  # only finished runs record them


def test_status_json_follows_a_run_to_its_end(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(compose_cfg("model=mlp", "data=gaussians", "trainer.steps=2"), run, overrides=["trainer.steps=2"])
    record = json.loads((run / STATUS_FILE).read_text())
    assert {k: record[k] for k in ("state", "step", "saved_step", "steps", "overrides", "pid")} == {
        "state": "finished",
        "step": 2,
        "saved_step": 2,
        "steps": 2,
        "overrides": ["trainer.steps=2"],
        "pid": os.getpid(),
    }
    assert not list(run.glob(".status.json.tmp-*"))

    # A process that died without a word (SIGKILL, out-of-memory killer) left `running` behind: a crash.
    gone = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process has it (a reaped pid may be reused)
    (run / STATUS_FILE).write_text(json.dumps(record | {"state": RUNNING, "pid": gone}))
    state, note = current_state(read_status(run))
    assert state == CRASHED and f"process {gone} is gone" in note
    (run / STATUS_FILE).write_text(json.dumps(record | {"state": RUNNING}))  # this process: alive
    assert current_state(read_status(run)) == (RUNNING, None)

    # A run directory without status.json stopped before its first step: it says so, whatever else is there.
    (run / STATUS_FILE).unlink()
    unstarted = read_run(run, "run")
    assert (unstarted.state, unstarted.step, unstarted.steps) == ("unknown", None, 2)
    assert unstarted.note == "no status.json: it stopped before its first step"
    # An empty or spoilt one is named as such, not taken for a run that never began (this one has a checkpoint).
    for spoilt in ("", "{not json", json.dumps({"state": "exploded"})):
        (run / STATUS_FILE).write_text(spoilt)
        assert read_run(run, "run").note == (
            "its status.json is unreadable (empty, cut short or not a ganlab record): how it ended is unknown. It has "
            "a checkpoint (resume= continues it)."
        )


def test_a_sigterm_leaves_an_interrupted_status(tmp_path: Path) -> None:
    run = tmp_path / "run"

    def preempt() -> None:  # what SLURM does once the job runs
        deadline = time.monotonic() + 60
        while not (run / STATUS_FILE).is_file() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=preempt, daemon=True)
    thread.start()
    with pytest.raises(RunInterrupted):
        train(compose_cfg("model=mlp", "data=gaussians", "trainer.steps=100000"), run)
    thread.join()
    record = read_status(run)
    assert record["state"] == INTERRUPTED and record["step"] == record["saved_step"] >= 1
    assert "stopped by SIGTERM" in record["message"]


def test_bad_input_exits_2_and_writes_nothing(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "give a multirun directory or run directories" in exits_2(["report"], capsys)
    assert f"{tmp_path / 'nope'}: no such directory" in exits_2(["report", str(tmp_path / "nope")], capsys)
    (tmp_path / "report.md").write_text("")
    assert f"{tmp_path / 'report.md'}: a file, not a directory" in exits_2(
        ["report", str(tmp_path / "report.md")], capsys
    )
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    assert f"no ganlab runs in {empty}" in exits_2(["report", str(empty)], capsys)
    assert sorted(p.name for p in empty.iterdir()) == ["sub"]
    out = tmp_path / "out"
    err = exits_2(["report", str(sweep), "metric=fid", f"out={out}"], capsys)
    assert "metric=fid: no run logged metrics/fid; logged: high_quality, kl, kl_all, modes" in err
    assert not out.exists()


def test_a_sweep_job_refused_before_it_started_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A refused job leaves no folder: the report names it from multirun.yaml instead of silently counting fewer
    runs."""
    loggers = [logging.getLogger(), logging.getLogger("ganlab")]
    saved = [(lg, list(lg.handlers), lg.level) for lg in loggers]
    try:
        with pytest.raises(SystemExit):
            main(["train", "-m", *TOY, "optimizer.lr_d=1e-3,-1,2e-3", f"hydra.sweep.dir={tmp_path / 'sw'}"])
    finally:
        for lg, handlers, level in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
    assert sorted(p.name for p in (tmp_path / "sw").iterdir() if p.is_dir()) == ["0", "2"]
    capsys.readouterr()
    main(["report", str(tmp_path / "sw")])
    out = " ".join(capsys.readouterr().out.split())  # the terminal table wraps its caption
    assert "no folder for job 1 (optimizer.lr_d=-1): refused before starting" in out
    assert "No folder for job 1 (optimizer.lr_d=-1)" in (tmp_path / "sw" / "report.md").read_text()


def test_a_full_disk_leaves_no_report_folder_behind(
    sweep: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_disk(small_disk, leave=8_000)  # room for the folders and report.md, not for report.png
    out = small_disk / "reports" / "lr"
    assert "cannot write there" in exits_2(["report", str(sweep), f"out={out}"], capsys)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_copies_of_runs_report_under_their_own_names(sweep: Path, tmp_path: Path) -> None:
    for job in ("0", "3"):
        shutil.copytree(sweep / job, tmp_path / "runs" / f"lr{job}")
    main(["report", str(tmp_path / "runs")])
    rows = _csv_rows(tmp_path / "runs" / "report.csv")
    assert [(row["run"], row["status"]) for row in rows] == [("lr0", "finished"), ("lr3", "crashed")]


def test_a_malformed_metrics_json_is_named_not_taken_for_no_evaluation(
    sweep: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(sweep / "0", tmp_path / "runs" / "cut")
    (tmp_path / "runs" / "cut" / "metrics.json").write_text('{"step": 4, "metrics": [')  # an interrupted write
    with caplog.at_level(logging.WARNING, logger="ganlab"):
        main(["report", str(tmp_path / "runs")])
    said = [r.getMessage() for r in caplog.records if r.name == "ganlab"]
    assert any(m.startswith(f"ignoring {tmp_path / 'runs' / 'cut' / 'metrics.json'}: not a metrics file") for m in said)
    assert [row["run"] for row in _csv_rows(tmp_path / "runs" / "report.csv")] == ["cut"]


def test_runs_evaluated_afterwards_are_ranked_by_what_ganlab_eval_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's flow: a sweep without evaluation during training, then `ganlab eval` on each run."""
    for lr in ("1e-3", "4e-3"):
        main(["train", *TOY, f"optimizer.lr_g={lr}", f"hydra.run.dir={tmp_path / 'runs' / lr}"])
        main(["eval", f"run={tmp_path / 'runs' / lr}", "n=200"])
    kl = {lr: json.loads((tmp_path / "runs" / lr / "metrics.json").read_text()) for lr in ("1e-3", "4e-3")}
    kl = {lr: next(m["value"] for m in r["metrics"] if m["metric"] == "kl_all") for lr, r in kl.items()}
    capsys.readouterr()
    main(["report", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert "best first by kl_all (lower is better)" in out
    rows = _csv_rows(tmp_path / "runs" / "report.csv")
    assert [row["run"] for row in rows] == sorted(kl, key=kl.get)
    assert [float(row["kl_all"]) for row in rows] == pytest.approx(sorted(kl.values()))
    picture = (tmp_path / "runs" / "report.png").stat().st_size
    assert picture > 20_000  # the best run's samples are drawn, not "no best run with samples"


def test_the_terminal_table_never_cuts_the_overrides_in_120_columns() -> None:
    from rich.console import Console

    from ganlab.commands.report import build_report, print_table
    from ganlab.runs import Run

    overrides = [
        ["optimizer.lr_d=0.0001", "loss=hinge", "model.generator.width=128", "trainer.n_critic=5"],
        ["optimizer.lr_d=0.0004", "loss=wgan_gp", "model.generator.width=64", "trainer.n_critic=1"],
    ]
    metrics = ["fid", "kid", "is", "precision", "recall", "class_kl", "mode_coverage"]
    runs = [
        Run(Path(f"/r/{i}"), str(i), "finished", None, 10, 10, 10, o, "fid", {m: [(10, 1.0 + i)] for m in metrics})
        for i, o in enumerate(overrides)
    ]
    console = Console(width=120, record=True)
    print_table(build_report(runs, "fid"), console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 120 and "…" not in text
    for override in overrides[0] + overrides[1]:
        assert override in text
    assert "3 more metrics in report.md" in text


def test_runs_measured_with_different_extractors_or_n_are_not_ranked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    main(["train", "debug=fast", f"hydra.run.dir={runs / 'a'}"])
    shutil.copytree(runs / "a", runs / "b")  # the same run, evaluated on another number of samples
    for name, n in (("a", "200"), ("b", "300")):
        main(["eval", f"run={runs / name}", "features=digits", f"n={n}"])
    capsys.readouterr()
    err = exits_2(["report", str(runs)], capsys)
    assert "the runs' fid_digits values were measured differently and do not compare" in err
    assert "features=digits n=200: a; features=digits n=300: b" in err
    assert not (runs / "report.md").exists()


def test_one_metric_in_two_feature_spaces_is_not_ranked_and_plain_fid_finds_its_extractor() -> None:
    from ganlab.runs import Run, sort_metric

    def run(name: str, metric: str, monitor: str | None) -> Run:
        return Run(Path(name), name, "finished", None, 10, 10, 10, [], monitor, {metric: [(10, 1.0)]})

    digits, inception = run("a", "fid_digits", "fid_digits"), run("b", "fid_inception", "fid_inception")
    with pytest.raises(ConfigError, match=r"measured fid in different feature spaces \(fid_digits \(1 runs\), fid_inc"):
        sort_metric([digits, inception], None)
    unmonitored = [run("a", "fid_digits", None), run("b", "fid_inception", None)]
    with pytest.raises(ConfigError, match="measured fid in different feature spaces"):
        sort_metric(unmonitored, None)
    with pytest.raises(ConfigError, match=r"metric=fid was measured in several feature spaces \(fid_digits, fid_in"):
        sort_metric(unmonitored, "fid")
    assert sort_metric(unmonitored, "fid_inception") == "fid_inception"
    assert sort_metric([digits, run("c", "fid_digits", "fid")], "fid") == "fid_digits"
    assert sort_metric([run("c", "fid_digits", None), run("d", "kl_all", None)], None) == "fid_digits"
