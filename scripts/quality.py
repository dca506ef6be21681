"""Train and evaluate ganlab's CPU-sized presets over several seeds; print and write a markdown results table.

Every number comes from the real command line: `ganlab train experiment=<preset> seed=<s>` then
`ganlab eval run=<that run>`, with the evaluation's defaults (2,500 samples for 2-D mixtures, 10,000 images in
the digits classifier's feature space). Baselines run beside the presets so the table shows what each preset
buys: a plain non-saturating MLP GAN on ring8 (same steps) and the default `ganlab train` DCGAN.

    python scripts/quality.py                          # everything, 5 seeds (hours on 2 CPU cores)
    python scripts/quality.py --only ring8 --seeds 2   # a subset
    python scripts/quality.py --out results.md --runs /tmp/quality
    python scripts/quality.py --only digits100_20k --seed 1   # one seed; run seeds side by side, then --seeds 3

The targets checked are those the README states; a row that misses one is marked, not hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganlab.evaluation import lower_is_better

GANLAB = [sys.executable, "-m", "ganlab"]


@dataclass
class Row:
    slug: str  # its folder under --runs
    name: str  # the row's label
    overrides: list[str]  # what `ganlab train` gets besides seed and the run dir
    metrics: list[str]  # columns, in order
    targets: dict[str, tuple[str, float]] = field(default_factory=dict)  # metric -> (">=" | "<=", bound)
    all_seeds: dict[str, tuple[str, float]] = field(default_factory=dict)  # ... that every seed must meet
    beats: dict[str, str] = field(default_factory=dict)  # metric -> slug of a row whose mean it must improve on
    within: dict[str, tuple[str, float]] = field(default_factory=dict)  # metric -> (slug, f): mean <= f x theirs
    max_train_s: float | None = None  # every seed's training must take at most this long
    margin: dict[str, tuple[str, float]] = field(default_factory=dict)  # metric -> (other, d): mean - other's >= d
    near: dict[str, tuple[str, float]] = field(default_factory=dict)  # metric -> (other, d): |mean - other's| <= d
    train_slug: str | None = None  # evaluate the run of this row instead of training one of its own
    checkpoint: str = ""  # what `ganlab eval` reads inside the run directory ("": checkpoints/last.pt)
    init_from: str | None = None  # start from the run of this row with the same seed (init=)
    extends: str | None = None  # continue a copy of this row's run with the same seed (resume=, more steps)
    scalars: dict[str, str] = field(default_factory=dict)  # metric -> TensorBoard tag whose last value it reports


POINT_METRICS = ["modes", "high_quality", "kl", "kl_all"]
# Every image row is measured in the digits classifier's features (ganlab eval's default for digits data).
IMAGE_METRICS = ["fid_digits", "kid_digits", "precision_digits", "recall_digits", "classes", "class_kl"]
SR_METRICS = ["psnr", "ssim", "fid_digits", "psnr_bicubic", "ssim_bicubic", "fid_digits_bicubic"]
REFINEMENT_METRICS = ["real_accuracy", "real_accuracy_raw", "fid_digits", "fid_digits_raw"]
SEQUENCE_METRICS = ["discriminative", "predictive", "predictive_real", "marginal", "autocorrelation"]
LIMITED = ["experiment=dcgan_digits", "data.limit=100"]
RT = {"r_t": "D/real_sign"}
TUNE = ["experiment=dcgan_digits", "data.classes=[5,6,7,8,9]", "data.limit=50", "trainer.steps=1000"]
ADA = ["augment.ada=true", "augment.ada_kimg=100"]  # p can move 0 -> 1 in 100k images: short runs need it faster
# TimeGAN's benchmark (Yoon et al. 2019, Table 1 on sines): RCGAN's discriminative score <= 0.05 and its
# predictive score (train on synthetic, test on real) within 0.01 of the predictor trained on real data.
TIMEGAN_TARGETS: dict = {"targets": {"discriminative": ("<=", 0.05)}, "near": {"predictive": ("predictive_real", 0.01)}}
ROWS = [
    Row(
        "ring8",
        "ring8",
        ["experiment=ring8"],
        POINT_METRICS,
        targets={"high_quality": (">=", 0.95), "kl": ("<=", 0.02)},
        all_seeds={"modes": (">=", 8)},
    ),
    Row(
        "ring8_plain_gan",
        "ring8, plain loss=gan (baseline)",
        ["model=mlp", "data=gaussians", "data.kind=ring8", "loss=gan", "trainer.steps=6000"],
        POINT_METRICS,
    ),
    Row(
        "grid25",
        "grid25",
        ["experiment=grid25"],
        POINT_METRICS,
        targets={"modes": (">=", 24.5), "high_quality": (">=", 0.95), "kl": ("<=", 0.03)},
    ),
    Row("default_dcgan", "default DCGAN (baseline)", [], IMAGE_METRICS),
    Row(
        "dcgan_digits",
        "dcgan_digits",
        ["experiment=dcgan_digits"],
        IMAGE_METRICS,
        targets={"class_kl": ("<=", 0.05)},
        all_seeds={"classes": (">=", 10)},
        beats={"fid_digits": "default_dcgan"},
    ),
    Row(
        "cgan_digits",
        "cgan_digits",
        ["experiment=cgan_digits"],
        [*IMAGE_METRICS, "class_accuracy"],
        targets={"class_accuracy": (">=", 0.90), "class_kl": ("<=", 0.05)},
        all_seeds={"classes": (">=", 10)},
        beats={"fid_digits": "default_dcgan"},
    ),
    *(
        Row(
            preset,
            preset,
            [f"experiment={preset}"],
            IMAGE_METRICS,
            targets={"class_kl": ("<=", 0.05)},
            all_seeds={"classes": (">=", 10)},
            within={
                "fid_digits": ("dcgan_digits", 1.5)
            },  # issue 17: FID no worse than 1.5x dcgan_digits' in 10 minutes
            max_train_s=600,
        )
        for preset in ("progan_digits", "stylegan2_digits")
    ),
    # Issue 18. srgan_digits is one run: SRResNet's MSE stage (kept as step_0002000.pt), then the game. The
    # MSE-only SRResNet must beat bicubic by >= 2 dB PSNR; SRGAN must have a lower FID than it (at some PSNR).
    # The SRResNet compared with is trained on MSE alone for as many steps as the whole SRGAN run.
    Row(
        "srresnet_digits",
        "SRResNet: srgan_digits on MSE alone, all 3000 steps",
        ["experiment=srgan_digits", "trainer.pretrain_steps=3000", "trainer.keep_every=null"],
        SR_METRICS,
        margin={"psnr": ("psnr_bicubic", 2.0)},
    ),
    Row(
        "srgan_digits",
        "srgan_digits (SRGAN: 2000 steps MSE, then 1000 perceptual + adversarial)",
        ["experiment=srgan_digits"],
        SR_METRICS,
        beats={"fid_digits": "srresnet_digits"},
        max_train_s=600,
    ),
    Row(
        "srresnet_stage",
        "srgan_digits at step 2000 (SRResNet, MSE only)",
        ["experiment=srgan_digits"],
        SR_METRICS,
        margin={"psnr": ("psnr_bicubic", 2.0)},
        train_slug="srgan_digits",
        checkpoint="checkpoints/step_0002000.pt",
    ),
    # SimGAN's claim: a classifier trained on refined synthetic digits beats the same one trained on the raw
    # rendered digits, on held-out real digits, by >= 5 points.
    Row(
        "simgan_digits",
        "simgan_digits",
        ["experiment=simgan_digits"],
        REFINEMENT_METRICS,
        margin={"real_accuracy": ("real_accuracy_raw", 0.05)},
        max_train_s=600,
    ),
    Row(
        "rcgan_sines",
        "rcgan_sines",
        ["experiment=rcgan_sines"],
        SEQUENCE_METRICS,
        **TIMEGAN_TARGETS,
        max_train_s=600,
    ),
    # 3.4 times the preset's steps, affordable in bfloat16 on a CPU with AVX-512 BF16 (2026-12-01: no closer to 0.05).
    Row(
        "rcgan_sines_bf16_12k",
        "rcgan_sines, 12 000 steps in bfloat16",
        ["experiment=rcgan_sines", "trainer.precision=bf16", "trainer.steps=12000"],
        SEQUENCE_METRICS,
        **TIMEGAN_TARGETS,
    ),
    Row("crnngan_sines", "crnngan_sines (C-RNN-GAN's bidirectional D)", ["experiment=crnngan_sines"], SEQUENCE_METRICS),
    # Issue 21, limited data: dcgan_digits on 100 digits (10 a class), 2000 steps; ADA must cut the FID by >= 30 %.
    # r_t = E[sign(D(real))] over the last 50 steps: near 1 when D has memorised its set, near 0.6 under ADA.
    Row("digits100", "dcgan_digits, data.limit=100", LIMITED, [*IMAGE_METRICS, "r_t"], scalars=RT),
    Row(
        "digits100_diffaugment",
        "dcgan_digits, data.limit=100, DiffAugment (color,translation,cutout)",
        [*LIMITED, "augment.diffaugment=[color,translation,cutout]"],
        [*IMAGE_METRICS, "r_t"],
        scalars=RT,
    ),
    Row(
        "digits100_ada",
        "dcgan_digits, data.limit=100, ADA (ada_kimg=100)",
        [*LIMITED, *ADA],
        [*IMAGE_METRICS, "r_t", "p"],
        within={"fid_digits": ("digits100", 0.7)},
        scalars={**RT, "p": "augment/p"},
    ),
    # The same at 10 000 steps, where the baseline's recall keeps falling towards its 100 images and ADA's does not.
    Row(
        "digits100_10k",
        "dcgan_digits, data.limit=100, 10 000 steps",
        [*LIMITED, "trainer.steps=10000"],
        [*IMAGE_METRICS, "r_t"],
        scalars=RT,
    ),  # fmt: skip
    Row(
        "digits100_10k_ada",
        "dcgan_digits, data.limit=100, 10 000 steps, ADA (ada_kimg=100)",
        [*LIMITED, "trainer.steps=10000", *ADA],
        [*IMAGE_METRICS, "r_t", "p"],
        within={"fid_digits": ("digits100_10k", 0.7)},
        scalars={**RT, "p": "augment/p"},
    ),
    Row(
        "digits100_10k_diffaugment",
        "dcgan_digits, data.limit=100, 10 000 steps, DiffAugment (color,translation,cutout)",
        [*LIMITED, "trainer.steps=10000", "augment.diffaugment=[color,translation,cutout]"],
        [*IMAGE_METRICS, "r_t"],
        scalars=RT,
    ),
    # The same 10 000 steps with r_t steered to 0.8 instead of the paper's 0.6: less augmentation (p about 0.08)
    # stops D memorising 100 images as well and costs G less (ada_target on seed 0: 0.4 1.44, 0.5 1.34,
    # 0.6 1.29, 0.7 1.17, 0.8 1.16).
    Row(
        "digits100_10k_ada08",
        "dcgan_digits, data.limit=100, 10 000 steps, ADA (ada_kimg=100, ada_target=0.8)",
        [*LIMITED, "trainer.steps=10000", *ADA, "augment.ada_target=0.8"],
        [*IMAGE_METRICS, "r_t", "p"],
        within={"fid_digits": ("digits100_10k", 0.7)},
        scalars={**RT, "p": "augment/p"},
    ),
    # ... and at 20 000 steps: each continues its 10 000-step run (resume= is exact, so this is one long run).
    Row(
        "digits100_20k",
        "dcgan_digits, data.limit=100, 20 000 steps",
        [*LIMITED, "trainer.steps=20000"],
        [*IMAGE_METRICS, "r_t"],
        scalars=RT,
        extends="digits100_10k",
    ),
    Row(
        "digits100_20k_ada",
        "dcgan_digits, data.limit=100, 20 000 steps, ADA (ada_kimg=100)",
        [*LIMITED, "trainer.steps=20000", *ADA],
        [*IMAGE_METRICS, "r_t", "p"],
        within={"fid_digits": ("digits100_20k", 0.7)},
        scalars={**RT, "p": "augment/p"},
        extends="digits100_10k_ada",
    ),
    Row(
        "digits100_20k_ada08",
        "dcgan_digits, data.limit=100, 20 000 steps, ADA (ada_kimg=100, ada_target=0.8)",
        [*LIMITED, "trainer.steps=20000", *ADA, "augment.ada_target=0.8"],
        [*IMAGE_METRICS, "r_t", "p"],
        within={"fid_digits": ("digits100_20k", 0.7)},
        scalars={**RT, "p": "augment/p"},
        extends="digits100_10k_ada08",
    ),
    # Issue 21, transfer: pre-train on digits 0-4, fine-tune on 50 images of 5-9 with init= and FreezeD; it must
    # reach a lower FID (against all of 5-9) than those 50 images from scratch, in as many steps.
    Row(
        "digits04",
        "pre-training: dcgan_digits on digits 0-4",
        ["experiment=dcgan_digits", "data.classes=[0,1,2,3,4]"],
        IMAGE_METRICS,
    ),  # fmt: skip
    Row("digits59_scratch", "digits 5-9, 50 images, 1000 steps from scratch", TUNE, IMAGE_METRICS),
    Row(
        "digits59_init",
        "digits 5-9, 50 images, 1000 steps from the 0-4 run (init=, no FreezeD)",
        TUNE,
        IMAGE_METRICS,
        init_from="digits04",
    ),
    Row(
        "digits59_freezed",
        "digits 5-9, 50 images, 1000 steps from the 0-4 run (init=, FreezeD freeze=1)",
        [*TUNE, "model.discriminator.freeze=1"],
        IMAGE_METRICS,
        init_from="digits04",
        beats={"fid_digits": "digits59_scratch"},
    ),
    # The same two with ADA on the 50 images (the ADA paper's own transfer setting): fine-tuning must beat both.
    Row(
        "digits59_scratch_ada",
        "digits 5-9, 50 images, 1000 steps from scratch, ADA (ada_kimg=100)",
        [*TUNE, *ADA],
        IMAGE_METRICS,
    ),
    Row(
        "digits59_init_ada",
        "digits 5-9, 50 images, 1000 steps from the 0-4 run (init=, no FreezeD, ADA ada_kimg=100)",
        [*TUNE, *ADA],
        IMAGE_METRICS,
        init_from="digits04",
    ),
    Row(
        "digits59_freezed_ada",
        "digits 5-9, 50 images, 1000 steps from the 0-4 run (init=, FreezeD freeze=1, ADA ada_kimg=100)",
        [*TUNE, "model.discriminator.freeze=1", *ADA],
        IMAGE_METRICS,
        init_from="digits04",
        beats={"fid_digits": "digits59_scratch"},
    ),
]


def run(cmd: list[str], log: Path) -> None:
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {done.returncode}; see {log}")


def measure(row: Row, seed: int, runs: Path) -> tuple[dict[str, float], float]:
    run_dir = runs / (row.train_slug or row.slug) / f"seed{seed}"
    metrics_file, timing_file = runs / row.slug / f"seed{seed}" / "metrics.json", run_dir / "train_seconds.txt"
    log = runs / row.slug / f"seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not timing_file.is_file():  # a re-run of the script reuses finished runs and measurements
        earlier = continue_from(row, seed, runs, run_dir)
        start = time.perf_counter()
        # No evaluation inside training: `ganlab eval` measures once, with its own defaults.
        init = [f"init={runs / row.init_from / f'seed{seed}'}"] if row.init_from else []
        resume = [f"resume={run_dir}"] if row.extends else []
        run([*GANLAB, "train", *row.overrides, *init, *resume, f"seed={seed}", "trainer.monitor=null",
             "trainer.eval_every=null", f"hydra.run.dir={run_dir}"], log)  # fmt: skip
        timing_file.write_text(f"{earlier + time.perf_counter() - start:.1f}\n")
    if not metrics_file.is_file():
        metrics_file.parent.mkdir(parents=True, exist_ok=True)
        run([*GANLAB, "eval", f"run={run_dir / row.checkpoint}", f"out={metrics_file}"], log)
    report = json.loads(metrics_file.read_text())
    metrics = {m["metric"]: m["value"] for m in report["metrics"]} | last_scalars(run_dir, row.scalars)
    return metrics, float(timing_file.read_text())


def continue_from(row: Row, seed: int, runs: Path, run_dir: Path) -> float:
    """For a row that extends another: copy that row's finished run (same seed) to `run_dir`, once, and return
    the seconds its training took, so the longer row's time counts every step. Resume is exact, so the copy
    trained on is the same as one trained for all the steps at once."""
    if not row.extends:
        return 0.0
    shorter = runs / row.extends / f"seed{seed}"
    _, seconds = measure(next(r for r in ROWS if r.slug == row.extends), seed, runs)  # trains it if need be
    if not run_dir.exists():
        shutil.copytree(shorter, run_dir, ignore=shutil.ignore_patterns("train_seconds.txt", "metrics.json"))
    return seconds


def last_scalars(run_dir: Path, tags: dict[str, str]) -> dict[str, float]:
    """The last logged value of each TensorBoard tag, by the name the table gives it."""
    if not tags:
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {name: events.Scalars(tag)[-1].value for name, tag in tags.items()}


def fmt(metric: str, values: list[float]) -> str:
    small_fid = metric.startswith("fid") and statistics.fmean(values) < 1  # super-resolution's FIDs are < 0.1
    scale, digits = (
        (100.0, 1) if metric == "high_quality" else (1.0, 3 if not metric.startswith("fid") or small_fid else 2)
    )
    if metric in ("modes", "classes"):
        digits = 1
    mean = statistics.fmean(values) * scale
    std = statistics.pstdev(values) * scale if len(values) > 1 else 0.0
    unit = " %" if metric == "high_quality" else ""
    return f"{mean:.{digits}f} ± {std:.{digits}f}{unit}"


def meets(value: float, rule: tuple[str, float]) -> bool:
    op, bound = rule
    return value >= bound if op == ">=" else value <= bound


def check(
    row: Row, per_seed: list[dict[str, float]], means: dict[str, dict[str, float]], secs: list[float] | None = None
) -> list[str]:
    """The targets `row` misses; `means` holds each measured row's mean metrics, by slug, for `beats` and
    `within`; `secs` each seed's training time, for `max_train_s`."""
    secs = secs or []
    misses = []
    for metric, rule in row.targets.items():
        mean = statistics.fmean(r[metric] for r in per_seed)
        if not meets(mean, rule):
            misses.append(f"mean {metric} {mean:.3g} (target {rule[0]} {rule[1]:g})")
    for metric, rule in row.all_seeds.items():
        bad = [i for i, r in enumerate(per_seed) if not meets(r[metric], rule)]
        if bad:
            misses.append(f"{metric} {rule[0]} {rule[1]:g} missed in {len(bad)} of {len(per_seed)} seeds")
    for metric, other in row.beats.items():
        if other not in means:
            misses.append(f"{metric} not compared: {other} was not run")
            continue
        mean, theirs = statistics.fmean(r[metric] for r in per_seed), means[other][metric]
        if not (mean < theirs if lower_is_better(metric) else mean > theirs):
            misses.append(f"mean {metric} {mean:.3g} does not improve on {other}'s {theirs:.3g}")
    for metric, (other, factor) in row.within.items():
        if other not in means:
            misses.append(f"{metric} not compared: {other} was not run")
            continue
        mean, bound = statistics.fmean(r[metric] for r in per_seed), factor * means[other][metric]
        if not (mean <= bound if lower_is_better(metric) else mean >= bound):
            misses.append(f"mean {metric} {mean:.3g} not within {factor:g}x {other}'s ({bound:.3g})")
    for metric, (other, delta) in row.margin.items():
        gap = statistics.fmean(r[metric] - r[other] for r in per_seed)
        if gap < delta:
            misses.append(f"mean {metric} - {other} = {gap:.3g} (target >= {delta:g})")
    for metric, (other, delta) in row.near.items():
        gap = statistics.fmean(r[metric] - r[other] for r in per_seed)
        if abs(gap) > delta:
            misses.append(f"mean {metric} - {other} = {gap:.3g} (target within ±{delta:g})")
    if row.max_train_s is not None and secs and max(secs) > row.max_train_s:
        misses.append(f"training took up to {max(secs):.0f} s (limit {row.max_train_s:.0f})")
    return misses


