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


def test_last_means_the_last_training_run_after_an_lr_find_and_the_lr_find_folder_can_be_removed(tmp_path):
    """The outside try: after `dlcli lr-find`, every command given `last` failed ("preprocessing.json
    missing"), and `runs rm` refused to delete the lr-find folder."""
    runner = CliRunner()
    out = tmp_path / "outputs"
    trained = runner.invoke(app, ["train", f"output_dir={out}", "threads=1", "trainer.max_epochs=1",
                                  "trainer.enable_progress_bar=false"])
    assert trained.exit_code == 0, trained.output
    (run_dir,) = out.iterdir()
    found = runner.invoke(app, ["lr-find", f"output_dir={out}", "threads=1", "--steps", "20"])
    assert found.exit_code == 0, found.output
    (lr_dir,) = [d for d in out.iterdir() if d != run_dir]
    evaluated = runner.invoke(app, ["eval", "last", f"output_dir={out}"])
    assert evaluated.exit_code == 0, evaluated.output
    assert run_dir.name in evaluated.output
    shown = runner.invoke(app, ["runs", "show", "last", "--output-dir", str(out)])
    assert shown.exit_code == 0 and run_dir.name in shown.output
    removed = runner.invoke(app, ["runs", "rm", str(lr_dir), "--yes", "--output-dir", str(out)])
    assert removed.exit_code == 0, removed.output
    assert not lr_dir.exists() and run_dir.exists()
