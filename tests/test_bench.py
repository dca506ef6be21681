"""scripts/bench.py runs in a tiny configuration and prints its table (the figures themselves are in the README:
speed is measured by the benchmark, not asserted by tests)."""

from __future__ import annotations

import inspect
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from ganlab.speed import uses_channels_last
from tests.conftest import REPO

TINY = ["--steps", "2", "--warmup", "1", "--batch", "16", "--mnist-n", "128", "--folder-n", "32"]


def bench(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "scripts/bench.py", *TINY, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def rows(table: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for line in table.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }


def test_the_mlp_workload_prints_baseline_and_ganlab_with_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    import bench as bench_script  # scripts/ is not a package

    bench_script.main([*TINY, "--workloads", "mlp", "--only", "ganlab", "--in-process"])
    out = capsys.readouterr().out
    assert "## mlp" in out and "batch 16" in out
    table = rows(out)
    assert table["baseline (reference loop)"][-1] == "1.00x"
    rate, ms, peak, ratio = table["ganlab"]
    assert float(rate) > 0 and float(ms) > 0 and float(peak) > 0
    assert re.fullmatch(r"\d+\.\d\dx", ratio)
    # The rates are printed to 0.1 image/s and the ratio, from the unrounded rates, to 0.01: on a busy machine the
    # rates are small and their rounding alone moves the ratio recomputed from them by more than 0.01.
    ours, theirs = float(rate), float(table["baseline (reference loop)"][0])
    rounding = 0.005 + ours / theirs * (0.05 / ours + 0.05 / theirs)
    assert float(ratio[:-1]) == pytest.approx(ours / theirs, abs=rounding)


@pytest.mark.slow
def test_the_mlp_workload_runs_its_rows_in_their_own_processes() -> None:
    table = rows(bench("--workloads", "mlp"))
    for label in ("baseline (reference loop)", "ganlab", "precision=bf16", "compile=true"):
        assert label in table and re.fullmatch(r"\d+\.\d\dx", table[label][-1]), (label, table)


@pytest.mark.slow
def test_the_dcgan_workload_runs_every_option_row() -> None:
    out = bench("--workloads", "dcgan", "--width", "4")
    table = rows(out)
    for label in ("baseline (reference loop)", "ganlab", "precision=bf16", "compile=true", "data.cache=false"):
        assert label in table and re.fullmatch(r"\d+\.\d\dx", table[label][-1]), (label, out)


# stylegan2 at 8x8 (4x4 and 8x8 blocks of 16 and 8 channels), batch 8: the rows' plumbing in a few seconds.
SG2_TINY = ["--steps", "2", "--warmup", "1", "--batch", "8", "--folder-n", "16", "--image-size", "8"]
SG2_TINY += ["--sg2-channel-base", "64", "--sg2-channel-max", "16"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread for the test: at these widths every operation is tiny, and on a busy 2-core machine
    conftest's two intra-op threads wait on each other at every one of them (measured: flops_per_image at 8x8
    took 39 s on two threads, 2 s on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def bench_script() -> ModuleType:
    """scripts/bench.py as a module (scripts/ is not a package); its `bench_baseline` is scripts/bench_baseline.py."""
    sys.path.insert(0, str(REPO / "scripts"))
    import bench as script

    return script


def test_the_stylegan2_workload_runs_its_baseline_and_ganlab_at_tiny_widths(
    capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    bench_script().main([*SG2_TINY, "--workloads", "stylegan2", "--only", "ganlab", "--in-process"])
    out = capsys.readouterr().out
    assert "## stylegan2\n" in out and "; batch 8;" in out
    # the widths both rows train, printed above the table
    assert "stylegan2 8x8, batch 8: channel_base 64, channel_max 16 (channels 4:16 8:8)" in out
    table = rows(out)
    assert set(table) == {"configuration", "baseline (reference loop)", "ganlab"}, out
    for label in ("baseline (reference loop)", "ganlab"):
        rate, ms, peak, ratio = table[label]
        assert math.isfinite(float(rate)) and float(rate) > 0 and float(ms) > 0 and float(peak) > 0, (label, out)
        assert re.fullmatch(r"\d+\.\d\dx", ratio), (label, out)


def test_stylegan2_takes_a_batch_of_32_and_the_baseline_the_presets_settings(tmp_path: Path) -> None:
    script = bench_script()
    assert script.BATCH["stylegan2"] == 32
    settings = script.stylegan2_settings(script.ganlab_overrides("stylegan2", tmp_path, 32, 64, 64))
    # baseline_stylegan2's own defaults are experiment=stylegan2_folder's at 64 px (stylegan2-ada's --cfg=auto)
    defaults = {
        name: list(p.default) if isinstance(p.default, tuple) else p.default
        for name, p in inspect.signature(script.bench_baseline.baseline_stylegan2).parameters.items()
        if name in settings
    }
    assert set(settings) == set(defaults)
    for name, value in settings.items():
        assert value == pytest.approx(defaults[name]), name
    assert settings["channel_base"] == 16384 and settings["batch_size"] == 32  # 512 channels up to 32x32, 256 at 64
    assert script.stylegan2_widths(settings) == "4:512 8:512 16:512 32:512 64:256"
    narrow = script.ganlab_overrides("stylegan2", tmp_path, 32, 64, 64, channel_base=2048, channel_max=256)
    assert script.stylegan2_widths(script.stylegan2_settings(narrow)) == "4:256 8:256 16:128 32:64 64:32"


def test_the_baselines_path_length_is_ganlabs() -> None:
    from ganlab.models.stylegan2 import StyleGAN2Generator
    from ganlab.stabilizers.path_length import path_lengths

    bench_baseline = bench_script().bench_baseline
    G = StyleGAN2Generator(8, (3, 8, 8), w_dim=8, mapping_layers=2, channel_base=32, channel_max=8)
    z = torch.randn(4, 8)
    torch.manual_seed(1)
    ours = path_lengths(G, z, None)
    torch.manual_seed(1)
    latents = G.styles(z)
    _, _, theirs = bench_baseline.g_path_regularize(G.synthesis(latents), latents, 0.0)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.slow  # 3 s: FlopCounterMode over a whole 16-step cycle of the lazy regularisers
def test_flops_per_image_averages_stylegan2s_lazy_regularisers_on_the_cpu(tmp_path: Path, one_thread: None) -> None:
    """FlopCounterMode over the 16 steps of one R1 cycle (four path length steps among them): between the
    FLOPs of a plain step and those of the first step, which carries both."""
    from dataclasses import replace

    from omegaconf import OmegaConf
    from torch.utils.flop_counter import FlopCounterMode

    from ganlab.build import build
    from ganlab.divergence import NanWatch
    from ganlab.speed import Execution
    from ganlab.step import TrainStep

    script = bench_script()
    root = script.bench_baseline.make_image_folder(tmp_path, n=16, size=8)
    overrides = script.ganlab_overrides("stylegan2", root, 8, 8, 0, channel_base=32, channel_max=8)
    parts = build(script.compose([*overrides, "trainer.device=cpu", "model.generator.w_dim=8", "model.z_dim=8"]))
    average = script.flops_per_image(parts, 8)
    assert math.isfinite(average) and average > 0

    eager = Execution(None, False, False, parts.G, parts.D, parts.D, parts.D)
    plain = OmegaConf.create({"clip_grad_norm": None, "cuda_graphs": "false"})
    probe = TrainStep(replace(parts, execution=eager), plain, 8, NanWatch(parts.device, 0))
    per_step = []
    for step in (1, 2):  # step 1: R1 and path length; step 2: neither
        counter = FlopCounterMode(display=False)
        counter.mod_tracker = script._GlobalOnly()
        with counter:
            probe(step)
        per_step.append(counter.get_total_flops() / 8)
    assert per_step[1] < average < per_step[0]


def test_a_graphed_warm_up_ends_past_every_capture_on_a_whole_regulariser_cycle(tmp_path: Path) -> None:
    """With the step as CUDA graphs each part is captured on its third run (two eager warm-ups first): stylegan2's
    R1 part (every 16 D updates) on step 33, inside `--warmup 10 --steps 30`. The warm-up grows by whole cycles
    of 16, past step 48, so that the timed steps keep the baseline's regularised steps."""
    from ganlab.build import build
    from ganlab.divergence import NanWatch
    from ganlab.step import TrainStep

    script = bench_script()
    root = script.bench_baseline.make_image_folder(tmp_path, n=16, size=8)
    overrides = script.ganlab_overrides("stylegan2", root, 8, 8, 0, channel_base=32, channel_max=8)
    cfg = script.compose([*overrides, "trainer.device=cpu", "model.generator.w_dim=8", "model.z_dim=8"])
    parts = build(cfg)
    probe = TrainStep(parts, cfg.trainer, 8, NanWatch(parts.device, 0))
    cycle = script.regulariser_cycle(parts, probe.hooks["g_regularizer"])
    assert cycle == 16  # R1 every 16 D updates (n_critic 1), path length every 4 G steps
    assert [script.graphed_warmup(w, cycle) for w in (10, 16, 48, 60)] == [58, 48, 48, 60]
    assert script.graphed_warmup(10, 1) == 10 and script.graphed_warmup(1, 1) == 3  # mlp, dcgan: no regulariser


@pytest.mark.slow
def test_the_stylegan2_workload_runs_its_option_rows_in_their_own_processes() -> None:
    flipped = "false" if uses_channels_last(None, torch.device("cpu"), (3, 64, 64)) else "true"
    only = f"ganlab,precision=bf16,channels_last={flipped},data.cache=false"
    table = rows(bench("--workloads", "stylegan2", *SG2_TINY, "--only", only))
    for label in ("baseline (reference loop)", *only.split(",")):
        assert label in table and re.fullmatch(r"\d+\.\d\dx", table[label][-1]), (label, table)