def table(results: list[tuple[Row, list[dict[str, float]], list[float]]], seeds: list[int]) -> str:
    lines = []
    means = {
        row.slug: {m: statistics.fmean(r[m] for r in per_seed) for m in row.metrics} for row, per_seed, _ in results
    }
    for kind in (POINT_METRICS, IMAGE_METRICS, SR_METRICS, REFINEMENT_METRICS, SEQUENCE_METRICS):
        group = [r for r in results if r[0].metrics[: len(kind)] == kind]
        if not group:
            continue
        columns = list(dict.fromkeys(m for row, _, _ in group for m in row.metrics))
        lines.append("| run | " + " | ".join(columns) + " | train s | targets |")
        lines.append("|---" * (len(columns) + 3) + "|")
        for row, per_seed, secs in group:
            cells = [fmt(m, [r[m] for r in per_seed]) if m in row.metrics else "" for m in columns]
            misses = check(row, per_seed, means, secs)
            judged = (
                row.targets or row.all_seeds or row.beats or row.within or row.margin or row.near or row.max_train_s
            )
            verdict = "—" if not judged else ("met" if not misses else "; ".join(misses))
            lines.append(f"| {row.name} | " + " | ".join(cells) + f" | {statistics.fmean(secs):.0f} | {verdict} |")
        lines.append("")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    which = f"{len(seeds)} seeds ({seeds[0]}..{seeds[-1]})" if len(seeds) > 1 else f"seed {seeds[0]} alone"
    lines.append(f"Mean ± std over {which}; {machine}; `python scripts/quality.py`.")
    return "\n".join(lines)


