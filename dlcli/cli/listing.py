"""``dlcli list``: the registered components, with a one-line description each."""

from __future__ import annotations

import typer

from dlcli.cli.common import err, out

KINDS_HELP = "model, loss, optimizer, scheduler, augmentation, callback, dataset, logger (plural works too)"


def list_command(
    kind: str = typer.Argument(None, help=f"Only this kind: {KINDS_HELP}.", show_default=False),
) -> None:
    """List registered components (what a config's `name:` can say) and their parameters."""
    from rich.table import Table

    from dlcli.registry import REGISTRIES, did_you_mean, load_components

    load_components()
    kinds = list(REGISTRIES)
    if kind is not None:
        singular = kind.lower().removesuffix("es") if kind.lower().endswith("sses") else kind.lower().rstrip("s")
        if singular not in REGISTRIES:
            err.print(f"[bold red]error:[/] unknown kind '{kind}'.{did_you_mean(singular, REGISTRIES)} "
                      f"Kinds: {', '.join(REGISTRIES)}")
            raise typer.Exit(2)
        kinds = [singular]
    table = Table(show_lines=False)
    table.add_column("kind")
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("parameters (defaults)")
    for k in kinds:
        for entry in REGISTRIES[k]:
            params = ", ".join(p.name if p.required else f"{p.name}={p.default!r}".replace("(", "[").replace(
                ",)", "]").replace(")", "]") for p in entry.params.values())
            table.add_row(k, entry.name, entry.summary, params)
    out.print(table)
