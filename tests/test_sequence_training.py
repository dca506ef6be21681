"""Recurrent GANs on sequences end to end: every new option trains, resume is bitwise, and `ganlab sample` / `ganlab
eval` write sequences, tables and pictures in the data's own units."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.checkpoint import load_checkpoint
from ganlab.cli import main
from ganlab.errors import ConfigError
from ganlab.evaluators.sequence import TaskEvaluator
from ganlab.models.rnn import RNNDiscriminator
from ganlab.train import train
from tests.conftest import assert_same_networks, compose_cfg, exits_2, read_events, straight_and_resumed_from_step_4

SINES = ["model=rnn", "data=sines", "data.n=64"]
SLOW = pytest.mark.slow  # for the default suite's 4 minutes: the unrolled G and the double backward cost most


def write_series(path: Path, rows: int = 60) -> np.ndarray:
    """A two-column series in its own units (temperatures, pressures) with a regime label that changes."""
    t = np.arange(rows)
    values = np.stack([15 + 10 * np.sin(t / 4), 1000 + 30 * np.cos(t / 7)], 1)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["temperature", "pressure", "regime"])
        for i, (a, b) in enumerate(values):
            writer.writerow([f"{a:.6f}", f"{b:.6f}", "calm" if i % 20 < 10 else "storm"])
    return values


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            ["model.generator.cell=gru", "model.discriminator.cell=gru", "model.generator.layers=2"], marks=SLOW
        ),
        pytest.param(["model.generator.feedback=true", "data.prefix=3", "model.generator.layers=2"], marks=SLOW),
        # C-RNN-GAN's D, and a penalty through the RNN
        pytest.param(["model.discriminator.bidirectional=true", "loss=wgan_gp"], marks=SLOW),
        ["data.prefix=5", "trainer.eval_every=4", "trainer.eval_repeats=1", "trainer.eval_post_hoc_steps=2"],
    ],
    ids=["gru", "feedback-prefix", "bidirectional", "prefix-evaluated"],
)
def test_every_sequence_option_trains_and_draws_sequences(options: list[str], tmp_path: Path) -> None:
    train(compose_cfg(*SINES, *options, "trainer.n_critic=2"), tmp_path)
    scalars, images = read_events(tmp_path)
    if "trainer.eval_every=4" in options:  # trainer.eval_every judges sequences as `ganlab eval` does
        assert [step for step, _ in scalars["metrics/discriminative"]] == [4]
        assert 0 <= scalars["metrics/discriminative"][0][1] <= 0.5
        assert "metrics/predictive_real" in scalars and "metrics/marginal_c4" in scalars
    assert [step for step, _ in scalars["loss/D"]] == [2, 4]
    assert all(math.isfinite(v) for _, v in scalars["loss/G"])
    assert images == {"samples": [2, 4]}
    with Image.open(tmp_path / "samples" / "step_0000004.png") as picture:
        pixels = np.asarray(picture.convert("RGB"))
    assert pixels.shape[0] > 300 and pixels.std() > 10  # five panels of curves, not a blank canvas


def test_a_conditional_rnn_trains_on_labelled_csv_windows(tmp_path: Path) -> None:
    write_series(tmp_path / "series.csv")
    data = [f"data.path={tmp_path / 'series.csv'}", "data.length=8", "data.label_column=regime"]
    train(compose_cfg("model=rnn", "data=csv", *data, "model.conditional=true"), tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["num_classes"] == 2 and state["step"] == 4
    assert "embed.weight" in state["G"] and "embed.weight" in state["D"]
    # The samples' labels are the file's own, under its own column name, as the values are in its own units.
    from ganlab.cli import main

    main(["sample", f"run={tmp_path / 'run'}", "n=4", f"out={tmp_path / 's.csv'}"])  # a row per class: calm, storm
    with (tmp_path / "s.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sample", "step", "regime", "temperature", "pressure"]
    assert [row["regime"] for row in rows if row["step"] == "0"] == ["calm", "calm", "storm", "storm"]
    main(["sample", f"run={tmp_path / 'run'}", "n=4", "class=1", f"out={tmp_path / 's.npz'}"])
    raw = np.load(tmp_path / "s.npz")
    assert raw["labels"].tolist() == [1, 1, 1, 1] and raw["class_names"].tolist() == ["calm", "storm"]


def test_a_prefix_and_class_labels_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "series.csv")
    data = [f"data.path={tmp_path / 'series.csv'}", "data.length=8", "data.label_column=regime", "data.prefix=2"]
    err = exits_2(["train", "debug=fast", "model=rnn", "data=csv", *data, "model.conditional=true"], capsys)
    assert "cannot add class labels" in err


def test_rnn_on_images_and_images_models_on_sequences_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "needs sequence data" in exits_2(["train", "debug=fast", "model=rnn", "data=digits"], capsys)
    assert "needs image data" in exits_2(["train", "debug=fast", "model=dcgan", "data=sines"], capsys)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_d_scores_every_step_the_whole_sequence_or_both(bidirectional: bool) -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 8, 2)
    nets = {
        score: RNNDiscriminator((8, 2), layers=2, bidirectional=bidirectional, score=score)
        for score in ("steps", "sequence", "both")
    }
    nets["sequence"].rnn.load_state_dict(nets["steps"].rnn.state_dict())  # one recurrent net, three heads
    nets["both"].load_state_dict({**nets["steps"].state_dict(), **nets["sequence"].state_dict()})
    steps, sequence, both = (nets[s](x) for s in ("steps", "sequence", "both"))
    assert steps.shape == (3, 8) and sequence.shape == (3, 1) and both.shape == (3, 16)
    # `both`: the step logits, then the sequence logit repeated, so that a mean weighs the two halves alike
    assert torch.allclose(both[:, :8], steps) and torch.allclose(both[:, 8:], sequence.expand(-1, 8))
    # The sequence logit comes from a state that has read every step: a change at either end moves it.
    for t in (0, -1):
        changed = x.clone()
        changed[:, t] += 1.0
        assert not torch.allclose(nets["sequence"](changed), sequence)
    with pytest.raises(ConfigError, match="score must be one of steps, sequence, both"):
        RNNDiscriminator((8, 2), score="last")


def test_a_whole_sequence_d_trains(tmp_path: Path) -> None:
    train(compose_cfg(*SINES, "model.discriminator.score=both", "loss.r1=0.1"), tmp_path)
    scalars, _ = read_events(tmp_path)
    assert all(math.isfinite(v) for _, v in scalars["loss/D"] + scalars["loss/r1"])
    assert "out_sequence.weight" in load_checkpoint(tmp_path / "checkpoints" / "last.pt")["D"]


@pytest.mark.slow  # three runs; the in-memory sources' shared resume path is in the default suite (test_train.py)
def test_resume_is_bitwise_on_the_cpu(tmp_path: Path) -> None:
    straight, resumed = straight_and_resumed_from_step_4([*SINES, "data.prefix=3"], tmp_path)
    assert straight["step"] == resumed["step"] == 10
    assert_same_networks(straight, resumed, nets=("G", "D"))


def test_bf16_trains_the_recurrent_nets_close_to_float32(tmp_path: Path) -> None:
    # bfloat16 autocast runs the LSTMs about twice as fast on CPUs with AVX-512 BF16 (README, recurrent GANs);
    # R1 takes the double backward through the LSTM under autocast too. Weights stay float32 in the checkpoint.
    finals = {}
    for precision in ("32", "bf16"):
        train(
            compose_cfg(*SINES, "trainer.steps=3", "loss.r1=0.1", f"trainer.precision={precision}"),
            tmp_path / precision,
        )
        state = load_checkpoint(tmp_path / precision / "checkpoints" / "last.pt")
        assert all(v.dtype == torch.float32 for v in state["G"].values() if v.is_floating_point())
        scalars, _ = read_events(tmp_path / precision)
        assert all(math.isfinite(v) for _, v in scalars["loss/D"] + scalars["loss/r1"])
        finals[precision] = state["G"]
    for key, value in finals["32"].items():
        assert torch.allclose(finals["bf16"][key], value, atol=5e-2), key  # rounded to bfloat16 in places
    assert any(not torch.equal(finals["bf16"][k], v) for k, v in finals["32"].items())  # autocast did act


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    root = tmp_path_factory.mktemp("csv_run")
    values = write_series(root / "series.csv")
    data = [f"data.path={root / 'series.csv'}", "data.length=8", "data.columns=[temperature,pressure]"]
    main(["train", "debug=fast", "model=rnn", "data=csv", *data, f"hydra.run.dir={root / 'run'}"])
    return root / "run", values


def test_sample_writes_csv_and_npz_in_the_datas_units(csv_run: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    run, values = csv_run
    main(["sample", f"run={run}", "n=3", f"out={tmp_path / 's.csv'}", "seed=2"])
    main(["sample", f"run={run}", "n=3", f"out={tmp_path / 's.npz'}", "seed=2"])
    main(["sample", f"run={run}", "n=3", f"out={tmp_path / 's.png'}", "seed=2"])
    with (tmp_path / "s.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sample", "step", "temperature", "pressure"]
    assert len(rows) == 3 * 8 and {r["step"] for r in rows} == {str(t) for t in range(8)}
    table = np.array([[float(r["temperature"]), float(r["pressure"])] for r in rows]).reshape(3, 8, 2)
    samples = np.load(tmp_path / "s.npz")["samples"]
    assert samples.shape == (3, 8, 2)
    np.testing.assert_allclose(table, samples, rtol=0, atol=1e-9)
    # G writes [0, 1]; the files hold the columns' own ranges (a sigmoid never reaches the ends exactly).
    for c in range(2):
        low, high = values[:, c].min(), values[:, c].max()
        assert low <= samples[..., c].min() and samples[..., c].max() <= high
    assert samples[..., 1].mean() > 900  # pressures near 1000, not values in [0, 1]
    with Image.open(tmp_path / "s.png") as picture:
        assert picture.size[0] > 300


def test_sample_refuses_a_table_for_image_runs_and_too_many_prefixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["train", "debug=fast", "model=rnn", "data=sines", "data.n=20", "data.prefix=4", f"hydra.run.dir={tmp_path}"])
    assert "at most that many" in exits_2(["sample", f"run={tmp_path}", "n=21", f"out={tmp_path / 'x.csv'}"], capsys)
    main(["sample", f"run={tmp_path}", "n=5", f"out={tmp_path / 'x.npz'}"])
    samples = torch.from_numpy(np.load(tmp_path / "x.npz")["samples"])
    from ganlab.data.sines import SinesData

    prefixes = SinesData(n=20, prefix=4).fixed_sequences(5)[:, :4].double()
    assert torch.allclose(samples[:, :4], prefixes, atol=1e-6)  # G continues the data's own beginnings


@pytest.mark.slow  # importing scikit-learn's t-SNE and matplotlib; trainer.eval_every covers the evaluator by default
def test_eval_writes_the_sequence_metrics_and_the_papers_pictures(
    csv_run: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    run, _ = csv_run
    out = tmp_path / "m.json"
    main(["eval", f"run={run}", "repeats=2", "post_hoc_steps=5", f"out={out}"])
    report = {m["metric"]: m for m in json.loads(out.read_text())["metrics"]}
    assert set(report) == {
        "discriminative",
        "discriminative_std",
        "predictive",
        "predictive_std",
        "predictive_real",
        "predictive_real_std",
        "marginal",
        "marginal_temperature",
        "marginal_pressure",
        "autocorrelation",
    }
    assert 0 <= report["discriminative"]["value"] <= 0.5 and report["discriminative"]["lower_is_better"]
    assert report["marginal"]["value"] == pytest.approx(
        (report["marginal_temperature"]["value"] + report["marginal_pressure"]["value"]) / 2
    )
    for name in ("m_pca.png", "m_tsne.png", "m_sequences.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.size[0] > 200


class Constant(torch.nn.Module):
    """A 'generator' of flat sequences at 0.5: the evaluator must call them trivially fake."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((len(z), 24, 4), 0.5)