def chosen(row: Row, wanted: str) -> bool:
    """`--only` takes prefixes of slugs or names (`digits100` is every limited-data row); a trailing `$` asks
    for that slug alone (`digits100_10k$` without `digits100_10k_ada`)."""
    if wanted.endswith("$"):
        return row.slug == wanted[:-1]
    return row.name.startswith(wanted) or row.slug.startswith(wanted)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="only this seed (to run seeds side by side; --seeds N then reads them all)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated row names or slugs (prefixes; `slug$`: that one alone) to run"
    )
    parser.add_argument("--runs", type=Path, default=Path("outputs/quality"), help="where the runs go")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if args.seeds < 1 or (args.seed is not None and args.seed < 0):
        parser.error("--seeds must be >= 1 and --seed >= 0")
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    rows = [r for r in ROWS if not wanted or any(chosen(r, w) for w in wanted)]
    unmatched = [w for w in wanted if not any(chosen(r, w) for r in ROWS)]
    if unmatched:
        parser.error(f"--only {', '.join(unmatched)} names no row; rows: {', '.join(r.slug for r in ROWS)}")
    seeds = [args.seed] if args.seed is not None else list(range(args.seeds))
    results = []
    for row in rows:
        per_seed, secs = [], []
        for seed in seeds:
            metrics, seconds = measure(row, seed, args.runs)
            per_seed.append(metrics)
            secs.append(seconds)
            shown = ", ".join(f"{m} {metrics[m]:.4g}" for m in row.metrics)
            print(f"{row.name} seed {seed}: {shown} ({seconds:.0f} s)", flush=True)
        results.append((row, per_seed, secs))
    text = table(results, seeds)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
