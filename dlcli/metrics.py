"""Metrics by name, from torchmetrics, per task; chosen with the top-level `metrics:` list.

Classification: acc, top<k>_acc (e.g. top5_acc), precision, recall, f1 (macro averages), f1_micro,
auroc, average_precision. Regression: mae, mse, rmse, r2, explained_variance. Reconstruction:
anomaly_auroc. Transcription: cer (character error rate). Metric learning and contrastive: recall_at_1.
torchmetrics is imported only when metrics are built.
"""

from __future__ import annotations

import re

from dlcli.errors import DlcliError

CLASSIFICATION = ("acc", "precision", "recall", "f1", "f1_micro", "auroc", "average_precision")
REGRESSION = ("mae", "mse", "rmse", "r2", "explained_variance")
RECONSTRUCTION = ("anomaly_auroc",)
TRANSCRIPTION = ("cer",)
METRIC_LEARNING = ("recall_at_1",)
DEFAULTS = {"multiclass": ["acc"], "binary": ["acc"], "multilabel": ["acc", "f1"],
            "regression": ["mae", "rmse", "r2"], "reconstruction": ["anomaly_auroc"], "transcription": ["cer"],
            "metric_learning": ["recall_at_1"], "contrastive": ["recall_at_1"]}
_TOP_K = re.compile(r"top(\d+)_acc$")


def known(name: str) -> bool:
    return name in CLASSIFICATION + REGRESSION + RECONSTRUCTION + TRANSCRIPTION + METRIC_LEARNING \
        or bool(_TOP_K.match(name))


def make_metric(name: str, task: str, num_classes: int | None):
    """One torchmetrics metric for ``task``; a DlcliError names the metrics the task offers."""
    from torchmetrics import classification as C
    from torchmetrics import regression as R

    top_k = _TOP_K.match(name)
    if task in ("multiclass", "binary", "multilabel") and (name in CLASSIFICATION or top_k):
        if task == "multiclass":
            kw = {"num_classes": num_classes}
            if top_k:
                return C.MulticlassAccuracy(top_k=int(top_k.group(1)), average="micro", **kw)
            return {"acc": lambda: C.MulticlassAccuracy(average="micro", **kw),
                    "precision": lambda: C.MulticlassPrecision(average="macro", **kw),
                    "recall": lambda: C.MulticlassRecall(average="macro", **kw),
                    "f1": lambda: C.MulticlassF1Score(average="macro", **kw),
                    "f1_micro": lambda: C.MulticlassF1Score(average="micro", **kw),
                    "auroc": lambda: C.MulticlassAUROC(**kw),
                    "average_precision": lambda: C.MulticlassAveragePrecision(**kw)}[name]()
        if task == "binary" and not top_k:
            return {"acc": C.BinaryAccuracy, "precision": C.BinaryPrecision, "recall": C.BinaryRecall,
                    "f1": C.BinaryF1Score, "f1_micro": C.BinaryF1Score, "auroc": C.BinaryAUROC,
                    "average_precision": C.BinaryAveragePrecision}[name]()
        if task == "multilabel" and not top_k:
            kw = {"num_labels": num_classes}
            return {"acc": lambda: C.MultilabelAccuracy(average="micro", **kw),
                    "precision": lambda: C.MultilabelPrecision(average="macro", **kw),
                    "recall": lambda: C.MultilabelRecall(average="macro", **kw),
                    "f1": lambda: C.MultilabelF1Score(average="macro", **kw),
                    "f1_micro": lambda: C.MultilabelF1Score(average="micro", **kw),
                    "auroc": lambda: C.MultilabelAUROC(**kw),
                    "average_precision": lambda: C.MultilabelAveragePrecision(**kw)}[name]()
    if task == "regression" and name in REGRESSION:
        return {"mae": R.MeanAbsoluteError, "mse": R.MeanSquaredError, "rmse": lambda: R.MeanSquaredError(
            squared=False), "r2": R.R2Score, "explained_variance": R.ExplainedVariance}[name]()
    if task == "reconstruction" and name in RECONSTRUCTION:
        return C.BinaryAUROC()
    if task == "transcription" and name in TRANSCRIPTION:
        from torchmetrics.text import CharErrorRate

        return CharErrorRate()
    if task in ("metric_learning", "contrastive") and name in METRIC_LEARNING:
        from dlcli.nets.metrics import RecallAtOne

        return RecallAtOne()
    offered = {"multiclass": CLASSIFICATION + ("top<k>_acc",), "binary": CLASSIFICATION,
               "multilabel": CLASSIFICATION, "regression": REGRESSION, "reconstruction": RECONSTRUCTION,
               "transcription": TRANSCRIPTION, "metric_learning": METRIC_LEARNING,
               "contrastive": METRIC_LEARNING}[task]
    raise DlcliError(f"metric '{name}' does not apply to a {task} task. Metrics for it: {', '.join(offered)}")


def task_metrics(task: str, num_classes: int | None, names: list[str] | None = None):
    """The MetricCollection a task reports: ``names``, or the task's defaults."""
    from torchmetrics import MetricCollection

    return MetricCollection({n: make_metric(n, task, num_classes) for n in (names or DEFAULTS[task])})
