"""Benchmark: ganlab's training step against a plain eager PyTorch loop written the way the popular reference
scripts train (scripts/bench_baseline.py), on the same architecture, batch and data, on this machine, in one run.

    python scripts/bench.py [--workloads mlp,dcgan,stylegan2] [--steps 30] [--warmup 10] [--repeats 1]
                            [--device auto] [--batch B] [--image-size 64] [--width 64] [--peak-tflops T]
                            [--sg2-channel-base C] [--sg2-channel-max M]
                            [--only ganlab,compile=true] [--folder-n 4000] [--row-timeout S]

Workloads (issue 5):
  mlp    the classic MLP GAN on MNIST-format 28x28 data (G 100-128-256-512-1024-784 with BatchNorm,
         D 784-512-256-1, batch 64): experiment=mlp_mnist against PyTorch-GAN's gan.py loop.
  dcgan  DCGAN 64x64 (widths 64, z 100, batch 64) on an image folder: model=dcgan data=image_folder
         data.cache=true against pytorch/examples' dcgan/main.py loop.
  stylegan2  StyleGAN2 64x64 (batch 32) on the image folder: experiment=stylegan2_folder data.cache=true (R1 every
         16 D steps, path length every 4 G steps, style mixing, EMA of G) against rosinality/stylegan2-pytorch's
         train.py loop on the same networks, losses and regularisers (bench_baseline.baseline_stylegan2). Widths:
         --sg2-channel-base/--sg2-channel-max (channels at resolution r: min(base / r, max)); by default the
         preset's (channel_base 16384, channel_max 512: 512 channels up to 32x32, 256 at 64x64) on CUDA, and
         channel_base 2048 (CPU_SG2_CHANNEL_BASE: 512 at 4x4 down to 32 at 64x64) on a CPU, where the full widths take
         minutes a step. The widths used are printed above the workload's table.
--batch is each workload's batch; without it each takes its own (mlp and dcgan 64, stylegan2 32, the batch of
the presets and reference scripts they follow).
The data is written to a temporary folder first: sklearn's digits upscaled into MNIST's idx files and into PNGs.

Every row runs in its own process (a fresh allocator and compile cache, and its own peak memory): warm-up steps
first (excluded; they include torch.compile's compilation), then `--steps` timed steps, the device synchronised
at both ends of the timing. images/s counts real images through D. Rows: the baseline, ganlab's base
configuration, then each speed option flipped from there (precision, compile, channels_last; for the image
workloads also data.cache=false and the options together), each with its ratio to the baseline. A row is printed
as soon as it has run: each costs a process start, and on CUDA the compile rows take a minute or more, so `--only`
picks rows and `--row-timeout` bounds each row's process (a row over it reports the timeout). Peak memory is the
CUDA allocator's peak on a GPU and the process's peak resident set on a CPU (which includes Python and torch
themselves). stylegan2's lazy regularisers fall on the same steps in both loops, counted from the first warm-up
step (R1 on steps 1, 17, 33, ...; path length on 1, 5, 9, ...): --steps 10 --warmup 3 times three path length
steps and no R1 step; --warmup 16 --steps 32 times two whole cycles, the average step of a long run. Where
ganlab's step runs as CUDA graphs, its warm-up is lengthened by whole cycles until every part has been captured
(stylegan2: --warmup 10 becomes 58), so that no capture is timed and the regularised steps stay aligned; its
peak memory is then taken from the start of the warm-up, since the activations are allocated during the captures
and replays allocate nothing.
On CUDA the table ends with the FLOP/s of ganlab's best row as a fraction of the GPU's peak, when --peak-tflops
gives that peak (for an H100 SXM: 989 dense bf16 TFLOP/s, 67 fp32 without tensor cores). The FLOPs per image
are counted by torch's FlopCounterMode over one whole cycle of the lazy regularisers (stylegan2: 16 steps, one
with R1 and four with the path length), so that they are those of the average timed step.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import bench_baseline  # noqa: E402  (scripts/ is not a package)

WORKLOADS = ("mlp", "dcgan", "stylegan2")
BATCH = {"mlp": 64, "dcgan": 64, "stylegan2": 32}  # each workload's batch unless --batch says otherwise
CPU_SG2_CHANNEL_BASE = 2048  # stylegan2's default channel_base on a CPU: a row of 3 + 10 steps in about a minute
LOG_EVERY = 50  # the training loop reads its stats back this often (trainer.log_every's default)


def ganlab_overrides(
    workload: str,
    root: Path,
    batch: int,
    image_size: int,
    width: int,
    channel_base: int | None = None,
    channel_max: int | None = None,
) -> list[str]:
    """The ganlab configuration of a workload: the same architecture, optimizer, batch and data as its baseline.
    stylegan2: `channel_base`/`channel_max` None keep the preset's widths."""
    if workload == "mlp":
        return ["experiment=mlp_mnist", f"data.root={root}", "data.download=false", f"trainer.batch_size={batch}"]
    if workload == "stylegan2":
        overrides = [
            "experiment=stylegan2_folder",
            f"data.root={root}",
            f"data.image_size={image_size}",
            "data.cache=true",
            "data.num_workers=2",
            f"trainer.batch_size={batch}",
        ]
        overrides += [] if channel_base is None else [f"model.channel_base={channel_base}"]
        overrides += [] if channel_max is None else [f"model.channel_max={channel_max}"]
        return overrides
    return [
        "model=dcgan",
        "model.z_dim=100",
        f"model.generator.width={width}",
        f"model.discriminator.width={width}",
        "data=image_folder",
        f"data.root={root}",
        f"data.image_size={image_size}",
        "data.cache=true",
        "data.num_workers=2",
        f"trainer.batch_size={batch}",
    ]


