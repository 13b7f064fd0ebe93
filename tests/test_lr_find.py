"""`dlcli lr-find`: the range test's curve, its suggestion, and the files it leaves."""

from __future__ import annotations

import csv
import json
import math

import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.training.lr_find import smooth, steepest


def test_smoothing_is_bias_corrected():
    assert smooth([2.0, 2.0, 2.0], beta=0.98) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0


def test_steepest_descent_per_decade():
    lrs = [10 ** (-6 + i * 0.1) for i in range(60)]  # 1e-6 .. ~1
    losses = [2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 2) * 4)) for lr in lrs]  # falls fastest at 1e-2
    assert steepest(lrs, losses) == pytest.approx(1e-2, rel=0.3)


def test_lr_find_command(tmp_path):
    result = CliRunner().invoke(app, ["lr-find", f"output_dir={tmp_path}", "threads=1", "--steps", "60"])
    assert result.exit_code == 0, result.output
    assert "suggested learning rate:" in result.stdout
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["kind"] == "lr_find" and 1e-6 <= summary["suggestion"] <= 1.0
    rows = list(csv.DictReader((run_dir / "lr_find.csv").open()))
    assert float(rows[0]["loss"]) == pytest.approx(math.log(10), abs=0.3)  # untrained: chance-level loss
    assert float(rows[-1]["lr"]) > float(rows[0]["lr"])
    assert (run_dir / "plots" / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
