"""Multilabel classification: any number of K labels per sample; a sigmoid per label."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcli.errors import DataError
from dlcli.metrics import CLASSIFICATION
from dlcli.registry import TASKS
from dlcli.tasks.base import THRESHOLD, Task, classification_metric, probability_rows


@TASKS.register()
class multilabel(Task):  # noqa: N801 - the registry name is the class name
    """Any of K labels per sample (a 0/1 target matrix): a sigmoid per label, binary cross-entropy."""

    name = "multilabel"
    auto_kind = "multilabel"
    classes = "labels"
    metric_names = CLASSIFICATION
    default_metrics = ("acc", "f1")
    monitor = ("val/acc", "max")
    default_loss = "bce"
    decision = "labels"
    predictable, gives = True, "label probabilities (sigmoid), one column per label"
    output_activation = "sigmoid"

    def targets(self, table, data_name):
        if table.y.ndim != 2 or not np.isin(table.y, (0, 1)).all():
            raise DataError(f"task=multilabel needs a 0/1 target matrix (N, labels); data '{data_name}' has "
                            f"targets of shape {table.y.shape}")
        y = table.y.astype(np.float32)
        return y, list(table.class_names or [f"label_{i}" for i in range(y.shape[1])])

    def metric(self, name: str, num_classes: int | None) -> Any:
        return classification_metric("Multilabel", name, num_labels=num_classes) or super().metric(name, num_classes)

    def predictions(self, out, x, y_mean, y_std):
        import torch

        return torch.sigmoid(out)

    def metric_target(self, y):
        return y.long()

    def eval_targets(self, y, class_names, pre, name):
        classes = pre["classes"]
        if y.ndim != 2 or y.shape[1] != len(classes) or not np.isin(y, (0, 1)).all():
            raise DataError(f"{name} has targets of shape {y.shape}; the run predicts {len(classes)} 0/1 labels "
                            f"({', '.join(classes)})")
        return y.astype(np.float32)

    def tabulate(self, ids, out, classes, threshold=THRESHOLD):
        # one threshold for every label, or one per label (tuned: threshold.json)
        limits = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(classes),))
        labels = [";".join(c for c, p, t in zip(classes, row, limits, strict=True) if p > t) for row in out]
        return probability_rows(ids, labels, out, classes)
