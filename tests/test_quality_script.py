"""scripts/quality.py's verdicts: a row that misses a target is marked, and `beats` compares with another row."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.conftest import compose_cfg

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "quality.py"
spec = importlib.util.spec_from_file_location("quality", SCRIPT)
assert spec is not None and spec.loader is not None
quality = importlib.util.module_from_spec(spec)
sys.modules["quality"] = quality  # dataclasses look their module up there
spec.loader.exec_module(quality)


def test_targets_every_seed_and_beats_are_checked() -> None:
    row = quality.Row(
        "preset",
        "preset",
        [],
        ["fid", "classes"],
        targets={"fid": ("<=", 3.0)},
        all_seeds={"classes": (">=", 10)},
        beats={"fid": "base"},
    )
    means = {"base": {"fid": 2.5, "classes": 10.0}}
    good = [{"fid": 2.0, "classes": 10.0}, {"fid": 2.2, "classes": 10.0}]
    assert quality.check(row, good, means) == []
    bad = [{"fid": 2.8, "classes": 10.0}, {"fid": 3.4, "classes": 9.0}]  # mean 3.1
    assert quality.check(row, bad, means) == [
        "mean fid 3.1 (target <= 3)",
        "classes >= 10 missed in 1 of 2 seeds",
        "mean fid 3.1 does not improve on base's 2.5",
    ]
    assert quality.check(row, good, {}) == ["fid not compared: base was not run"]


def test_within_a_factor_of_another_row_and_the_time_limit_are_checked() -> None:
    row = quality.Row("sg2", "sg2", [], ["fid"], within={"fid": ("dcgan", 1.5)}, max_train_s=600)
    means = {"dcgan": {"fid": 2.0}}
    assert quality.check(row, [{"fid": 2.9}, {"fid": 3.0}], means, [500.0, 590.0]) == []
    assert quality.check(row, [{"fid": 3.1}, {"fid": 3.3}], means, [500.0, 610.0]) == [
        "mean fid 3.2 not within 1.5x dcgan's (3)",
        "training took up to 610 s (limit 600)",
    ]
    assert quality.check(row, [{"fid": 1.0}], {}, [1.0]) == ["fid not compared: dcgan was not run"]


def test_table_shows_mean_and_std_and_the_verdict() -> None:
    base = quality.Row("base", "baseline", [], quality.IMAGE_METRICS)
    row = quality.Row("preset", "preset", [], quality.IMAGE_METRICS, beats={"fid_digits": "base"})
    one = {m: 1.0 for m in quality.IMAGE_METRICS}
    text = quality.table(
        [(base, [{**one, "fid_digits": 3.0}, {**one, "fid_digits": 4.0}], [10.0, 20.0]), (row, [one, one], [5.0, 5.0])],
        seeds=[0, 1],
    )
    lines = text.splitlines()
    assert lines[2].startswith("| baseline | 3.50 ± 0.50 |") and lines[2].endswith("| 15 | — |")
    assert lines[3].startswith("| preset | 1.00 ± 0.00 |") and lines[3].endswith("| 5 | met |")
    assert "Mean ± std over 2 seeds (0..1)" in lines[-1]
    # --seed runs one seed of a row beside the others; its table says which
    alone = quality.table([(base, [one], [10.0])], seeds=[2])
    assert "over seed 2 alone" in alone.splitlines()[-1]


def test_a_margin_over_another_metric_is_checked() -> None:
    """issue 18: SRResNet beats bicubic by >= 2 dB PSNR; refined digits teach a classifier >= 5 points more."""
    row = quality.Row("sr", "sr", [], quality.SR_METRICS, margin={"psnr": ("psnr_bicubic", 2.0)})
    assert quality.check(row, [{"psnr": 29.0, "psnr_bicubic": 26.5}, {"psnr": 28.0, "psnr_bicubic": 26.0}], {}) == []
    assert quality.check(row, [{"psnr": 27.0, "psnr_bicubic": 26.0}], {}) == [
        "mean psnr - psnr_bicubic = 1 (target >= 2)"
    ]


def test_a_score_near_another_is_checked_both_ways() -> None:
    """issue 19: the predictive score of generated data within 0.01 of the real-data predictor's, above or below."""
    row = quality.Row("ts", "ts", [], quality.SEQUENCE_METRICS, near={"predictive": ("predictive_real", 0.01)})
    assert quality.check(row, [{"predictive": 0.325, "predictive_real": 0.317}], {}) == []
    assert quality.check(row, [{"predictive": 0.310, "predictive_real": 0.317}], {}) == []
    assert quality.check(row, [{"predictive": 0.337, "predictive_real": 0.317}], {}) == [
        "mean predictive - predictive_real = 0.02 (target within ±0.01)"
    ]


def test_a_row_can_evaluate_another_rows_run_at_a_kept_checkpoint() -> None:
    stage = next(r for r in quality.ROWS if r.slug == "srresnet_stage")
    assert stage.train_slug == "srgan_digits" and stage.checkpoint == "checkpoints/step_0002000.pt"
    srgan = compose_cfg("experiment=srgan_digits", fast=False)
    assert srgan.trainer.keep_every == srgan.trainer.pretrain_steps == 2000  # that checkpoint is the MSE stage's


def test_a_longer_row_continues_the_shorter_rows_run_with_the_same_recipe() -> None:
    for row in (r for r in quality.ROWS if r.extends):
        shorter = next(r for r in quality.ROWS if r.slug == row.extends)
        recipe = [o for o in row.overrides if not o.startswith("trainer.steps=")]
        assert recipe == [o for o in shorter.overrides if not o.startswith("trainer.steps=")], row.slug
        assert row.overrides != shorter.overrides  # more steps


def test_continuing_copies_the_finished_run_once_and_counts_its_training_time(tmp_path, monkeypatch) -> None:
    short = quality.Row("short", "short", ["trainer.steps=10"], ["fid_digits"])
    long = quality.Row("long", "long", ["trainer.steps=20"], ["fid_digits"], extends="short")
    monkeypatch.setattr(quality, "ROWS", [short, long])
    finished = tmp_path / "short" / "seed1"
    (finished / "checkpoints").mkdir(parents=True)
    (finished / "checkpoints" / "last.pt").write_bytes(b"weights")
    (finished / "train_seconds.txt").write_text("12.5\n")
    (finished / "metrics.json").write_text('{"metrics": [{"metric": "fid_digits", "value": 2.0}]}')
    target = tmp_path / "long" / "seed1"
    assert quality.continue_from(long, 1, tmp_path, target) == 12.5
    assert (target / "checkpoints" / "last.pt").read_bytes() == b"weights"
    # The longer run gets its own time and its own evaluation, not the shorter one's.
    assert not (target / "train_seconds.txt").exists() and not (target / "metrics.json").exists()
    (target / "checkpoints" / "last.pt").write_bytes(b"trained on")
    assert quality.continue_from(long, 1, tmp_path, target) == 12.5
    assert (target / "checkpoints" / "last.pt").read_bytes() == b"trained on"  # an interrupted one is not reset
    assert quality.continue_from(short, 1, tmp_path, finished) == 0.0


def test_only_takes_prefixes_and_a_dollar_for_one_slug() -> None:
    rows = {r.slug: r for r in quality.ROWS}
    assert quality.chosen(rows["digits100_10k_ada"], "digits100_10k")
    assert not quality.chosen(rows["digits100_10k_ada"], "digits100_10k$")
    assert quality.chosen(rows["digits100_10k"], "digits100_10k$")
