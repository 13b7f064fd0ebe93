"""Shared fixtures: every run writes under pytest's tmp_path, never into the repository."""

from __future__ import annotations

import pytest

from dlcli.config.compose import compose

# Settings that keep test runs short and quiet; a test adds its own overrides.
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "outputs"


@pytest.fixture
def make_config(out_dir):
    """compose(overrides) with the run folder under tmp_path."""

    def make(*overrides: str, config_dirs=()):
        return compose([f"output_dir={out_dir}", *FAST, *overrides], list(config_dirs))

    return make
