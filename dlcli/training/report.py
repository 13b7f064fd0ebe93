"""``dlcli eval RUN --report``: a report a person can act on, written to ``<run>/report/``.

From the same test predictions as the metrics (dlcli/training/scores.py): for classification a per-class
table (scikit-learn's ``classification_report``), the most-confused class pairs, one-vs-rest ROC and
precision-recall curves, a reliability diagram with the expected calibration error (torchmetrics'
``CalibrationError``) and the worst-predicted samples (their rows; images as a contact sheet, texts quoted);
for regression predicted-against-actual and residual plots and the error by target range. ``report.md``
ties it together with the data, the splits, the config's differences from the defaults and the versions
(dlcli/training/model_card.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.errors import DlcliError
from dlcli.runs import folder
from dlcli.runs import report_plots as plots
from dlcli.training.model_card import markdown, md_table
from dlcli.training.reload import LoadedRun

REPORT_DIR = "report"
REPORT_MD = "report.md"
WORST = 12  # worst-predicted samples listed (and drawn, for images)
CONFUSED = 5  # most-confused class pairs listed
BINS = 10  # confidence bins of the reliability diagram and the calibration error
RANGE_BINS = 5  # quantile bins of the target for the regression error by range
TEXT_CHARS = 160  # a quoted text is cut here


@dataclass
class ReportResult:
    """Where the report went and its headline (the lines ``dlcli eval --report`` prints)."""

    path: Path  # report.md
    headline: list[str]
    files: list[Path] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)  # e.g. ece, the weakest class, per-class table


def check_reportable(run: LoadedRun) -> None:
    """DlcliError (exit 2) for tasks the report does not cover, before any data is loaded."""
    from dlcli.tasks import get_task

    if not get_task(run.task).predictable:  # a class (classification) or a value (regression) per input
        raise DlcliError(f"--report covers classification and regression runs; run {run.run_dir.name} is a "
                         f"{run.task} run. Use `dlcli eval RUN` without --report for its metrics")


def write_report(run: LoadedRun, cfg: dict, module: Any, datamodule: Any, rows: np.ndarray, result: Any,
                 texts: list[str] | None = None) -> ReportResult:
    """Write ``<run>/report/`` for the evaluation ``result`` (an EvalResult) of ``module`` on ``datamodule``'s
    test split, whose samples are the loaded data's ``rows``; ``texts``: a text run's texts of those rows."""
    from dlcli.training.scores import split_predictions

    preds, targets = split_predictions(module, datamodule, "test")
    out = run.run_dir / REPORT_DIR
    try:
        out.mkdir(exist_ok=True)
    except OSError as e:
        raise DlcliError(f"cannot write the report to {out}: {e.strerror or e}. Make the run folder writable") \
            from None
    images = _images(run, datamodule)
    if run.decision is not None:  # classification: binary, multiclass, multilabel (Task.decision)
        sections, headline, numbers = _classification(run, out, preds, targets, rows, texts, images)
    else:
        sections, headline, numbers = _regression(out, preds, targets, rows, texts, images)
    metrics = {k: v for k, v in result.metrics.items()}
    md = markdown(run, cfg, result, metrics, sections)
    path = out / REPORT_MD
    folder.atomic_write_text(path, md)
    folder.write_json(out / "report.json", {"run_id": run.run_dir.name, "evaluated": result.data,
                                            "rows": result.rows, "checkpoint": result.checkpoint,
                                            "metrics": metrics, **numbers})
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
    headline = [f"metrics: {shown}", *headline, f"report: {path}"]
    return ReportResult(path, headline, sorted(p for p in out.iterdir() if p.is_file()), numbers)


# ------------------------------------------------------------------------------------------ classification


def _classification(run: LoadedRun, out: Path, preds: np.ndarray, targets: np.ndarray, rows: np.ndarray,
                    texts: list[str] | None, images: Any) -> tuple[list[str], list[str], dict[str, Any]]:
    from sklearn.metrics import classification_report

    classes = [str(c) for c in run.classes]
    proba, y, y_pred = class_decisions(run.decision, preds, targets, run.threshold)
    table = classification_report(y, y_pred, labels=list(range(len(classes))), target_names=classes,
                                  output_dict=True, zero_division=0)
    folder.write_json(out / "per_class.json", table)
    _write_csv(out / "per_class.csv", ["class", "precision", "recall", "f1-score", "support"],
               [[name, *(row[k] for k in ("precision", "recall", "f1-score", "support"))]
                for name, row in table.items() if isinstance(row, dict)])
    present = [c for c in classes if table[c]["support"] > 0]
    weakest = min(present, key=lambda c: (table[c]["f1-score"], c)) if present else None

    sections = ["## Per class", "", f"Decided with threshold {_threshold_text(run)}." if run.decision != "argmax"
                else "Decided by the most probable class.", "",
                md_table(["class", "precision", "recall", "F1", "support"],
                          [[name, *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1-score")),
                            str(int(row["support"]))] for name, row in table.items() if isinstance(row, dict)]),
                "", "Also as [per_class.csv](per_class.csv) and [per_class.json](per_class.json) "
                "(scikit-learn's `classification_report`).", ""]
    numbers: dict[str, Any] = {"per_class": table, "weakest_class": weakest}
    if run.decision != "labels":
        pairs = confused_pairs(y, y_pred, classes)
        numbers["confused_pairs"] = pairs
        sections += ["## Most confused", ""]
        sections += [md_table(["true", "predicted as", "samples", "share of the true class"],
                               [[t, p, str(n), f"{s:.1%}"] for t, p, n, s in pairs]) if pairs
                     else "No test sample was misclassified.", ""]

    roc, pr = one_vs_rest(run.decision, proba, y, classes)
    sections += ["## ROC and precision-recall", ""]
    if roc:
        plots.curves(out / "roc.png", roc, "roc")
        plots.curves(out / "pr.png", pr, "pr")
        numbers["auc"] = {name: area for name, _, _, area in roc}
        numbers["average_precision"] = {name: area for name, _, _, area in pr}
        sections += ["One-vs-rest, on the test predictions.", "", "![ROC](roc.png) ![precision-recall](pr.png)", "",
                     md_table(["class", "ROC AUC", "average precision"],
                               [[r[0], f"{r[3]:.4f}", f"{p[3]:.4f}"] for r, p in zip(roc, pr, strict=True)]), ""]
    else:
        sections += ["No class has both positive and negative test samples: no curve to draw.", ""]

    ece, bins = calibration(run.decision, proba, y)
    numbers["ece"] = ece
    what = "fraction positive" if run.decision != "argmax" else "accuracy"
    plots.reliability(out / "reliability.png", *bins, ece, what)
    pooled = " (every label's probability pooled)" if run.decision == "labels" else ""
    sections += ["## Calibration", "", f"Expected calibration error (ECE, {BINS} bins, torchmetrics' "
                 f"`CalibrationError`){pooled}: **{ece:.4f}**. Bars under the diagonal: the model is more sure "
                 "than right.", "", "![reliability diagram](reliability.png)", ""]

    loss = sample_loss(run.decision, proba, y)
    worst = np.argsort(-loss, kind="stable")[:WORST]
    names = np.array(classes)
    shown_true = [_labels(run.decision, y[i], names) for i in worst]
    shown_pred = [_labels(run.decision, y_pred[i], names) for i in worst]
    cells = []
    for k, i in enumerate(worst):
        cell = [str(int(rows[i])), shown_true[k], shown_pred[k]]
        if run.decision != "labels":
            cell.append(f"{proba[i, int(y[i])]:.4f}")
        cell.append(f"{loss[i]:.3f}")
        if texts is not None:
            cell.append(_quote(texts[i]))
        cells.append(cell)
    header = ["row", "true", "predicted", *(["p(true)"] if run.decision != "labels" else []), "loss",
              *(["text"] if texts is not None else [])]
    numbers["worst_rows"] = [int(rows[i]) for i in worst]
    sections += ["## Worst-predicted test samples", "", f"The {len(worst)} samples with the highest loss; `row` "
                 "counts the data's rows from 0.", "", md_table(header, cells), ""]
    if images is not None and len(worst):
        plots.contact_sheet(out / "worst.png", np.stack([images(int(i)) for i in worst]),
                            [f"row {int(rows[i])}\ntrue {t}\npred {p}" for i, t, p in zip(worst, shown_true,
                                                                                          shown_pred, strict=True)])
        sections += ["![worst-predicted samples](worst.png)", ""]

    headline = []
    if weakest is not None:
        row = table[weakest]
        headline.append(f"weakest class: {weakest} (F1 {row['f1-score']:.4f}, precision {row['precision']:.4f}, "
                        f"recall {row['recall']:.4f}, {int(row['support'])} samples)")
    headline.append(f"expected calibration error: {ece:.4f}")
    return sections, headline, numbers


def class_decisions(decision: str, preds: np.ndarray, targets: np.ndarray,
                    threshold: float | list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities (N, K), true classes (N,) or labels (N, K), decided classes or labels) of a run's
    predictions, decided as ``dlcli predict`` decides (binary and multilabel: above the threshold)."""
    if decision == "positive":
        p = preds.reshape(-1)
        return np.stack([1 - p, p], axis=1), targets.astype(np.int64).reshape(-1), (p > threshold).astype(np.int64)
    if decision == "labels":
        limits = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (preds.shape[1],))
        return preds, targets.astype(np.int64), (preds > limits).astype(np.int64)
    return preds, targets.astype(np.int64), preds.argmax(1)


