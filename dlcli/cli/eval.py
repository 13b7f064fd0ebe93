"""``dlcli eval RUN``: score a finished run's checkpoint on its test split, or on other data."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import (
    ALLOW_CHANGED_DATA,
    CONFIG_DIRS,
    DEBUG,
    OVERRIDES,
    PLUGINS,
    escape,
    out,
    use_plugins,
    user_errors,
)

RUN = typer.Argument(..., metavar="RUN", show_default=False,
                     help="The run: its folder, its run id, an id prefix, or `last` (the newest under outputs/).")
CHECKPOINT = typer.Option("best", "--checkpoint", metavar="best|last",
                          help="Which checkpoint: the best epoch's (the one training tested) or the last.")


def eval_command(
    run: str = RUN,
    overrides: list[str] = OVERRIDES,
    checkpoint: str = CHECKPOINT,
    split: str = typer.Option("auto", "--split", metavar="auto|test|all",
                              help="test: the test split (rebuilt from the run's seed and fractions); all: every "
                                   "row; auto: test for the run's own data, all for other data."),
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    allow_changed_data: bool = ALLOW_CHANGED_DATA,
    debug: bool = DEBUG,
) -> None:
    """Evaluate a run's best checkpoint on its test split, or on the data the overrides name (every row).

    The run's saved preprocessing is applied; the metrics are printed and saved in <run>/eval/.
    Overrides may change data, metrics, threads and trainer.*; `output_dir=PATH` looks for RUN there.
    Examples: `dlcli eval last`, `dlcli eval last data=csv data.path=new.csv data.target=label`.
    """
    from rich.table import Table

    with user_errors(debug):
        use_plugins(plugin)
        from dlcli.training.reload import load_run, split_output_dir

        output_dir, rest = split_output_dir(overrides or [])
        loaded = load_run(run, output_dir)
        from dlcli.training.evaluate import evaluate

        result = evaluate(loaded, rest, checkpoint, config_dir or [], split, allow_changed_data)
    out.print(f"{result.run_dir.name}: {result.checkpoint} checkpoint on the {escape(result.data)}, "
              f"{result.rows} rows", soft_wrap=True)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(result.metrics):
        table.add_row(escape(key), f"{result.metrics[key]:.4f}")
    out.print(table)
    out.print(f"saved: {escape(str(result.path))}", soft_wrap=True)
