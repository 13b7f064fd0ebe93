"""Metric names, chosen with the top-level `metrics:` list; each task builds the torchmetrics for its own.

Classification: acc, top<k>_acc (e.g. top5_acc), precision, recall, f1 (macro averages), f1_micro,
auroc, average_precision. Regression: mae, mse, rmse, r2, explained_variance. Reconstruction:
anomaly_auroc. Transcription: cer (character error rate). Metric learning and contrastive: recall_at_1.
Which task offers which, and its defaults, is declared in the task's file (dlcli/tasks/).
torchmetrics is imported only when metrics are built.
"""

from __future__ import annotations

import re

CLASSIFICATION = ("acc", "precision", "recall", "f1", "f1_micro", "auroc", "average_precision")
REGRESSION = ("mae", "mse", "rmse", "r2", "explained_variance")
RECONSTRUCTION = ("anomaly_auroc",)
TRANSCRIPTION = ("cer",)
METRIC_LEARNING = ("recall_at_1",)
ALL = (*CLASSIFICATION, *REGRESSION, *RECONSTRUCTION, *TRANSCRIPTION, *METRIC_LEARNING, "top<k>_acc")
TOP_K = re.compile(r"top([1-9]\d*)_acc$")  # top-k accuracy, k >= 1 (top0_acc counts nothing right)


def known(name: str) -> bool:
    """A metric name some task offers (the tasks of plugins included)."""
    from dlcli.registry import TASKS, load_components

    load_components()
    offered = {n for entry in TASKS for n in entry.fn.metric_names}
    return name in offered or ("top<k>_acc" in offered and bool(TOP_K.match(name)))


def misspelt(logged: str) -> str | None:
    """Why ``logged`` (a monitor or sweep metric: ``val/acc``, ``train/loss``) names no metric a run logs, when it
    is a misspelling of one: the problem with a suggestion; else None. A name close to none is let through: a
    plugin's callback may log it."""
    from dlcli.registry import TASKS, did_you_mean, load_components

    split, slash, name = logged.partition("/")
    load_components()
    names = ["loss", *dict.fromkeys(n for entry in TASKS for n in entry.fn.metric_names if n != "top<k>_acc")]
    splits = ("train", "val", "test")
    if slash and split not in splits and did_you_mean(split, splits):
        return f"'{logged}' is no metric a run logs: the part before '/' is train, val or test." \
               f"{did_you_mean(split, splits)}"
    if slash and split in splits and name not in names and not known(name) and did_you_mean(name, names):
        return f"'{logged}' is no metric a run logs.{did_you_mean(f'{split}/{name}', [f'{split}/{n}' for n in names])}"
    return None


def make_metric(name: str, task: str, num_classes: int | None):
    """One torchmetrics metric for ``task``; a DlcliError names the metrics the task offers."""
    from dlcli.tasks import get_task

    return get_task(task).metric(name, num_classes)


def task_metrics(task: str, num_classes: int | None, names: list[str] | None = None):
    """The MetricCollection a task reports: ``names``, or the task's defaults."""
    from torchmetrics import MetricCollection

    from dlcli.tasks import get_task

    spec = get_task(task)
    return MetricCollection({n: spec.metric(n, num_classes) for n in (names or spec.default_metrics)})
