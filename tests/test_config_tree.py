"""The config tree a run prints: rich's tree on a terminal, the same lines written directly elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from ganlab.run_log import config_tree, plain_config_tree
from tests.conftest import compose_cfg


@pytest.mark.parametrize("overrides", [(), ("model=stylegan2", "augment.ada=true"), ("experiment=rcgan_sines",)])
def test_the_plain_tree_is_what_rich_prints_without_a_terminal(overrides: tuple[str, ...]) -> None:
    cfg = compose_cfg(*overrides)
    printed = io.StringIO()
    Console(file=printed, width=10_000).print(config_tree(cfg))  # wide: rich wraps long values, the plain tree not
    assert [line.rstrip() for line in printed.getvalue().splitlines()] == plain_config_tree(cfg).splitlines()


def test_a_run_without_a_terminal_prints_the_plain_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ganlab.train import train

    cfg = compose_cfg("trainer.steps=1")
    train(cfg, tmp_path)
    out = capsys.readouterr().out
    assert plain_config_tree(cfg) in out
    assert "├── model" in out and "│   ├── _target_: 'ganlab.models.dcgan.DCGANGenerator'" in out