def confused_pairs(y: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> list[tuple[str, str, int, float]]:
    """The most frequent (true, predicted) mistakes: counts and their share of the true class's samples."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, y_pred, labels=list(range(len(classes))))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:CONFUSED]
    return [(classes[i], classes[j], int(off[i, j]), float(off[i, j] / cm[i].sum()))
            for i, j in (np.unravel_index(k, off.shape) for k in order) if off[i, j] > 0]


def one_vs_rest(decision: str, proba: np.ndarray, y: np.ndarray,
                classes: list[str]) -> tuple[list[tuple], list[tuple]]:
    """ROC and precision-recall curves, one per class against the rest (binary: the positive class only);
    classes without both positive and negative test samples are left out."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    columns = [1] if decision == "positive" else range(len(classes))
    roc, pr = [], []
    for k in columns:
        truth = y[:, k] if decision == "labels" else (y == k).astype(np.int64)
        if truth.min() == truth.max():
            continue
        fpr, tpr, _ = roc_curve(truth, proba[:, k])
        precision, recall, _ = precision_recall_curve(truth, proba[:, k])
        roc.append((classes[k], fpr, tpr, float(auc(fpr, tpr))))
        order = np.argsort(recall, kind="stable")
        pr.append((classes[k], recall[order], precision[order], float(average_precision_score(truth, proba[:, k]))))
    return roc, pr


def calibration(decision: str, proba: np.ndarray, y: np.ndarray) -> tuple[float, tuple]:
    """(torchmetrics' expected calibration error (l1), the reliability diagram's bins: mean confidence,
    mean accuracy (binary, multilabel: the fraction positive), counts, edges).

    Binary (and multilabel, pooled): the positive probability against how often the label holds;
    multiclass: the top class's probability against how often it is right.
    """
    import torch
    from torchmetrics.classification import BinaryCalibrationError, MulticlassCalibrationError

    if decision == "argmax":
        metric = MulticlassCalibrationError(num_classes=proba.shape[1], n_bins=BINS, norm="l1")
        ece = metric(torch.from_numpy(proba.astype(np.float32)), torch.from_numpy(y))
        confidence, correct = proba.max(1), (proba.argmax(1) == y).astype(np.float64)
    else:
        p = proba[:, 1] if decision == "positive" else proba.reshape(-1)
        t = y.reshape(-1)
        ece = BinaryCalibrationError(n_bins=BINS, norm="l1")(torch.from_numpy(p.astype(np.float32)),
                                                              torch.from_numpy(t))
        confidence, correct = p, t.astype(np.float64)
    edges = np.linspace(0, 1, BINS + 1)
    # torchmetrics' binning: bucketize(right=True) - 1, clamped; bin b holds edges[b] <= confidence < edges[b+1]
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, BINS - 1)
    counts = np.bincount(which, minlength=BINS)
    mean_conf = np.bincount(which, weights=confidence, minlength=BINS) / np.maximum(counts, 1)
    mean_acc = np.bincount(which, weights=correct, minlength=BINS) / np.maximum(counts, 1)
    return float(ece), (mean_conf, mean_acc, counts, edges)


