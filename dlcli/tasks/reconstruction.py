"""Reconstruction (autoencoders): the target is the input itself; held-out classes score as anomalies."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcli.errors import DataError
from dlcli.metrics import RECONSTRUCTION
from dlcli.registry import TASKS
from dlcli.tasks.base import Task, label_key


@TASKS.register()
class reconstruction(Task):  # noqa: N801 - the registry name is the class name
    """The input is the target (autoencoders); classes named in data.anomaly_classes are scored as anomalies."""

    name = "reconstruction"
    stratify = True  # by the labels the rows still carry: every class in every split
    metric_names = RECONSTRUCTION
    default_metrics = ("anomaly_auroc",)
    default_loss = "mse"
    gives = "the reconstructed inputs, flattened"

    def targets(self, table, data_name):
        return table.y, None  # the targets are the inputs; y keeps the labels (for anomaly flags)

    def out_features(self, in_shape, y, class_names, embedding_dim):
        return int(np.prod(in_shape))  # the model gives back a whole (flattened) input

    def hold_out(self, y, idx, cfg, data_name):
        """Rows of ``data.anomaly_classes`` never train or validate; they all join the test split.

        The targets become 1.0 for an anomaly, 0.0 otherwise.
        """
        wanted_classes = cfg.get("anomaly_classes")
        extra: dict[str, Any] = {"anomaly_classes": wanted_classes, "anomalies": 0}
        if not wanted_classes:
            return np.zeros(len(y), dtype=np.float32), idx, extra
        wanted = {str(a) for a in wanted_classes}
        flags = np.array([str(v.item() if hasattr(v, "item") else v) in wanted for v in y])
        if not flags.any():
            present = sorted({str(v) for v in y})[:20]
            raise DataError(f"data.anomaly_classes {list(wanted_classes)}: no such labels in data '{data_name}'. "
                            f"Labels: {', '.join(present)}")
        out = {k: v[~flags[v]] for k, v in idx.items()}
        out["test"] = np.sort(np.union1d(out.get("test", np.array([], dtype=int)), np.flatnonzero(flags)))
        extra["anomalies"] = int(flags.sum())
        return flags.astype(np.float32), out, extra

    def metric(self, name: str, num_classes: int | None) -> Any:
        if name == "anomaly_auroc":
            from torchmetrics.classification import BinaryAUROC

            return BinaryAUROC()
        return super().metric(name, num_classes)

    def metric_stages(self, has_anomalies):
        # validation holds no anomalies; the test split does, if any were named
        return ("test",) if has_anomalies else ()

    def loss(self, loss_fn, out, x, y, y_mean, y_std):
        return loss_fn(out, x.flatten(1))  # (B, prod(in_shape)) against the input itself

    def update_metrics(self, metrics, confusion, out, x, y, y_mean, y_std):
        metrics.update(((out - x.flatten(1)) ** 2).mean(1), y.long())  # anomaly score: the reconstruction error

    def eval_targets(self, y, class_names, pre, name):  # anomaly flags, by the run's held-out classes
        wanted = {label_key(a) for a in pre.get("anomaly_classes") or []}
        return np.array([label_key(v) in wanted for v in y], dtype=np.float32)
