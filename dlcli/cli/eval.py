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
    err,
    escape,
    out,
    use_plugins,
    user_errors,
)

RUN = typer.Argument(..., metavar="RUN", show_default=False,
                     help="The run: its folder, its run id, an id prefix, or `last` (the newest under outputs/).")
# the one spelling of "where runs are looked up", in every command that reopens a run (eval, predict, export,
# serve, resume, runs); eval and resume also take the config key as an override, output_dir=PATH
OUTPUT_DIR = typer.Option("outputs", "--output-dir", metavar="DIR",
                          help="Where run ids, prefixes and `last` are looked up.")
CHECKPOINT = typer.Option("best", "--checkpoint", metavar="best|last",
                          help="Which checkpoint: the best epoch's (the one training tested) or the last.")


def eval_command(
    run: str = RUN,
    overrides: list[str] = OVERRIDES,
    checkpoint: str = CHECKPOINT,
    split: str = typer.Option("auto", "--split", metavar="auto|test|all",
                              help="test: the test split (rebuilt from the run's seed and fractions); all: every "
                                   "row; auto: test for the run's own data, all for other data."),
    output_dir: str = OUTPUT_DIR,
    config_dir: list[Path] = CONFIG_DIRS,
    plugin: list[str] = PLUGINS,
    allow_changed_data: bool = ALLOW_CHANGED_DATA,
    report: bool = typer.Option(False, "--report",
                                help="Also write <run>/report/: report.md (data, splits, config changes, metrics, "
                                     "versions), a per-class table, confused pairs, ROC/PR curves, a reliability "
                                     "diagram with the calibration error, the worst-predicted samples; regression: "
                                     "predicted-vs-actual, residuals, error by target range."),
    tune_threshold: str = typer.Option(None, "--tune-threshold", metavar="f1|youden|precision@R",
                                       help="Binary and multilabel runs: pick the decision threshold on the "
                                            "validation split (best F1, best Youden's J, or the lowest reaching "
                                            "precision R) and save it in <run>/threshold.json, which predict and "
                                            "export then use. Prints the old and new validation metrics.",
                                       show_default=False),
    debug: bool = DEBUG,
) -> None:
    """Evaluate a run's best checkpoint on its test split, or on the data the overrides name (every row).

    The run's saved preprocessing is applied; the metrics are printed and saved in <run>/eval/.
    Overrides may change data, metrics, threads and trainer.*; --output-dir DIR looks for RUN there.
    --report writes a readable report to <run>/report/; --tune-threshold tunes a binary or multilabel run's
    threshold (and evaluates only with --report too).
    Examples: `dlcli eval last`, `dlcli eval last data=csv data.path=new.csv data.target=label`,
    `dlcli eval last --report`, `dlcli eval last --tune-threshold precision@0.9`.
    """
    from rich.table import Table

    with user_errors(debug):
        use_plugins(plugin)
        from dlcli.training.reload import load_run, split_output_dir

        output_dir, rest = split_output_dir([f"output_dir={output_dir}", *(overrides or [])])
        loaded = load_run(run, output_dir)
        from dlcli.runs import folder
        from dlcli.runs.provenance import warn_if_changed

        try:
            warn_if_changed(loaded.run_dir, folder.read_summary(loaded.run_dir), err, "evaluating")
        except (OSError, ValueError):  # no readable summary.json: nothing recorded to compare
            pass
        if tune_threshold is not None:
            from dlcli.training.threshold import check_tunable, parse_criterion
            from dlcli.training.threshold import tune_threshold as tune

            check_tunable(loaded)
            parse_criterion(tune_threshold)
            if report:
                from dlcli.training.report import check_reportable

                check_reportable(loaded)
            tuned = tune(loaded, tune_threshold, checkpoint, rest, config_dir or [], allow_changed_data)
            _print_threshold(tuned)
            if not report:
                return
        from dlcli.training.evaluate import evaluate

        result = evaluate(loaded, rest, checkpoint, config_dir or [], split, allow_changed_data, report)
    on = result.data if result.data.startswith("every row") else f"the {result.data}"
    out.print(f"{result.run_dir.name}: {result.checkpoint} checkpoint on {escape(on)}, "
              f"{result.rows} row{'s' * (result.rows != 1)}", soft_wrap=True)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(result.metrics):
        table.add_row(escape(key), f"{result.metrics[key]:.4f}")
    out.print(table)
    out.print(f"saved: {escape(str(result.path))}", soft_wrap=True)
    if result.report is not None:
        for line in result.report.headline:
            out.print(escape(line), soft_wrap=True)


def _print_threshold(tuned) -> None:
    """The tuned threshold, and the validation metrics with the old and the new one."""
    def shown(t) -> str:
        return ", ".join(f"{v:.4f}" for v in t) if isinstance(t, list) else f"{t:.4f}"

    out.print(f"threshold ({escape(tuned.criterion)} on {tuned.rows} validation rows): {shown(tuned.previous)} -> "
              f"{shown(tuned.threshold)}", soft_wrap=True)
    for key in ("f1", "precision", "recall", "youden"):
        out.print(f"validation {key}: {tuned.before[key]:.4f} -> {tuned.after[key]:.4f}")
    for note in tuned.notes:
        out.print(f"note: {escape(note)}", soft_wrap=True)
    out.print(f"saved: {escape(str(tuned.path))} (predict and export decide with it)", soft_wrap=True)