def sample_loss(decision: str, proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) cross-entropy of each sample (multilabel: mean binary cross-entropy over its labels)."""
    eps = 1e-12
    if decision == "labels":
        p = np.clip(proba, eps, 1 - eps)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(1)
    return -np.log(np.clip(proba[np.arange(len(y)), y], eps, 1.0))


def _labels(decision: str, value: Any, names: np.ndarray) -> str:
    if decision == "labels":
        return ";".join(names[np.asarray(value) > 0]) or "(none)"
    return str(names[int(value)])


def _threshold_text(run: LoadedRun) -> str:
    t = run.threshold
    tuned = (run.run_dir / "threshold.json").is_file()
    shown = ", ".join(f"{v:.4f}" for v in t) if isinstance(t, list) else f"{t:.4f}"
    return f"{shown} ({'tuned: threshold.json' if tuned else 'the default'})"


# ---------------------------------------------------------------------------------------------- regression


def _regression(out: Path, preds: np.ndarray, targets: np.ndarray, rows: np.ndarray, texts: list[str] | None,
                images: Any) -> tuple[list[str], list[str], dict[str, Any]]:
    predicted = preds.reshape(len(preds), -1).astype(np.float64)  # (N,) or (N, T) -> (N, K)
    actual = targets.reshape(len(targets), -1).astype(np.float64)
    names = ["target"] if actual.shape[1] == 1 else [f"output {j}" for j in range(actual.shape[1])]
    plots.predicted_vs_actual(out / "predicted_vs_actual.png", actual, predicted, names)
    plots.residuals(out / "residuals.png", actual, predicted, names)
    ranges = error_by_range(actual, predicted, names)
    _write_csv(out / "error_by_range.csv", ["output", "from", "to", "samples", "mae", "rmse", "bias"],
               [[r["output"], r["from"], r["to"], r["samples"], r["mae"], r["rmse"], r["bias"]] for r in ranges])
    error = np.abs(actual - predicted).mean(1)
    worst = np.argsort(-error, kind="stable")[:WORST]
    cells = [[str(int(rows[i])), _values(actual[i]), _values(predicted[i]), f"{error[i]:.4g}",
              *([_quote(texts[i])] if texts is not None else [])] for i in worst]
    sections = ["## Predictions against targets", "", "![predicted against actual](predicted_vs_actual.png)", "",
                "![residuals](residuals.png)", "", "## Error by target range", "",
                f"The test targets cut into {RANGE_BINS} quantile bins; bias is the mean of predicted - actual.", "",
                md_table(["output", "target range", "samples", "MAE", "RMSE", "bias"],
                          [[r["output"], f"{r['from']:.4g} .. {r['to']:.4g}", str(r["samples"]), f"{r['mae']:.4g}",
                            f"{r['rmse']:.4g}", f"{r['bias']:+.4g}"] for r in ranges]), "",
                "Also as [error_by_range.csv](error_by_range.csv).", "",
                "## Worst-predicted test samples", "", f"The {len(worst)} samples with the largest absolute error; "
                "`row` counts the data's rows from 0.", "",
                md_table(["row", "actual", "predicted", "abs error", *(["text"] if texts is not None else [])],
                          cells), ""]
    if images is not None and len(worst):
        plots.contact_sheet(out / "worst.png", np.stack([images(int(i)) for i in worst]),
                            [f"row {int(rows[i])}\nactual {_values(actual[i])}\npred {_values(predicted[i])}"
                             for i in worst])
        sections += ["![worst-predicted samples](worst.png)", ""]
    hardest = max(ranges, key=lambda r: r["mae"])
    headline = [f"largest error in target range {hardest['from']:.4g} .. {hardest['to']:.4g}"
                + (f" of {hardest['output']}" if len(names) > 1 else "")
                + f": MAE {hardest['mae']:.4g} over {hardest['samples']} samples (bias {hardest['bias']:+.4g})"]
    return sections, headline, {"error_by_range": ranges, "worst_rows": [int(rows[i]) for i in worst]}


def error_by_range(actual: np.ndarray, predicted: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Per output, the test targets cut at their quantiles into RANGE_BINS bins: samples, MAE, RMSE, bias."""
    out = []
    for j, name in enumerate(names):
        a, p = actual[:, j], predicted[:, j]
        edges = np.unique(np.quantile(a, np.linspace(0, 1, RANGE_BINS + 1)))
        which = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, max(len(edges) - 2, 0))
        for b in range(max(len(edges) - 1, 1)):
            mask = which == b
            if not mask.any():
                continue
            e = p[mask] - a[mask]
            out.append({"output": name, "from": float(a[mask].min()), "to": float(a[mask].max()),
                        "samples": int(mask.sum()), "mae": float(np.abs(e).mean()),
                        "rmse": float(np.sqrt((e ** 2).mean())), "bias": float(e.mean())})
    return out


# ------------------------------------------------------------------------------------------------- shared


def _images(run: LoadedRun, datamodule: Any) -> Any:
    """For image runs, a function giving the model's input (C, H, W) of the i-th test sample; else None."""
    pre = run.preprocessing
    if pre.get("text") is not None or len(pre["input_shape"]) != 3 or pre["input_shape"][0] not in (1, 3) \
            or pre.get("variable_length"):
        return None
    dataset = datamodule.sets["test"]
    return lambda i: np.asarray(dataset[i][0])


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    folder.atomic_write_text(path, buffer.getvalue())


def _values(v: np.ndarray) -> str:
    return ", ".join(f"{x:.4g}" for x in v[:4]) + (" ..." if len(v) > 4 else "")


def _quote(text: str) -> str:
    text = " ".join(str(text).split())
    return text[:TEXT_CHARS] + (" ..." if len(text) > TEXT_CHARS else "")
