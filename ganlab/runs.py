"""The runs of a sweep, read back for `ganlab report`: where they are, how each one stands (status.json), what
it measured (its TensorBoard scalars `metrics/<name>`), and their order by the monitored metric."""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ganlab import metric_names
from ganlab.checkpoint import CHECKPOINT_DIR
from ganlab.errors import ConfigError
from ganlab.evaluation import lower_is_better
from ganlab.status import STATUS_FILE, current_state, read_status

log = logging.getLogger("ganlab")

UNKNOWN = "unknown"  # no status.json: the run stopped before its first step (at composition or build)
METRIC_PREFIX = "metrics/"
EVAL_FILE = "metrics.json"  # what `ganlab eval` writes in the run directory
# The evaluators' primary metrics (images, 2-D, sequences), by plain name: what ranks runs that monitored none.
RANKED_WITHOUT_MONITOR = ("fid", "kl_all", "kl", "discriminative")


@dataclass
class Run:
    path: Path
    name: str  # its path relative to the others' common folder: "0", "1" for the jobs of a multirun
    state: str  # finished, running, crashed, diverged, interrupted or unknown
    note: str | None  # why it crashed or stopped, or what is known of a run elsewhere
    step: int | None  # the last step done
    steps: int | None  # trainer.steps
    saved_step: int | None  # the step of checkpoints/last.pt: where resume= continues
    overrides: list[str]
    monitor: str | None  # trainer.monitor, or the evaluator's primary metric (fid_<extractor>; kl_all for 2-D)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # metric -> [(step, value)]
    # metric -> "features=<extractor> n=<samples>" of its last value: values measured differently do not compare
    measured_with: dict[str, str] = field(default_factory=dict)
    samples: Path | None = None  # the last sample grid, samples/step_XXXXXXX.png

    @property
    def metrics(self) -> dict[str, float]:
        """The final value of each metric: its last evaluation."""
        return {name: points[-1][1] for name, points in self.curves.items() if points}


def is_run_dir(path: Path) -> bool:
    return (
        (path / STATUS_FILE).is_file()
        or (path / "config.yaml").is_file()
        or (path / ".hydra" / "config.yaml").is_file()
        or (path / CHECKPOINT_DIR).is_dir()
    )


def find_runs(paths: list[Path], command: str = "ganlab report") -> list[Path]:
    """Every run directory given, or found below a given directory (a multirun's jobs, or a tree of runs such as
    outputs/), in natural order (job 10 after job 9). Not a directory, or no run: a ConfigError that begins with
    `command`."""
    found: dict[Path, None] = {}
    for path in paths:
        if not path.is_dir():
            what = "a file, not a directory" if path.exists() else "no such directory"
            raise ConfigError(f"{command}: {path}: {what}; give a multirun directory or run directories.")
        runs = [path] if is_run_dir(path) else _runs_below(path)
        if not runs:
            raise ConfigError(
                f"{command}: no ganlab runs in {path} (a run directory holds status.json, config.yaml or "
                f"{CHECKPOINT_DIR}/). Give a multirun directory, e.g. outputs/multirun/<date>/<time>, or run "
                "directories."
            )
        found.update(dict.fromkeys(run.resolve() for run in runs))
    return sorted(found, key=natural_key)


