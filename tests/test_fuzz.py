"""Property-based fuzzing of `ganlab train` overrides: every run either trains, or exits 2 with a one-line
`ganlab: error:` message (1 for a run that diverged, with its message), never a traceback."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganlab.cli import main

LOG = os.environ.get("GANLAB_FUZZ_LOG")  # set to a file to see each example as it runs

NUMERIC_KEYS = [
    "trainer.batch_size", "trainer.n_critic", "trainer.log_every", "trainer.checkpoint_every",
    "trainer.sample_every", "trainer.keep_every", "trainer.keep_last", "trainer.num_samples", "trainer.eval_every",
    "trainer.eval_n", "trainer.rollback_lr_factor", "trainer.max_rollbacks", "optimizer.lr_g", "optimizer.lr_d",
    "model.z_dim", "model.generator.width", "model.discriminator.width", "data.image_size", "loss.n_critic",
    "seed",
]  # fmt: skip
STRING_KEYS = [
    "model", "loss", "optimizer", "data", "trainer.device", "trainer.on_nan", "trainer.monitor",
    "trainer.eval_features", "model.discriminator.norm", "data.kind", "optimizer.betas_g", "resume",
]  # fmt: skip

numbers = st.one_of(
    st.integers(min_value=-3, max_value=70),
    st.sampled_from([0, -1, 2**31, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)
texts = st.one_of(
    st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=12),
    st.sampled_from(["mlp", "dcgan", "wgan_gp", "gaussians", "rollback", "fid", "???", "${now:%H}", "[0,0.9]",
                     "null", "cuda:7", "auto", "inception", "'a b'", "${oc.env:NOPE}", "{}"]),
)  # fmt: skip


def override(key: str, value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        value = {True: "inf", False: "-inf"}[value > 0] if not math.isnan(value) else "nan"
    return f"{key}={value}"


overrides = st.lists(
    st.one_of(
        st.integers(min_value=-2, max_value=6).map(lambda v: f"trainer.steps={v}"),  # a huge one would just run
        st.tuples(st.sampled_from(NUMERIC_KEYS), numbers).map(lambda kv: override(*kv)),
        st.tuples(st.sampled_from(STRING_KEYS), texts).map(lambda kv: override(*kv)),
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=int(os.environ.get("GANLAB_FUZZ_EXAMPLES", "5")),  # more for a longer hunt
    deadline=None,
    derandomize=not os.environ.get("GANLAB_FUZZ_EXAMPLES"),  # CI: the same examples every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=overrides)
def test_any_overrides_train_or_exit_with_a_message(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    if LOG:
        with open(LOG, "a") as f:
            print(args, file=f, flush=True)
    capsys.readouterr()  # nothing left over from an example that failed before reading its output
    with tempfile.TemporaryDirectory() as tmp:
        base = ["debug=fast", "trainer.steps=2", "trainer.eval_n=20", f"hydra.run.dir={Path(tmp) / 'run'}"]
        try:
            main(["train", *base, *args])
            code = 0
        except SystemExit as exit_info:
            code = exit_info.code
        captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err, f"{args}: {err}"
    if code == 0:
        return
    assert code in (1, 2), f"{args}: exit {code}: {err}"
    first = err.strip().splitlines()[0] if err.strip() else ""
    expected = "ganlab: error:" if code == 2 else "ganlab: training diverged"
    assert first.startswith(expected) or (code == 1 and "could not write" in err), f"{args}: {err}"
