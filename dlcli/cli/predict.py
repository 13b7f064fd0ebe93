"""``dlcli predict RUN INPUT``: a finished run's predictions for new inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dlcli.cli.common import DEBUG, PLUGINS, escape, out, print_notes, use_plugins, user_errors
from dlcli.cli.eval import CHECKPOINT, OUTPUT_DIR, RUN

SHOWN = 10  # rows printed; the file holds them all


def predict_command(
    run: str = RUN,
    input_path: Path = typer.Argument(..., metavar="INPUT", show_default=False,
                                      help="A CSV, an NPZ (array x), an image, a folder of images, or a text file "
                                           "(one text per line, text runs)."),
    output: Path = typer.Option(Path("predictions.csv"), "--output", "-o", metavar="FILE",
                                help="Where to write the predictions: a .csv file, or JSON if FILE ends in .json "
                                     "(other suffixes are refused)."),
    checkpoint: str = CHECKPOINT,
    keep_columns: bool = typer.Option(None, "--keep-columns/--no-keep-columns", show_default=False,
                                      help="Carry INPUT's columns (a CSV's; a text file's texts) into the output, "
                                           "after id. Default: on for a CSV, off otherwise."),
    output_dir: str = OUTPUT_DIR,
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
) -> None:
    """Predict with a run's best checkpoint: one row per input, the class (or value) and class probabilities.

    INPUT goes through the run's saved preprocessing. The rows are printed (the first ten) and written to
    predictions.csv, or --output FILE; a CSV's own columns are carried into it (--no-keep-columns drops them).
    Binary and multilabel runs decide with the threshold `dlcli eval --tune-threshold` saved (else 0.5).
    A warning names the features (or image channels) whose values fall far outside the training range, and
    the texts most of whose words the run's vocabulary does not know.

    Examples: `dlcli predict last new.csv`, `dlcli predict last photos/ --output photos.json`.
    """
    with user_errors(debug):
        use_plugins(plugin)
        from dlcli.training.predict import check_output, predict, write_predictions
        from dlcli.training.reload import load_run

        check_output(output)
        loaded = load_run(run, output_dir)
        result = predict(loaded, input_path, checkpoint, keep_columns=keep_columns)
        write_predictions(result, output)
    print_notes(result.notes)  # e.g. missing cells imputed, categories the run never saw (stderr)
    tuned = _tuned_threshold(loaded)
    if tuned:
        out.print(tuned, soft_wrap=True)
    out.print(f"{loaded.run_dir.name} on {result.source}", soft_wrap=True)
    out.print(_table(result))
    if len(result.rows) > SHOWN:
        out.print(f"... {len(result.rows) - SHOWN} more rows")
    out.print(f"{len(result.rows)} prediction{'s' * (len(result.rows) != 1)} written to {escape(str(output))}",
              soft_wrap=True)


def _tuned_threshold(run: Any) -> str | None:
    """A line saying that the predictions are decided with a tuned threshold, not 0.5 (else a probability
    column and the prediction can look at odds)."""
    from dlcli.tasks.base import THRESHOLD
    from dlcli.training.reload import THRESHOLD_FILE

    threshold = run.threshold
    if threshold == THRESHOLD or not (run.run_dir / THRESHOLD_FILE).is_file():
        return None
    if isinstance(threshold, list):
        shown = ", ".join(f"{c} {t:.4f}" for c, t in zip(run.classes or [], threshold, strict=False))
        return (f"decided with the thresholds `dlcli eval --tune-threshold` saved ({THRESHOLD_FILE}): a label is "
                f"predicted when its probability is above its threshold ({escape(shown)})")
    positive = (run.classes or ["", "the second class"])[-1]
    return (f"decided with the threshold `dlcli eval --tune-threshold` saved ({THRESHOLD_FILE}): "
            f"{escape(str(positive))} when prob_{escape(str(positive))} is above {threshold:.4f}, not 0.5")


def _table(result: Any) -> Any:
    """The first rows; with many classes, the predicted class's probability only (the file has them all)."""
    from rich.table import Table

    probs = [c for c in result.columns if c.startswith("prob_") and c not in result.carried]
    shown = [c for c in result.columns if c not in result.carried]  # the input's own columns: in the file only
    columns = shown if len(probs) <= 4 else [c for c in shown if c not in probs]
    table = Table()
    for column in columns:
        table.add_column(escape(column), justify="left" if column in ("id", "prediction") else "right")
    if len(probs) > 4:
        table.add_column("probability", justify="right")
    for row in result.rows[:SHOWN]:
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else escape(str(row[c])) for c in columns]
        if len(probs) > 4:
            p = row.get(f"prob_{row['prediction']}")  # the predicted class's (multilabel: none)
            cells.append("" if p is None else f"{p:.4f}")
        table.add_row(*cells)
    return table
