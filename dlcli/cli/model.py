"""``dlcli model``: look at the composed model without training it."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import CONFIG_DIRS, DEBUG, OVERRIDES, PLUGINS, escape, out, print_notes, use_plugins, user_errors

app = typer.Typer(help="Inspect the composed model.", no_args_is_help=True)


@app.command("summary")
def summary(
    overrides: list[str] = OVERRIDES,
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    depth: int = typer.Option(4, "--depth", help="How many levels of nested modules to show."),
    debug: bool = DEBUG,
) -> None:
    """Each layer of the composed model with its output shape and parameters, on the composed data's inputs.

    Example: `dlcli model summary model=resnet`.
    """
    from rich.table import Table

    from dlcli.config.compose import compose

    with user_errors(debug):
        use_plugins(plugin)
        composed = compose(overrides or [], config_dir or [])
        print_notes(composed.notes)
        from dlcli.training.summary import summarize

        s = summarize(composed.config, depth=depth)
    out.print(f"model '{s.model}': input {s.input_shape} -> output {s.output_shape}", soft_wrap=True)
    table = Table()
    table.add_column("layer")
    table.add_column("type")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    for row in s.rows:
        shape = str(row.output_shape) if row.output_shape is not None else "--"
        params = f"{row.params:,}" if row.params else ""
        table.add_row(escape("  " * (row.depth - 1) + row.name), row.kind, shape, params)
    out.print(table)
    out.print(f"total params: {s.total:,}")
    out.print(f"trainable params: {s.trainable:,}")
    out.print(f"non-trainable params: {s.non_trainable:,}")
