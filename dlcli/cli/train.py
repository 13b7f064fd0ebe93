"""``dlcli train``: compose, validate, train, report."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import (
    CONFIG_DIRS,
    DEBUG,
    OVERRIDES,
    PLUGINS,
    err,
    out,
    print_notes,
    use_plugins,
    user_errors,
)

MULTIRUN = typer.Option(False, "--multirun", "-m",
                        help="Run every combination of the swept values (optimizer.lr=1e-3,1e-2 model=mlp,cnn) as "
                             "a grid sweep, each an ordinary run: the same as `dlcli sweep`.")


def train_command(
    overrides: list[str] = OVERRIDES,
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    multirun: bool = MULTIRUN,
    allow_changed_data: bool = typer.Option(
        False, "--allow-changed-data",
        help="Fine-tune (model.pretrained=RUN) although a data file that run also read has changed since: the "
             "same as model.allow_changed_data=true."),
    tag: list[str] = typer.Option(None, "--tag", metavar="T", show_default=False,
                                  help="Label the run (repeatable): `runs ls --tag T` finds it, and `runs prune` "
                                       "never deletes a run tagged keep. The same as tags=[T,...]."),
    debug: bool = DEBUG,
) -> None:
    """Train a model from the composed config, test its best checkpoint, and write a run folder.

    Examples: `dlcli train`, `dlcli train model=perceptron optimizer.lr=0.01`,
    `dlcli train data=csv data.path=my.csv data.target=label`,
    `dlcli train -m optimizer.lr=1e-3,1e-2 model=mlp,cnn` (a grid sweep, as `dlcli sweep`).
    """
    from dlcli.config.compose import compose

    if allow_changed_data:
        overrides = [*(overrides or []), "model.allow_changed_data=true"]
    if tag and multirun:  # each trial composes its own config: the tags go with the overrides
        overrides = [*(overrides or []), f"tags=[{','.join(tag)}]"]
    if multirun:  # Hydra's -m: every combination, each an ordinary run, as `dlcli sweep` runs them
        from dlcli.cli.sweep import sweep_command

        return sweep_command(overrides, strategy="grid", trials=None, metric=None, direction=None, name=None,
                             storage=None, jobs=1, on_failure="continue", launcher="local", slurm=None,
                             trials_per_job=1, pruner=None, min_epochs=None, cv=None,
                             config_dir=config_dir, plugin=plugin, debug=debug)
    with user_errors(debug):
        from dlcli.config.validate import tag_problem

        for t in tag or []:  # before composing: a bad tag names the flag that gave it
            if tag_problem(t):
                from dlcli.errors import DlcliError

                raise DlcliError(f"--tag: {tag_problem(t)}")
        use_plugins(plugin)
        composed = compose(overrides or [], config_dir or [])
        if tag:  # added to the config's own tags
            composed.config["tags"] = list(dict.fromkeys([*(composed.config.get("tags") or []), *tag]))
        print_notes(composed.notes)
        from dlcli.training.train import train

        result = train(composed.config, composed.overrides, console=err, progress_console=out)
    if result.primary:
        report(result)


def report(result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.summary['name']}: {result.status}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(result.metrics, key=lambda k: (not k.startswith("test/"), k)):
        table.add_row(key, f"{result.metrics[key]:.4f}")
    out.print(table)
    best = result.best
    if best:
        tested = "pruned by the sweep: not tested" if result.status == "pruned" else "its checkpoint was tested"
        out.print(f"best {best['monitor']} = {best['value']:.4f} in epoch {best['epoch'] + 1} "
                  f"of {result.summary.get('epochs', '?')} ({tested})")
    s = result.summary
    out.print(f"{s.get('epochs', 0)} epochs in {s['fit_duration_s']:.1f} s (total {s['duration_s']:.1f} s)")
    out.print(f"run folder: [bold]{result.run_dir}[/]")
