"""Metric learning: an embedding per sample, trained so that same-class samples lie close (triplet, cosine)."""

from __future__ import annotations

from typing import Any

from dlcli.metrics import METRIC_LEARNING
from dlcli.registry import TASKS
from dlcli.tasks.base import Task, class_ids, eval_class_ids


def recall_at_1(name: str) -> Any:
    from dlcli.nets.metrics import RecallAtOne

    return RecallAtOne() if name == "recall_at_1" else None


@TASKS.register()
class metric_learning(Task):  # noqa: N801 - the registry name is the class name
    """An embedding per sample (loss.embedding_dim wide), same-class samples close by cosine; recall@1."""

    name = "metric_learning"
    auto_kind, auto_rank = "classification", 2
    target_dtype, stratify, classes = "int64", True, "classes"
    metric_names = METRIC_LEARNING
    default_metrics = ("recall_at_1",)
    monitor = ("val/recall_at_1", "max")
    default_loss = "triplet"
    gives = "embeddings (compare them by cosine similarity)"

    def targets(self, table, data_name):
        return class_ids(table, data_name)

    def out_features(self, in_shape, y, class_names, embedding_dim):
        return embedding_dim  # the model outputs an embedding, compared by cosine

    def metric(self, name, num_classes):
        return recall_at_1(name) or super().metric(name, num_classes)

    def eval_targets(self, y, class_names, pre, name):
        return eval_class_ids(y, class_names, pre["classes"], name)