@pytest.mark.slow  # 600 steps of TimeGAN's own tiny networks (tests/test_sequence_metrics.py has quicker ones)
def test_the_evaluator_tells_constant_sequences_apart_and_scores_the_real_predictor() -> None:
    from ganlab.data.sines import SinesData

    data = SinesData(n=200, features=4)  # the classifier's hidden size is TimeGAN's channels / 2 = 2
    evaluator = TaskEvaluator(data, repeats=2, post_hoc_steps=600)
    result = evaluator(Constant(), z_dim=1).metrics
    assert result["discriminative"] > 0.4
    # The sines' channels are independent: the best predictor of the last one knows nothing but its marginal, so
    # the real-data predictor's MAE is near the mean absolute deviation from the median, computed by hand here.
    last = evaluator.real_test[:, 1:, -1]
    by_hand = float((last - last.median()).abs().mean())
    assert result["predictive_real"] == pytest.approx(by_hand, abs=0.03)
    assert result["marginal"] > 0.2  # all mass at 0.5 against sines spread over [0, 1]


class Overshooting(torch.nn.Module):
    """Sequences from -0.5 to 1.5, as a linear-output G can write them."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.linspace(-0.5, 1.5, 24)[None, :, None].expand(len(z), 24, 4).clone()


def test_the_evaluator_judges_the_sequences_as_g_writes_them() -> None:
    from ganlab.data.sines import SinesData

    # Clipping to [0, 1] would hide the overshoot from the classifier and add flat stretches G never wrote.
    evaluator = TaskEvaluator(SinesData(n=20, features=4), repeats=1, post_hoc_steps=1)
    generated = evaluator.generated(Overshooting(), z_dim=1, seed=0)
    assert torch.equal(generated, Overshooting()(torch.zeros(20, 1)))


def test_sequence_options_are_refused_for_images(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main(["train", "debug=fast", f"hydra.run.dir={tmp_path}"])
    assert "only sequence data" in exits_2(["eval", f"run={tmp_path}", "repeats=3"], capsys)
    assert "raw samples (.npz)" in exits_2(["sample", f"run={tmp_path}", f"out={tmp_path / 'x.csv'}"], capsys)


def test_the_generators_output_is_a_sigmoid_or_linear() -> None:
    from ganlab.errors import ConfigError
    from ganlab.models.rnn import RNNGenerator

    z = torch.randn(3, 24 * 5)
    outputs = {}
    for output in ("sigmoid", "linear"):
        torch.manual_seed(0)  # the same weights for both
        outputs[output] = RNNGenerator(5, (24, 5), output=output)(z)
    assert torch.allclose(outputs["sigmoid"], torch.sigmoid(outputs["linear"]))
    assert outputs["sigmoid"].min() > 0 and outputs["linear"].min() < 0  # unbounded: no plateaus at 0 and 1
    with pytest.raises(ConfigError, match="model.generator.output must be one of sigmoid, linear"):
        RNNGenerator(5, (24, 5), output="tanh")


@pytest.mark.parametrize("feedback", [False, True], ids=["rcgan", "feedback"])
def test_per_sequence_noise_follows_the_steps_noise_and_reaches_every_step(feedback: bool) -> None:
    from ganlab.errors import ConfigError
    from ganlab.models.rnn import RNNGenerator

    torch.manual_seed(0)
    G = RNNGenerator(5, (24, 3), z_static=7, feedback=feedback, output="linear")
    assert G.latent_size == 24 * 5 + 7
    z = torch.randn(2, G.latent_size)
    changed = z.clone()
    changed[:, -7:] += 1.0  # only the per-sequence part
    out, out_changed = G(z), G(changed)
    assert (out - out_changed).abs().amax(dim=2).min() > 0  # every step of every sequence reads it
    step_changed = z.clone()
    step_changed[:, 5 * 10 : 5 * 11] += 1.0  # step 10's own noise: the steps before it do not see it
    moved = (G(step_changed) - out).abs().amax(dim=2)
    assert moved[:, :10].max() == 0 and moved[:, 10:].min() > 0
    with pytest.raises(ValueError, match=rf"latents \(B, {24 * 5 + 7}\)"):
        G(torch.randn(2, 24 * 5))
    with pytest.raises(ConfigError, match="model.generator.z_static must be a whole number >= 0"):
        RNNGenerator(5, (24, 3), z_static=-1)


def test_per_sequence_noise_trains_and_samples(tmp_path: Path) -> None:
    cfg = compose_cfg(*SINES, "model.generator.z_static=4", "model.generator.output=linear")
    train(cfg, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    # Each step reads its own noise, the sequence's, the known values of a prefix and their flag.
    assert state["G"]["rnn.weight_ih_l0"].shape[1] == cfg.model.z_dim + 4 + 5 + 1
    main(["sample", f"run={tmp_path / 'run'}", "n=3", f"out={tmp_path / 'three.npz'}"])
    assert np.load(tmp_path / "three.npz")["samples"].shape == (3, 24, 5)


@pytest.mark.parametrize("steps", [0, -5, 2_000_000])
def test_post_hoc_steps_out_of_range_are_refused_before_any_training(steps: int) -> None:
    """0 passed the check (it read `post_hoc_steps or 1`) and reached TimeGAN's networks as a ValueError."""
    from ganlab.data.sines import SinesData

    with pytest.raises(ConfigError, match=rf"post_hoc_steps must be an integer from 1 to 1,000,000, got {steps}\."):
        TaskEvaluator(SinesData(n=20, features=4), repeats=1, post_hoc_steps=steps)
