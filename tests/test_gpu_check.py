"""scripts/gpu_check.py: its plumbing on the CPU (--allow-cpu, tiny sizes) and its parsers on canned output.
What it measures on a GPU is for a machine with one: `python scripts/gpu_check.py`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import gpu_check  # noqa: E402  (scripts/ is not a package)

PYTEST_OUT = """\
........F.s                                                              [100%]
=================================== FAILURES ===================================
____________________ test_float16_trains_and_resumes_with_its_scalers __________
E   AssertionError
=========================== short test summary info ============================
SKIPPED [1] tests/test_gpu.py:20: needs two GPUs
FAILED tests/test_gpu.py::test_float16_trains_and_resumes_with_its_scalers - AssertionError
1 failed, 8 passed, 1 skipped, 3 deselected, 2 warnings in 61.20s (0:01:01)
"""

BENCH_OUT = """\
# ganlab benchmark on NVIDIA H200; torch 2.14.1; batch 64; 10 warm-up + 30 timed steps per row; median of 1 run(s)

## dcgan

| configuration                                |  images/s |  ms/step |  peak MB | vs baseline |
|----------------------------------------------|-----------|----------|----------|-------------|
| baseline (reference loop)                    |    4100.5 |     15.6 |     1142 |       1.00x |
| ganlab                                       |   21000.0 |      3.0 |     1170 |       5.12x |
|   data.cache=false                           | failed: timed out after 60 s (--row-timeout)
"""


def test_pytest_summaries_are_counted() -> None:
    assert gpu_check.parse_pytest(PYTEST_OUT) == {
        "passed": 8,
        "failed": 1,
        "error": 0,
        "skipped": 1,
        "deselected": 3,
    }
    assert gpu_check.pytest_failures(PYTEST_OUT) == [
        "tests/test_gpu.py::test_float16_trains_and_resumes_with_its_scalers"
    ]
    assert gpu_check.parse_pytest("9 skipped, 2 errors in 4.10s\n")["error"] == 2
    assert gpu_check.parse_pytest("===== 12 deselected in 0.50s =====\n")["passed"] == 0
    assert gpu_check.parse_pytest("ImportError while loading conftest\n") is None


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_a_pytest_run_killed_in_a_test_still_says_how_far_it_got_and_where(tmp_path: Path, workers: list[str]) -> None:
    """What gpu_check reads when its pytest check runs past its timeout: real `pytest -v` output, in one process
    and under pytest-xdist (which prints a test's start and end on lines of their own), the run killed while its
    fourth test runs."""
    started = tmp_path / "started"
    (tmp_path / "test_cut.py").write_text(
        "import pathlib, time, pytest\n"
        "def test_passes(): pass\n"
        "def test_fails(): assert 0\n"
        "@pytest.mark.skip(reason='no')\n"
        "def test_skipped(): pass\n"
        "@pytest.mark.parametrize('case', ['a b'])\n"
        f"def test_hangs(case): pathlib.Path({str(started)!r}).touch(); time.sleep(60)\n"
    )
    cmd = [sys.executable, "-m", "pytest", "-v", "-rfEs", "-p", "no:cacheprovider", *workers, "test_cut.py"]
    with open(tmp_path / "out.txt", "w") as out:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        while time.monotonic() < deadline:  # xdist's controller prints what its workers report, a little later
            if gpu_check.pytest_progress((tmp_path / "out.txt").read_text()) == SO_FAR:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too
        proc.wait()
    text = (tmp_path / "out.txt").read_text()
    assert gpu_check.parse_pytest(text) is None  # no summary line: it never ended
    assert gpu_check.pytest_progress(text) == SO_FAR


SO_FAR = ({"passed": 1, "failed": 1, "skipped": 1}, "test_cut.py::test_hangs[a b]")  # when the run above is killed


def test_the_cuda_tests_run_in_several_processes_where_xdist_is_installed() -> None:
    options = gpu_check.pytest_workers(cuda=True)  # the dev extras install pytest-xdist
    assert options[0] == "-n" and 1 < int(options[1]) <= 4


def test_bench_tables_and_progress_lines_are_read() -> None:
    table = gpu_check.parse_bench(BENCH_OUT)["dcgan"]
    assert table["baseline (reference loop)"] == ["4100.5", "15.6", "1142", "1.00x"]
    assert table["ganlab"][-1] == "5.12x"
    assert table["data.cache=false"][0].startswith("failed: timed out")
    lines = (
        "[2026-11-30][ganlab][INFO] - step 50/2000 | D 1.2 G 0.8 | 9,876 img/s | eta 0m09s\n"
        "[2026-11-30][ganlab][INFO] - step 100/2000 | D 1.1 G 0.9 | 12,345 img/s | eta 0m08s\n"
    )
    assert gpu_check.rates_from_lines(lines) == [(50, 9876.0), (100, 12345.0)]
    assert gpu_check.steady_rate([100.0, 10.0, 30.0, 20.0]) == 20.0  # the first interval (start-up) is left out
    assert gpu_check.steady_rate([]) is None


def test_a_streaming_runs_own_timings_are_read_from_what_it_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The stream row reads the lines ganlab/data/image_folder.py really logs (not a copy of them), so a change
    of their wording is caught here rather than on a GPU."""
    import logging

    from ganlab.data.image_folder import ImageFolderData
    from tests.test_data_cache import write_folder

    write_folder(tmp_path / "imgs", n=6)
    with caplog.at_level(logging.INFO, logger="ganlab"):
        data = ImageFolderData(str(tmp_path / "imgs"), image_size=8, num_workers=2, cache=False)
        data.sample(4)
        data.sample(4)
        data.close()
    text = "\n".join(f"[2026-12-02][ganlab][INFO] - {r.getMessage()}" for r in caplog.records)
    timings = data.timings()
    summary = gpu_check.stream_timings(text)

    def as_read(key: str) -> str:
        # The log holds 3 decimals and the row shows 2, so round the same way twice: 0.0451 s is logged as
        # 0.045 and shown as 0.04, where rounding it once would give 0.05.
        return f"{float(f'{timings[key]:.3f}'):.2f}"

    assert summary.startswith(f"2 workers started in {as_read('start_s')} s, first batch after ")
    assert f"first draw waited {as_read('first_wait_s')} s" in summary
    assert f"all draws waited {as_read('wait_s')} s for 2 batches" in summary
    assert summary.endswith(f"shutdown {as_read('shutdown_s')} s")
    assert gpu_check.stream_timings("step 10/10 | D 1.0 G 1.0") == "no stream timings in its log"


def test_the_table_and_exit_status() -> None:
    rows = [
        gpu_check.Row("default run", gpu_check.PASS, "2000 steps, 9,000 img/s", 11.5, "target <= 12 s: met"),
        gpu_check.Row("nccl all_reduce", gpu_check.SKIP, "no CUDA", None),
    ]
    text = gpu_check.table(rows)
    assert text.splitlines()[:2] == ["| check | result | time | target/notes |", "|---|---|---|---|"]
    assert "| default run | PASS: 2000 steps, 9,000 img/s | 11.5 s | target <= 12 s: met |" in text
    assert "| nccl all_reduce | SKIP: no CUDA | - | - |" in text
    assert gpu_check.exit_status(rows) == 0
    assert gpu_check.exit_status([*rows, gpu_check.Row("stream vs cache", gpu_check.MISS, "+5 s", 30.0)]) == 1


def test_a_command_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    start = time.perf_counter()
    proc = gpu_check.run_command([sys.executable, "-c", child + " time.sleep(60)"], timeout=1.5, log=tmp_path)
    assert proc.timed_out and proc.why() == "timed out after 2 s"
    assert time.perf_counter() - start < 15
    ok = gpu_check.run_command([sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"], timeout=30)
    assert (ok.rc, ok.out.strip(), ok.why()) == (3, "hi", "exit 3: hi")


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether process pid ended (or is a zombie waiting for init) within the given seconds."""
    end = time.perf_counter() + within
    while time.perf_counter() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def test_what_outlives_a_stopped_command_is_killed_too(tmp_path: Path) -> None:
    """A leader that obeys SIGTERM leaves a child that ignores it (a DataLoader worker, a rank): the child must
    not live on into the next check, holding the GPU."""
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(pid_file)!r} + '.tmp', 'w').write(str(os.getpid())); "
        f"os.rename({str(pid_file)!r} + '.tmp', {str(pid_file)!r}); time.sleep(60)"  # whole, or not there
    )
    leader = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    start = time.perf_counter()
    # 5 s: two Python start-ups (no torch) must come first, on a machine that may be loaded
    proc = gpu_check.run_command([sys.executable, "-c", leader], timeout=5, log=tmp_path / "log")
    assert proc.timed_out and time.perf_counter() - start < 5 + gpu_check.TERM_GRACE_S + gpu_check.KILL_GRACE_S
    assert pid_file.is_file() and _gone(int(pid_file.read_text()))


def test_the_budget_counts_from_the_start_and_keeps_back_what_stopping_takes(tmp_path: Path) -> None:
    budget = time.perf_counter() - gpu_check.STARTED + 100  # 100 s left now
    checker = gpu_check.Checker(tmp_path, budget, gpu_check.sizes_for(False, False, None), False, "CPU", 0)
    assert 90 < checker.left() <= 100  # less by the time that passed since: a loaded machine may stall a while
    assert checker.timeout("pytest") <= 100 - gpu_check.RESERVE_S  # its kill fits in what is left
    spent = gpu_check.Checker(tmp_path, budget - 100 + gpu_check.RESERVE_S + 9, checker.sizes, False, "CPU", 0)
    assert spent.timeout("pytest") is None  # under 10 s to give a check: skipped, not started


def test_the_archive_holds_the_table_and_logs_but_no_checkpoints_or_images(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for name, size in [
        ("logs/default/stdout.txt", 10),
        ("default/.hydra/config.yaml", 10),
        ("default/checkpoints/last.pt", 10),
        ("folder/images/000000.png", 10),
        ("default/huge.log", gpu_check.ARCHIVE_MAX_FILE + 1),
    ]:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(b"x" * size)
    gpu_check.save_table(work, [gpu_check.Row("default run", gpu_check.PASS, "2 steps", 1.0)], "gpu_check on CPU")
    assert "| default run | PASS: 2 steps | 1.0 s | - |" in (work / "table.md").read_text()
    out = tmp_path / "out" / "gpu_check.tar.gz"
    gpu_check.archive(work, out)
    gpu_check.archive(work, out)  # replaced whole, not appended to
    with tarfile.open(out) as tar:
        names = sorted(tar.getnames())
    assert names == ["work/default/.hydra/config.yaml", "work/logs/default/stdout.txt", "work/table.md"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["gpu_check.tar.gz"]


def test_a_bench_row_past_its_timeout_reports_it() -> None:
    import bench  # scripts/bench.py

    result = bench.run_in_child({"kind": "baseline", "workload": "mlp"}, timeout=0.2)
    assert result == {"error": "timed out after 0.2 s (--row-timeout)"}


def test_the_pytest_check_takes_every_file_with_a_cuda_test_and_no_other() -> None:
    files = gpu_check.gpu_test_files()
    assert {"tests/test_gpu.py", "tests/test_sequence_metrics.py"} <= set(files)  # the sequence scores' CUDA test
    assert "tests/test_gpu_check.py" not in files and "tests/test_losses.py" not in files


@pytest.mark.slow  # collects the whole suite: 15 s
def test_the_files_it_takes_are_those_pytest_selects_with_the_gpu_mark() -> None:
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    selected = {line.split("::")[0] for line in out.stdout.splitlines() if "::" in line}
    assert selected == set(gpu_check.gpu_test_files()), out.stdout[-2000:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer of a machine without CUDA")
def test_without_cuda_it_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main([]) == 2
    captured = capsys.readouterr()
    assert "no CUDA device" in captured.err and "--allow-cpu" in captured.err and captured.out == ""


@pytest.mark.slow  # a real `ganlab train` subprocess through the script: 10 s
def test_the_default_run_check_on_the_cpu(tmp_path: Path) -> None:
    cmd = [sys.executable, "scripts/gpu_check.py", "--allow-cpu", "--checks", "default,nccl", "--steps", "2"]
    packed = tmp_path / "out" / "gpu_check.tar.gz"
    cmd += ["--keep", str(tmp_path / "work"), "--archive", str(packed)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {
        cells[0]: cells[1:]
        for line in out.stdout.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    result, seconds, notes = rows["default run"]
    assert result.startswith("PASS: 2 steps, ") and "img/s" in result
    assert 0 < float(seconds.removesuffix(" s")) < 240
    assert "TensorBoard perf/images_per_s" in notes
    assert rows["gloo all_reduce"][0] == "PASS: gloo, 1 rank"  # the NCCL probe's plumbing, on the CPU
    assert set(rows) == {"check", "default run", "gloo all_reduce"}
    work = tmp_path / "work"
    assert (work / "default" / "checkpoints" / "last.pt").is_file()
    assert "step 2/2" in (work / "logs" / "default" / "stdout.txt").read_text()
    assert "| gloo all_reduce | PASS: gloo, 1 rank |" in (work / "table.md").read_text()
    with tarfile.open(packed) as tar:
        names = set(tar.getnames())
    assert {"work/table.md", "work/logs/default/stdout.txt", "work/logs/gloo/stdout.txt"} <= names
    assert not any(name.endswith(".pt") for name in names)
