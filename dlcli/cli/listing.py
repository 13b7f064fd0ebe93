"""``dlcli list``: the registered components, with a one-line description each."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import CONFIG_DIRS, DEBUG, PLUGINS, err, escape, out, use_plugins, user_errors

KINDS_HELP = ("model, loss, optimizer, scheduler, augmentation, callback, dataset, logger, task, experiment "
              "(plural works too)")
EXPERIMENT = "experiment"  # not a registry: the presets are YAML files (conf/experiment/, and -C folders')


def list_command(
    kind: str = typer.Argument(None, help=f"Only this kind: {KINDS_HELP}.", show_default=False),
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
) -> None:
    """List registered components (what a config's `name:` can say) and their parameters, or the
    experiment presets (`dlcli list experiment`; -C folders' presets too)."""
    from rich.table import Table

    from dlcli.registry import REGISTRIES, closest

    with user_errors(debug):
        use_plugins(plugin)  # dlcli's components, and the plugins'
    kinds = list(REGISTRIES)
    if kind is not None:
        aliases = {alias: k for k in [*REGISTRIES, EXPERIMENT] for alias in (k, k + "s", k + "es")}  # losses
        if kind.lower() not in aliases:
            near = closest(kind.lower(), aliases)
            hint = f" Did you mean '{aliases[near[0]]}'?" if near else ""
            err.print(f"[bold red]error:[/] unknown kind '{escape(kind)}'.{hint} "
                      f"Kinds: {', '.join([*REGISTRIES, EXPERIMENT])}")
            raise typer.Exit(2)
        kinds = [aliases[kind.lower()]]
    if kinds == [EXPERIMENT]:
        with user_errors(debug):
            out.print(_experiment_table(config_dir or []))
        return
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


def _experiment_table(config_dirs: list[Path]):
    """The experiment presets (``experiment=NAME``), each with the first line of its opening comment.

    Looked up as composing does: the -C folders in order, then the shipped configs; the first file of a
    name is the one ``experiment=NAME`` loads.
    """
    from rich.table import Table

    from dlcli.config.compose import config_dirs_checked, shipped_config_dir

    shipped = shipped_config_dir()
    found: dict[str, Path] = {}
    for folder in [*config_dirs_checked(list(config_dirs)), shipped]:
        for path in sorted((folder / EXPERIMENT).glob("*.yaml")):
            found.setdefault(path.stem, path)
    table = Table(title="experiments (dlcli train experiment=NAME)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("description")
    if config_dirs:
        table.add_column("from")  # which folder's file experiment=NAME loads
    for name in sorted(found):
        path = found[name]
        source = ["shipped" if path.parent.parent == shipped else str(path.parent.parent)] if config_dirs else []
        table.add_row(name, escape(_summary(path)), *map(escape, source))
    return table


def _summary(path: Path) -> str:
    """The first line of a YAML's opening comment, past Hydra's ``# @package`` directive."""
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text.startswith("#"):
            return ""  # no opening comment
        text = text.lstrip("#").strip()
        if text and not text.startswith("@package"):
            return text
    return ""


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
