"""Binary classification: two classes, one logit (the second class's), sigmoid."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcli.errors import DlcliError
from dlcli.metrics import CLASSIFICATION
from dlcli.registry import TASKS
from dlcli.tasks.base import THRESHOLD, Task, class_ids, classification_metric, eval_class_ids, probability_rows


@TASKS.register()
class binary(Task):  # noqa: N801 - the registry name is the class name
    """Two classes, one logit: the probability of the second class (sigmoid), binary cross-entropy."""

    name = "binary"
    auto_kind, auto_rank = "classification", 1
    target_dtype, stratify, classes = "float32", True, "classes"
    metric_names = CLASSIFICATION
    default_metrics = ("acc",)
    monitor = ("val/acc", "max")
    default_loss = "bce"
    decision = "positive"
    predictable, gives = True, "the probability of the second class (sigmoid), one value per row"
    output_activation, mixes_targets = "sigmoid", True

    def targets(self, table, data_name):
        y, names = class_ids(table, data_name)
        if len(names) != 2:
            raise DlcliError(f"a binary task (one logit, e.g. loss=bce) takes 2 classes, but data '{data_name}' "
                             f"has {len(names)} classes. Use loss=cross_entropy")
        return y, names

    def out_features(self, in_shape, y, class_names, embedding_dim):
        return 1

    def metric(self, name: str, num_classes: int | None) -> Any:
        return classification_metric("Binary", name) or super().metric(name, num_classes)

    def confusion(self, num_classes):
        from torchmetrics.classification import BinaryConfusionMatrix

        return BinaryConfusionMatrix()

    def output(self, out):
        return out.squeeze(-1)  # (B, 1) -> (B,)

    def predictions(self, out, x, y_mean, y_std):
        import torch

        return torch.sigmoid(out)

    def metric_target(self, y):
        return y.long()

    def eval_targets(self, y, class_names, pre, name):
        return eval_class_ids(y, class_names, pre["classes"], name)

    def tabulate(self, ids, out, classes, threshold=THRESHOLD):
        out = np.asarray(out)
        probs = np.stack([1 - out, out], axis=1)  # (N,) probability of the second class -> (N, 2)
        return probability_rows(ids, [classes[int(p > threshold)] for p in out], probs, classes)
