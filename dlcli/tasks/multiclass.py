"""Multiclass classification: one label of K classes per sample; softmax over K logits."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcli.errors import DlcliError
from dlcli.metrics import CLASSIFICATION, TOP_K
from dlcli.registry import TASKS
from dlcli.tasks.base import Task, class_ids, classification_metric, eval_class_ids, probability_rows


@TASKS.register()
class multiclass(Task):  # noqa: N801 - the registry name is the class name
    """One of K classes per sample: softmax over K logits, cross-entropy; accuracy, a confusion matrix."""

    name = "multiclass"
    auto_kind, auto_rank = "classification", 0
    target_dtype, stratify, classes = "int64", True, "classes"
    metric_names = (*CLASSIFICATION, "top<k>_acc")
    default_metrics = ("acc",)
    monitor = ("val/acc", "max")
    default_loss = "cross_entropy"
    decision = "argmax"
    predictable, gives = True, "class probabilities (softmax), one column per class"
    output_activation, mixes_targets = "softmax", True

    def targets(self, table, data_name):
        return class_ids(table, data_name)

    def out_features(self, in_shape, y, class_names, embedding_dim):
        return len(class_names)

    def metric(self, name: str, num_classes: int | None) -> Any:
        top_k = TOP_K.match(name)
        if top_k:
            from torchmetrics.classification import MulticlassAccuracy

            k = int(top_k.group(1))
            if num_classes is not None and k > num_classes:
                raise DlcliError(f"metrics: {name} counts the true class among the top {k}, and this data has "
                                 f"{num_classes} classes: use k from 1 to {num_classes}, e.g. "
                                 f"top{min(5, num_classes)}_acc")
            return MulticlassAccuracy(num_classes=num_classes, top_k=k, average="micro")
        return classification_metric("Multiclass", name, num_classes=num_classes) \
            or super().metric(name, num_classes)

    def confusion(self, num_classes):
        from torchmetrics.classification import MulticlassConfusionMatrix

        return MulticlassConfusionMatrix(num_classes=num_classes)

    def predictions(self, out, x, y_mean, y_std):
        return out.softmax(-1)

    def eval_targets(self, y, class_names, pre, name):
        return eval_class_ids(y, class_names, pre["classes"], name)

    def tabulate(self, ids, out, classes, threshold=0.5):
        return probability_rows(ids, [classes[k] for k in np.asarray(out).argmax(1)], out, classes)
