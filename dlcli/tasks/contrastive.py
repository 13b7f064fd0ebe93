"""Contrastive self-supervised pretraining: two augmented views of each image, NT-Xent; labels never read."""

from __future__ import annotations

from typing import Any

from dlcli.metrics import METRIC_LEARNING
from dlcli.registry import TASKS
from dlcli.tasks.base import Task, class_ids, eval_class_ids
from dlcli.tasks.metric_learning import recall_at_1


@TASKS.register()
class contrastive(Task):  # noqa: N801 - the registry name is the class name
    """Self-supervised: NT-Xent between two augmented views of each image; recall@1 of the embeddings."""

    name = "contrastive"
    auto_kind, auto_rank = "classification", 3
    target_dtype, stratify, classes = "int64", True, "classes"
    metric_names = METRIC_LEARNING
    default_metrics = ("recall_at_1",)
    default_loss = "nt_xent"
    gives = "embeddings (compare them by cosine similarity)"
    needs_views = True

    def targets(self, table, data_name):
        return class_ids(table, data_name)

    def out_features(self, in_shape, y, class_names, embedding_dim):
        return embedding_dim

    def metric(self, name, num_classes):
        return recall_at_1(name) or super().metric(name, num_classes)

    def training_loss(self, module: Any, x: Any, y: Any) -> Any:
        return self.views_loss(module, x)  # self-supervised: y is never read

    def eval_loss(self, module: Any, out: Any, x: Any, y: Any, batch_idx: int) -> Any:
        return self.views_loss(module, x, seed=batch_idx)

    @staticmethod
    def views_loss(module: Any, x: Any, seed: int | None = None) -> Any:
        """NT-Xent between two independently augmented views of ``x``; the labels are never passed.

        Validation and test batches are augmented here too (the only place they are), because the loss
        needs views; ``seed`` draws the same views every epoch, so that epochs compare on equal terms.
        """
        import torch

        if seed is None:
            views = [module.augment(x, None)[0] for _ in range(2)]
        else:
            devices = [x.device.index or 0] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # training's random stream is left as it was
                torch.manual_seed(seed)
                views = [module.augment(x, None)[0] for _ in range(2)]
        out = module(torch.cat(views))  # (2B, *S) -> (2B, D): one pass, batch norm sees both views
        return module.loss_fn(*out.chunk(2))

    def eval_targets(self, y, class_names, pre, name):
        return eval_class_ids(y, class_names, pre["classes"], name)