def jobs_without_folder(sweep_dir: Path) -> list[str]:
    """A basic-launcher sweep's jobs that left no folder, as "<number> (<overrides>)": refused before they
    started (a bad value), or not run yet. Read from the sweep's multirun.yaml, which lists what was swept; []
    where it cannot tell (not a sweep folder, another sweeper, sweep functions that need the config to expand)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        hydra = OmegaConf.load(sweep_dir / "multirun.yaml").hydra
        if not str(hydra.sweeper._target_).endswith("BasicSweeper"):
            return []
        parsed = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
        jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    except Exception:  # anything unreadable or unexpanded: say nothing rather than something wrong
        return []
    swept = {o.key_or_group for o in parsed if o.is_sweep_override()}
    return [
        f"{number} ({' '.join(o for o in job if o.split('=', 1)[0].lstrip('+~') in swept)})"
        for number, job in enumerate(jobs)
        if not (sweep_dir / str(number)).is_dir()
    ]


def _runs_below(root: Path) -> list[Path]:
    runs = []
    for folder, subfolders, _ in os.walk(root):
        here = Path(folder)
        if here != root and is_run_dir(here):
            runs.append(here)
            subfolders.clear()  # a run's own folders (samples/, checkpoints/) hold no runs
        else:
            subfolders[:] = [s for s in subfolders if not s.startswith(".")]
    return runs


def natural_key(path: Path | str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def read_runs(run_dirs: list[Path]) -> list[Run]:
    base = Path(os.path.commonpath(run_dirs)) if len(run_dirs) > 1 else run_dirs[0].parent
    return [read_run(path, path.relative_to(base).as_posix()) for path in run_dirs]


def read_run(path: Path, name: str) -> Run:
    record = read_status(path)
    if record is not None:
        state, note = current_state(record)
        run = Run(
            path,
            name,
            state,
            note,
            step=record.get("step"),
            steps=record.get("steps"),
            saved_step=record.get("saved_step"),
            overrides=list(record.get("overrides") or []),
            monitor=record.get("monitor"),
        )
    else:
        run = _read_run_without_status(path, name)
    evaluation = read_evaluation(path / EVAL_FILE)
    run.curves = merge_evaluation(metric_curves(path), evaluation)
    during = (record or {}).get("measured_with")  # the evaluations during training
    if during:
        run.measured_with = dict.fromkeys(run.curves, measurement(during.get("features"), during.get("n")))
    run.measured_with.update(evaluation_measurements(evaluation, run.curves))
    grids = sorted((path / "samples").glob("step_*.png"))
    run.samples = grids[-1] if grids else None
    return run


def _read_run_without_status(path: Path, name: str) -> Run:
    """A run directory without status.json: the run stopped before its first step. Its config still says what
    it was asked to do."""
    config: Any = {}
    for candidate in (path / "config.yaml", path / ".hydra" / "config.yaml"):
        if candidate.is_file():
            config = OmegaConf.load(candidate)
            break
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
    steps = OmegaConf.select(config, "trainer.steps", default=None) if config else None
    monitor = OmegaConf.select(config, "trainer.monitor", default=None) if config else None
    note = "no status.json: it stopped before its first step"
    if (path / STATUS_FILE).exists():  # written by every run from its first step on: something spoilt this one
        saved = " It has a checkpoint (resume= continues it)." if (path / CHECKPOINT_DIR / "last.pt").is_file() else ""
        note = f"its {STATUS_FILE} is unreadable (empty, cut short or not a ganlab record): how it ended is unknown."
        note += saved
    return Run(path, name, UNKNOWN, note, None, steps, None, overrides, monitor)


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} of every scalar in the run's event files, as TensorBoard shows them (events that a
    resume purged are left out)."""
    from tensorboard.backend.event_processing.event_accumulator import (
        AUDIO,
        HISTOGRAMS,
        IMAGES,
        SCALARS,
        TENSORS,
        EventAccumulator,
    )

    # Keep every scalar, next to nothing else: the sample images are most of the file.
    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0, IMAGES: 1, AUDIO: 1, HISTOGRAMS: 1, TENSORS: 1})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def metric_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value)]} of the run's `metrics/<name>` scalars."""
    return metrics_of(read_scalars(run_dir))


