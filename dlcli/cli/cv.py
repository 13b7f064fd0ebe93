"""``dlcli cv``: compose once, train every fold (dlcli/cv/run.py), print each metric's mean ± std."""

from __future__ import annotations

from pathlib import Path

import typer

from dlcli.cli.common import (
    CONFIG_DIRS,
    DEBUG,
    OVERRIDES,
    PLUGINS,
    err,
    escape,
    out,
    print_notes,
    use_plugins,
    user_errors,
)

STRATEGIES = ("stratified", "kfold", "group", "timeseries")


def cv_command(
    overrides: list[str] = OVERRIDES,
    folds: int = typer.Option(5, "--folds", "-k", min=2, help="Folds K: each validates on 1/K of the rows outside "
                                                            "the test split and trains on the rest."),
    repeats: int = typer.Option(1, "--repeats", "-r", min=1,
                                help="Draw the folds R times (shuffled with seed + repeat): K x R runs."),
    strategy: str = typer.Option(
        "stratified", "--strategy", "-s",
        help="stratified: each fold keeps the class shares (kfold for regression / multi-label); kfold: shuffled; "
             "group: no group (--group) in both a fold's train and val rows; timeseries: each fold validates on "
             "rows later than its training rows."),
    group: str = typer.Option(None, "--group", "-g", metavar="COLUMN", show_default=False,
                              help="--strategy group: the CSV column holding each row's group (never a feature)."),
    name: str = typer.Option(None, "--name", "-n", metavar="ID", show_default=False,
                             help="The cv id linking the folds (default cv-<date>-<time>): its folder is "
                                  "<output_dir>/cv/<ID>/, and `dlcli runs ls --cv ID` lists its runs."),
    format: str = typer.Option("table", "--format", "-f", help="table, or json (cv.json's content)."),
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
) -> None:
    """Cross-validate: K folds (x R repeats), each an ordinary run, then each metric's mean ± std over the folds.

    The test split stays out of every fold: the same rows, as `dlcli train` would hold out. Examples:
    `dlcli cv --folds 5 data=iris`, `dlcli cv -k 5 -r 3 model=mlp optimizer.lr=1e-3`,
    `dlcli cv --strategy group --group patient data=csv data.path=x.csv data.target=y`.
    """
    from dlcli.config.compose import compose
    from dlcli.errors import DlcliError

    with user_errors(debug):
        if strategy not in STRATEGIES:
            raise DlcliError(f"--strategy {strategy}: use one of {', '.join(STRATEGIES)}")
        if format not in ("table", "json"):
            raise DlcliError(f"--format {format}: use table or json")
        use_plugins(plugin)
        # the cv keys after the user's: the flags win; fold 0 of repeat 0 stands for every fold while composing
        cv = [f"cv.folds={folds}", f"cv.repeats={repeats}", f"cv.strategy={strategy}", "cv.fold=0", "cv.repeat=0",
              *([f"cv.group={group}"] if group is not None else []), *([f"cv.id={name}"] if name is not None else [])]
        composed = compose([*(overrides or []), *cv], config_dir or [])
        group, name = composed.config["cv"]["group"], composed.config["cv"]["id"]  # flags, or cv.group= / cv.id=
        print_notes(composed.notes)
        from dlcli.cv.run import run_cv

        def progress(entry: dict) -> None:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(entry["metrics"].items())
                              if k.startswith(("val/", "test/")) and isinstance(v, float))
            err.print(f"fold {entry['fold']}" + (f" repeat {entry['repeat']}" if repeats > 1 else "")
                      + f": {escape(shown)}  [dim]{escape(entry['run_dir'])}[/]", soft_wrap=True)

        err.print(f"cross-validating: {folds} folds" + (f" x {repeats} repeats" if repeats > 1 else "")
                  + f" ({strategy}), {folds * repeats} runs")
        user = [o for o in composed.overrides if o not in cv]
        result = run_cv(composed.config, user, folds=folds, repeats=repeats, strategy=strategy, group=group,
                        cv_id=name, on_fold=progress)
    if format == "json":
        import json

        out.print_json(json.dumps(result.record))
        return
    report(result)


def report(result) -> None:
    from rich.table import Table

    n = len(result.runs)
    out.print(f"cv {escape(result.cv_id)}: {result.status}, {n} folds", soft_wrap=True)  # (a title would wrap)
    table = Table()
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    table.add_column("n", justify="right")
    for key in sorted(result.stats, key=lambda k: ({"test": 0, "val": 1}.get(k.split("/")[0], 2), k)):
        stat = result.stats[key]
        table.add_row(key, str(stat), str(stat.n))
    out.print(table)
    if result.score is not None:
        out.print(f"monitored {result.monitor}: {result.score} over {result.score.n} folds (each at its best epoch)")
    out.print(f"cv folder: [bold]{escape(str(result.cv_dir))}[/] (cv.json); the folds: "
              f"`dlcli runs compare --cv {escape(result.cv_id)}`")
