"""What training shows as it goes: plain lines where output is not a terminal, a live bar with the epoch
history in one; and output that is not a terminal is never wrapped (a path stays whole)."""

from __future__ import annotations

import csv
import io
import re

import rich
from rich.console import Console
from typer.testing import CliRunner

from dlcli.cli import app

runner = CliRunner()
LINE = re.compile(r"^epoch (\d+)/2  \d+\.\d s  train/loss (\d+\.\d{4})  val/acc (\d+\.\d{4})  val/loss (\d+\.\d{4})$")


def test_piped_training_prints_one_line_per_epoch_and_whole_paths(tmp_path):
    out = tmp_path / ("a_folder_with_a_long_name_" * 3) / ("and_another_one_below_it_" * 3)
    assert len(str(out)) > 120
    result = runner.invoke(app, ["train", "threads=1", "trainer.max_epochs=2", "trainer.accelerator=cpu",
                                 f"output_dir={out}"])  # CliRunner's stdout is no terminal, as a pipe
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2, result.stdout
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for n, (line, row) in enumerate(zip(lines, rows, strict=True), start=1):
        m = LINE.match(line)
        assert m, line
        assert int(m[1]) == n  # epochs counted from 1
        # the line's numbers are the epoch's recorded ones
        assert (m[2], m[3], m[4]) == tuple(f"{float(row[k]):.4f}" for k in ("train/loss", "val/acc", "val/loss"))
    # no wrapping without a terminal: the long run folder stands whole on one line, in the header and the report
    assert f"run folder: {run_dir}" in result.stdout.splitlines()
    assert f"run folder: {run_dir}" in result.stderr.splitlines()


def test_progress_bar_off_prints_no_epoch_lines(tmp_path):
    result = runner.invoke(app, ["train", "threads=1", "trainer.max_epochs=1", "trainer.accelerator=cpu",
                                 "trainer.enable_progress_bar=false", f"output_dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    assert not [line for line in result.stdout.splitlines() if line.startswith("epoch ")]


def test_a_terminal_gets_the_live_bar_with_the_epoch_history_above_it(make_config):
    from dlcli.training.train import train

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    try:
        result = train(make_config("trainer.max_epochs=2", "trainer.enable_progress_bar=true").config,
                       console=terminal)
    finally:
        rich.reconfigure()  # the bar set up rich's shared console for this screen: give it back
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # the terminal's control codes out
    assert "Epoch 2/2" in shown  # the live bar
    history = re.findall(r"epoch (\d)/2  \d+\.\d s  train/loss", shown)
    assert history == ["1", "2"]  # each finished epoch printed once, above the bar
    assert result.summary["epochs"] == 2


def test_tables_are_not_wrapped_without_a_terminal():
    result = runner.invoke(app, ["list", "optimizers"], env={"COLUMNS": "40"})  # a narrow width is ignored
    assert result.exit_code == 0, result.output
    adam = next(line for line in result.stdout.splitlines() if " adam " in line)
    assert "betas=[0.9, 0.999]" in adam  # the parameters stay on the entry's own line