def metrics_of(scalars: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    return {tag.removeprefix(METRIC_PREFIX): points for tag, points in scalars.items() if tag.startswith(METRIC_PREFIX)}


Evaluation = tuple[int, list[dict[str, Any]]]  # metrics.json: its step and one record per metric


def read_evaluation(path: Path) -> Evaluation | None:
    """What `ganlab eval` wrote (metrics.json): its step and the records of its numeric metrics; None when there
    is none, or the file is not one that ganlab eval wrote."""
    try:
        measured = json.loads(path.read_text())
        step = int(measured["step"])
        records = [m for m in measured["metrics"] if isinstance(m["value"], int | float) and "metric" in m]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:  # said, or the run would seem never evaluated
        log.warning("ignoring %s: not a metrics file that ganlab eval wrote (%s: %s)", path, type(err).__name__, err)
        return None
    return step, records


def merge_evaluation(
    curves: dict[str, list[tuple[int, float]]], evaluation: Evaluation | None
) -> dict[str, list[tuple[int, float]]]:
    """The run's curves with what `ganlab eval` measured afterwards added at its step; at a step the training's
    own evaluation also logged, the later `ganlab eval` counts."""
    if evaluation is None:
        return curves
    step, records = evaluation
    merged = {name: list(points) for name, points in curves.items()}
    for record in records:
        points = [p for p in merged.get(record["metric"], []) if p[0] != step]
        merged[record["metric"]] = sorted([*points, (step, float(record["value"]))])
    return merged


def measurement(features: Any, n: Any) -> str:
    return f"features={features or 'none'} n={n}"


def evaluation_measurements(
    evaluation: Evaluation | None, curves: dict[str, list[tuple[int, float]]]
) -> dict[str, str]:
    """What `ganlab eval` measured each metric with, for the metrics whose last value is its."""
    if evaluation is None:
        return {}
    step, records = evaluation
    return {
        r["metric"]: measurement(r.get("features"), r.get("n_samples"))
        for r in records
        if curves.get(r["metric"]) and curves[r["metric"]][-1][0] == step
    }


def check_comparable(runs: list[Run], metric: str | None) -> None:
    """Refuse to rank runs whose values of `metric` were measured with different extractors or sample counts:
    an FID in the digits classifier's features and one in Inception's are different numbers."""
    if metric is None:
        return
    groups: dict[str, list[str]] = {}
    for run in runs:
        value = run.metrics.get(metric)
        if value is not None and math.isfinite(value) and metric in run.measured_with:
            groups.setdefault(run.measured_with[metric], []).append(run.name)
    if len(groups) > 1:
        listed = "; ".join(f"{how}: {', '.join(names)}" for how, names in sorted(groups.items()))
        raise ConfigError(
            f"ganlab report: the runs' {metric} values were measured differently and do not compare ({listed}). "
            f"Evaluate them alike (ganlab eval run=<run> features=... n=...) or report each group separately."
        )


def sort_metric(runs: list[Run], requested: str | None) -> str | None:
    """The metric to rank by: `requested` (`fid` standing for the one fid_<extractor> the runs logged), else the
    one most of the runs monitor. A requested metric that no run logged is a ConfigError naming those that were;
    so is a plain `fid` logged in several extractors, and runs monitoring one metric in different extractors."""
    logged = sorted({name for run in runs for name in run.curves})
    if requested is not None:
        return logged_metric(requested, logged)
    monitors = Counter(run.monitor for run in runs if run.monitor)
    refuse_mixed_extractors(monitors)
    if monitors:  # a run that never started names its monitor as configured: fid for fid_<extractor>
        return metric_names.resolve(monitors.most_common(1)[0][0], logged)
    # Runs that did not evaluate while training, evaluated afterwards with ganlab eval: the evaluator's own.
    primaries = [name for name in logged if metric_names.split(name)[0] in RANKED_WITHOUT_MONITOR]
    refuse_mixed_extractors(Counter(primaries))
    return min(primaries, key=lambda name: RANKED_WITHOUT_MONITOR.index(metric_names.split(name)[0]), default=None)


def logged_metric(requested: str, logged: list[str]) -> str:
    if requested in logged:
        return requested
    alike = [name for name in logged if metric_names.split(name)[0] == requested]
    if len(alike) == 1:
        return alike[0]
    known = ", ".join(logged) or "none (evaluate with trainer.eval_every=N or trainer.monitor=<metric>)"
    if alike:
        raise ConfigError(
            f"ganlab report: metric={requested} was measured in several feature spaces ({', '.join(alike)}), "
            "whose values do not compare: name one."
        )
    raise ConfigError(f"ganlab report: metric={requested}: no run logged metrics/{requested}; logged: {known}.")


def refuse_mixed_extractors(metrics: Counter[str]) -> None:
    """One metric measured in different extractors' features (fid_digits and fid_inception) ranks nothing."""
    by_plain: dict[str, list[str]] = {}
    for name in metrics:
        plain, extractor = metric_names.split(name)
        if extractor:
            by_plain.setdefault(plain, []).append(name)
    for plain, names in by_plain.items():
        if len(names) > 1:
            counts = ", ".join(f"{name} ({metrics[name]} runs)" for name in sorted(names))
            raise ConfigError(
                f"ganlab report: the runs measured {plain} in different feature spaces ({counts}); those values "
                "do not compare. Evaluate them alike (ganlab eval run=<run> features=...) and rank with "
                f"metric=<name>, or report each group separately."
            )


def rank(runs: list[Run], metric: str | None) -> list[Run]:
    """Best first by `metric` (lower or higher, as the metric wants); runs without a finite value last, by name."""

    def key(run: Run) -> tuple[int, float, list[Any]]:
        value = run.metrics.get(metric) if metric else None
        if value is None or not math.isfinite(value):
            return (1, 0.0, natural_key(run.name))
        return (0, value if lower_is_better(metric) else -value, natural_key(run.name))

    return sorted(runs, key=key)


def split_overrides(runs: list[Run]) -> tuple[list[str], dict[str, list[str]]]:
    """(the overrides every run shares, {run name: its other overrides}): what tells the runs apart."""
    if len(runs) < 2:
        return [], {run.name: run.overrides for run in runs}
    common = [o for o in runs[0].overrides if all(o in run.overrides for run in runs[1:])]
    return common, {run.name: [o for o in run.overrides if o not in common] for run in runs}