def variants(workload: str, device: torch.device) -> list[tuple[str, list[str]]]:
    """(label, extra overrides): ganlab's base configuration, then each speed option flipped on its own."""
    rows: list[tuple[str, list[str]]] = [("ganlab", []), ("  precision=bf16", ["trainer.precision=bf16"])]
    if device.type == "cuda":
        rows.append(("  precision=16", ["trainer.precision=16"]))
    rows.append(("  compile=true", ["trainer.compile=true"]))
    if workload in ("dcgan", "stylegan2"):
        from ganlab.speed import uses_channels_last

        # the row flips channels_last from its default here: on for CUDA and x86 CPUs with AVX2/AVX-512
        flipped = "false" if uses_channels_last(None, device, (3, 64, 64)) else "true"
        rows.append((f"  channels_last={flipped}", [f"trainer.channels_last={flipped}"]))
        rows.append(("  data.cache=false", ["data.cache=false"]))
        best = ["trainer.compile=true", "trainer.channels_last=true"]
        best += ["trainer.precision=bf16"] if device.type == "cuda" else []
        rows.append(("  " + " ".join(o.split(".", 1)[1] for o in best), best))
    return rows


def compose(overrides: list[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from ganlab.config import CONF_DIR, CONFIG_NAME, register_schema

    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose(CONFIG_NAME, overrides=overrides)


def stylegan2_settings(overrides: list[str]) -> dict[str, Any]:
    """The keyword arguments of bench_baseline.baseline_stylegan2 read from ganlab's composed configuration, so
    that the baseline trains the same networks with the same optimizer, regularisers and EMA by construction."""
    cfg = compose(overrides)
    model, opt, pl = cfg.model, cfg.optimizer, cfg.stabilizers.path_length
    for node in (opt.generator, opt.discriminator):
        if node._target_ != "torch.optim.Adam":
            raise ValueError(f"the stylegan2 baseline trains with Adam, and the preset has {node._target_}")
    adam_eps = inspect.signature(torch.optim.Adam).parameters["eps"].default
    return {
        "batch_size": int(cfg.trainer.batch_size),
        "image_size": int(cfg.data.image_size),
        "channel_base": int(model.channel_base),
        "channel_max": int(model.channel_max),
        "z_dim": int(model.z_dim),
        "w_dim": int(model.generator.w_dim),
        "mapping_layers": int(model.generator.mapping_layers),
        "mapping_lr_mul": float(model.generator.mapping_lr_mul),
        "style_mixing": float(model.generator.style_mixing),
        "w_avg_beta": float(model.generator.w_avg_beta),
        "minibatch_std": int(model.discriminator.minibatch_std),
        "lr_g": float(opt.lr_g),
        "lr_d": float(opt.lr_d),
        "betas_g": [float(b) for b in opt.betas_g],
        "betas_d": [float(b) for b in opt.betas_d],
        "eps": float(opt.generator.get("eps", adam_eps)),
        "r1": float(cfg.loss.r1),
        "d_reg_every": int(cfg.loss.reg_every),
        "path_regularize": float(pl.weight),
        "g_reg_every": int(pl.every),
        "path_batch_shrink": int(pl.batch_shrink),
        "path_decay": float(pl.decay),
        "ema_half_life": float(cfg.trainer.ema_half_life),
    }


def stylegan2_widths(settings: dict[str, Any]) -> str:
    """The networks' channels per resolution, e.g. '4:512 8:256 16:128 32:64 64:32'."""
    from ganlab.models.equalized import channel_widths

    resolutions = [2**i for i in range(2, int(math.log2(settings["image_size"])) + 1)]
    widths = channel_widths(resolutions, settings["channel_base"], settings["channel_max"])
    return " ".join(f"{r}:{widths[r]}" for r in resolutions)


def time_ganlab(overrides: list[str], steps: int, warmup: int) -> dict[str, Any]:
    """Steady-state throughput of ganlab's TrainStep (the object train.py's loop calls once per G step), with the
    loop's stats read-back every LOG_EVERY steps."""
    from ganlab.build import build, seed_everything
    from ganlab.cuda_graphs import GraphedParts
    from ganlab.divergence import NanWatch
    from ganlab.step import TrainStep

    cfg = compose(overrides)
    seed_everything(cfg.seed)
    parts = build(cfg)
    stepper = TrainStep(parts, cfg.trainer, cfg.trainer.batch_size, NanWatch(parts.device, 0))
    cuda = parts.device.type == "cuda"
    graphed = isinstance(stepper.graphs, GraphedParts)
    if graphed:  # no capture may fall inside the timed steps
        warmup = graphed_warmup(warmup, regulariser_cycle(parts, stepper.hooks["g_regularizer"]))
        if cuda:
            # Replays allocate nothing: the activations' memory is allocated (and counted) while each part is
            # captured, then held by the graphs' pool. The peak is taken over the warm-up too.
            torch.cuda.reset_peak_memory_stats()
    for step in range(1, warmup + 1):
        stepper(step)
    stepper.meter.means()  # waits for the warm-up's work
    if cuda:
        torch.cuda.synchronize()
        if not graphed:
            torch.cuda.reset_peak_memory_stats()
    start, d_start = time.perf_counter(), stepper.d_updates
    for step in range(warmup + 1, warmup + steps + 1):
        stepper(step)
        if step % LOG_EVERY == 0:
            stepper.meter.means()
            stepper.meter.reset()
    stepper.meter.means()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    images = cfg.trainer.batch_size * (stepper.d_updates - d_start)
    return {
        "images_per_s": images / elapsed,
        "step_ms": 1000 * elapsed / steps,
        "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "flops_per_image": flops_per_image(parts, cfg.trainer.batch_size) if cuda else None,
    }


def regulariser_cycle(parts: Any, g_regularizers: list[Any]) -> int:
    """G steps in one cycle of the lazy regularisers: R1/R2 every loss.reg_every D updates, each G regulariser
    (path length) every g_reg_every G updates. Every part of the step (each one a CUDA graph) runs in each cycle."""
    cycle = math.lcm(parts.loss.reg_every, parts.n_critic) // parts.n_critic
    return math.lcm(cycle, *(s.g_reg_every for s in g_regularizers))


def graphed_warmup(warmup: int, cycle: int) -> int:
    """Warm-up steps for a step run as CUDA graphs: `warmup` lengthened by whole regulariser cycles (so that the
    timed steps fall on the same regularised steps as the baseline's) until every part has had its eager runs
    and its capture: a capture (a gc.collect, an empty_cache, a synchronisation) inside the timed steps would
    be counted as training. stylegan2 (cycle 16): 10 -> 58."""
    from ganlab.cuda_graphs import WARMUP_RUNS

    while warmup < (WARMUP_RUNS + 1) * cycle:
        warmup += cycle
    return warmup


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker: no module hooks, every FLOP counted under "Global"."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def flops_per_image(parts: Any, batch: int) -> float:
    """FLOPs of the training step per real image through D, counted by torch's FlopCounterMode (forward and
    backward of the matrix multiplications and convolutions, double backward included), over the steps of one
    cycle of the lazy regularisers: R1/R2 every loss.reg_every D updates, each G regulariser (path length) every
    g_reg_every G updates. One step for mlp and dcgan; 16 for stylegan2, whose first step carries both.

    Eager and in float32 with the networks unwrapped: what the step computes, whatever compile, channels_last,
    CUDA graphs (a replay would hide its operations from the counter) or autocast make of it."""
    from dataclasses import replace

    from omegaconf import OmegaConf
    from torch.utils.flop_counter import FlopCounterMode

    from ganlab.divergence import NanWatch
    from ganlab.speed import Execution
    from ganlab.step import TrainStep

    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        # The total only. FlopCounterMode's per-module attribution (torch.utils.module_tracker.ModuleTracker)
        # hooks the gradients of every module input that requires grad, and that breaks StyleGAN2's step
        # (torch 2.14): a view of a parameter taken under no_grad (the constant input expanded to the batch, when
        # the D update runs G under no_grad) requires grad without a grad_fn, which the hook refuses ("Expected
        # gradient function to be set"); and its hooks break autograd.grad, which R1 and the path length call
        # (pytorch/pytorch#131753). Every count goes to "Global", as with the tracker outside any module.
        counter.mod_tracker = _GlobalOnly()
    plain = OmegaConf.create({"clip_grad_norm": None, "cuda_graphs": "false"})
    eager = Execution(None, False, False, parts.G, parts.D, parts.D, parts.D)
    probe = TrainStep(replace(parts, execution=eager), plain, batch, NanWatch(parts.device, 0))
    cycle = regulariser_cycle(parts, probe.hooks["g_regularizer"])
    with counter:
        for step in range(1, cycle + 1):
            probe(step)
    return counter.get_total_flops() / (batch * probe.d_updates)


def run_row(spec: dict[str, Any]) -> dict[str, Any]:
    """One row, in this (child) process."""
    torch.manual_seed(0)
    if spec["kind"] == "baseline":
        root, steps, warmup, device = Path(spec["root"]), spec["steps"], spec["warmup"], spec["device"]
        if spec["workload"] == "mlp":
            result = bench_baseline.baseline_mlp(root, steps, warmup, batch_size=spec["batch"], device=device)
        elif spec["workload"] == "dcgan":
            width = spec["width"]
            size = spec["image_size"]
            result = bench_baseline.baseline_dcgan(
                root, steps, warmup, batch_size=spec["batch"], image_size=size, ngf=width, ndf=width, device=device
            )
        else:  # stylegan2: the settings of ganlab's configuration (stylegan2_settings)
            result = bench_baseline.baseline_stylegan2(root, steps, warmup, device=device, **spec["settings"])
    else:
        result = time_ganlab(spec["overrides"], spec["steps"], spec["warmup"])
    if result.get("peak_mem_mb") is None:  # on a CPU: the process's peak resident set (ru_maxrss is in KiB)
        result["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_in_child(spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--row", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s (--row-timeout)"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_here(spec: dict[str, Any]) -> dict[str, Any]:
    """One row in this process (--in-process): quicker, but peak memory is then the whole process's so far."""
    try:
        return run_row(spec)
    except Exception as err:  # a row that fails is reported in the table, as from a child
        return {"error": f"{type(err).__name__}: {err}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=None, help="default: each workload's own (BATCH)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--image-size", type=int, default=64, help="dcgan, stylegan2: image side")
    parser.add_argument("--width", type=int, default=64, help="dcgan: ngf = ndf")
    parser.add_argument(
        "--sg2-channel-base",
        type=int,
        default=None,
        help=f"stylegan2: model.channel_base; default: the preset's on CUDA, {CPU_SG2_CHANNEL_BASE} otherwise",
    )
    parser.add_argument("--sg2-channel-max", type=int, default=None, help="stylegan2: model.channel_max (preset: 512)")
    parser.add_argument("--mnist-n", type=int, default=10000, help="images in the MNIST-format files")
    parser.add_argument("--folder-n", type=int, default=4000, help="PNGs in the image folder")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for the FLOP/s fraction")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each row, round-robin; the median is shown")
    parser.add_argument("--only", default=None, help="comma-separated row labels to run (default: all)")
    parser.add_argument("--in-process", action="store_true", help="run the rows here (quick; for the tests)")
    parser.add_argument("--row-timeout", type=float, default=None, help="seconds a row's process may run")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return

    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    workloads = args.workloads.split(",")
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    at_least = {"steps": 1, "warmup": 0, "batch": 1, "image_size": 4, "width": 1, "repeats": 1, "mnist_n": 1}
    at_least |= {"folder_n": 1, "sg2_channel_base": 1, "sg2_channel_max": 1}
    for name, low in at_least.items():
        if getattr(args, name) is not None and getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    for name in ("peak_tflops", "row_timeout"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    sizes = {w: args.batch or BATCH[w] for w in workloads}
    batches = (
        f"{sizes[workloads[0]]}" if len(set(sizes.values())) == 1 else ", ".join(f"{w} {b}" for w, b in sizes.items())
    )
    print(
        f"# ganlab benchmark on {machine}; torch {torch.__version__}; batch {batches}; "
        f"{args.warmup} warm-up + {args.steps} timed steps per row; median of {args.repeats} run(s)"
    )
    channel_base = args.sg2_channel_base
    if channel_base is None and device.type != "cuda":
        channel_base = CPU_SG2_CHANNEL_BASE
    with tempfile.TemporaryDirectory() as tmp:
        for workload in workloads:
            batch = args.batch or BATCH[workload]
            root = Path(tmp) / workload
            if workload == "mlp":
                bench_baseline.make_mnist_files(root, n=args.mnist_n)
            else:
                bench_baseline.make_image_folder(root, n=args.folder_n, size=args.image_size)
            common = {
                "workload": workload,
                "root": str(root),
                "steps": args.steps,
                "warmup": args.warmup,
                "batch": batch,
                "device": str(device),
                "image_size": args.image_size,
                "width": args.width,
            }
            base = ganlab_overrides(
                workload, root, batch, args.image_size, args.width, channel_base, args.sg2_channel_max
            )
            base.append(f"trainer.device={device}")
            baseline_spec = {**common, "kind": "baseline"}
            about = None
            if workload == "stylegan2":
                settings = baseline_spec["settings"] = stylegan2_settings(base)
                about = (
                    f"stylegan2 {settings['image_size']}x{settings['image_size']}, batch {settings['batch_size']}: "
                    f"channel_base {settings['channel_base']}, channel_max {settings['channel_max']} (channels "
                    f"{stylegan2_widths(settings)}), z and w {settings['z_dim']}/{settings['w_dim']}, mapping "
                    f"{settings['mapping_layers']} layers; R1 gamma {settings['r1']:g} every "
                    f"{settings['d_reg_every']} D steps, path length every {settings['g_reg_every']} G steps"
                )
            rows = [("baseline (reference loop)", baseline_spec)]
            rows += [
                (label, {**common, "kind": "ganlab", "overrides": base + extra})
                for label, extra in variants(workload, device)
            ]
            if args.only:
                wanted = {w.strip() for w in args.only.split(",")}
                rows = [r for r in rows if r[0].strip() in wanted or r[0].startswith("baseline")]
            print(f"\n## {workload}\n")  # the line scripts/gpu_check.py's parse_bench keys the table by
            if about:
                print(f"{about}\n")
            print(
                f"| {'configuration':<44} | {'images/s':>9} | {'ms/step':>8} | {'peak MB':>8} | {'vs baseline':>11} |"
            )
            print(f"|{'-' * 46}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 13}|")
            # Rows run round-robin, --repeats times, and each reports its median: a machine whose speed drifts
            # (other tenants, turbo) then shifts every row alike instead of favouring whichever ran first. Each
            # row is printed as soon as its last run ends, so a slow section shows its rows as they come.
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in rows}
            baseline = None
            best: dict[str, Any] | None = None
            for repeat in range(args.repeats):
                for label, spec in rows:
                    result = run_here(spec) if args.in_process else run_in_child(spec, args.row_timeout)
                    runs[label].append(result)
                    if repeat < args.repeats - 1:
                        continue
                    ok = sorted((r for r in runs[label] if "error" not in r), key=lambda r: r["images_per_s"])
                    if not ok:
                        print(f"| {label:<44} | failed: {runs[label][0]['error'][:120]}", flush=True)
                        continue
                    result = ok[len(ok) // 2]
                    rate = result["images_per_s"]
                    if spec["kind"] == "baseline":
                        baseline = rate
                    ratio = f"{rate / baseline:>10.2f}x" if baseline else f"{'-':>11}"
                    print(
                        f"| {label:<44} | {rate:>9.1f} | {result['step_ms']:>8.1f} "
                        f"| {result['peak_mem_mb']:>8.0f} | {ratio} |",
                        flush=True,
                    )
                    if spec["kind"] == "ganlab" and (best is None or rate > best["images_per_s"]):
                        best = {**result, "label": label.strip()}
            if best and best.get("flops_per_image") and args.peak_tflops:
                achieved = best["flops_per_image"] * best["images_per_s"] / 1e12
                print(
                    f"\n{best['label']}: {achieved:.1f} TFLOP/s = {achieved / args.peak_tflops:.1%} of the "
                    f"{args.peak_tflops:g} TFLOP/s peak"
                )


if __name__ == "__main__":
    main()
