"""``dlcli list``: the registered components, with a one-line description each."""

from __future__ import annotations

import typer

from dlcli.cli.common import DEBUG, PLUGINS, err, escape, out, use_plugins, user_errors

KINDS_HELP = "model, loss, optimizer, scheduler, augmentation, callback, dataset, logger, task (plural works too)"


def list_command(
    kind: str = typer.Argument(None, help=f"Only this kind: {KINDS_HELP}.", show_default=False),
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
) -> None:
    """List registered components (what a config's `name:` can say) and their parameters."""
    from rich.table import Table

    from dlcli.registry import REGISTRIES, closest

    with user_errors(debug):
        use_plugins(plugin)  # dlcli's components, and the plugins'
    kinds = list(REGISTRIES)
    if kind is not None:
        aliases = {alias: k for k in REGISTRIES for alias in (k, k + "s", k + "es")}  # loss, losses, models
        if kind.lower() not in aliases:
            near = closest(kind.lower(), aliases)
            hint = f" Did you mean '{aliases[near[0]]}'?" if near else ""
            err.print(f"[bold red]error:[/] unknown kind '{escape(kind)}'.{hint} "
                      f"Kinds: {', '.join(REGISTRIES)}")
            raise typer.Exit(2)
        kinds = [aliases[kind.lower()]]
    if kinds == ["task"]:
        out.print(_task_table())
        return
    table = Table()
    table.add_column("kind")
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("parameters (defaults)")
    for k in kinds:
        for entry in REGISTRIES[k]:
            params = ", ".join(p.name if p.required else f"{p.name}={_show(p.default)}" for p in entry.params.values())
            table.add_row(k, entry.name, escape(entry.summary), escape(params))
    out.print(table)


def _show(value: object) -> str:
    """A default as YAML would show it: lists in brackets, None as null."""
    if isinstance(value, tuple):
        value = list(value)
    return "null" if value is None else repr(value)


def _task_table():
    """The tasks with their facts: the losses that fit, the metrics (defaults first), the best-epoch monitor."""
    from rich.table import Table

    from dlcli.registry import LOSSES, TASKS
    from dlcli.tasks import loss_tasks

    table = Table(title="tasks (task=auto: chosen from the targets and the loss)")
    for column in ("task", "description", "losses", "metrics (default first)", "best epoch by"):
        table.add_column(column, style="bold" if column == "task" else None)
    for entry in TASKS:
        spec = entry.fn
        losses = [e.name for e in LOSSES if spec.name in loss_tasks(e.name)]
        metrics = [*spec.default_metrics, *(m for m in spec.metric_names if m not in spec.default_metrics)]
        monitor, mode = spec.monitor
        table.add_row(entry.name, escape(entry.summary), ", ".join(losses), ", ".join(metrics), f"{monitor} ({mode})")
    return table
