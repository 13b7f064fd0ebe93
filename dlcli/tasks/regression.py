"""Regression: real-valued targets, one or several per sample, learned standardised."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcli.errors import DataError
from dlcli.metrics import REGRESSION
from dlcli.registry import TASKS
from dlcli.tasks.base import Task


@TASKS.register()
class regression(Task):  # noqa: N801 - the registry name is the class name
    """Real-valued targets: the model learns standardised targets; metrics in the targets' own units."""

    name = "regression"
    auto_kind = "regression"
    metric_names = REGRESSION
    default_metrics = ("mae", "rmse", "r2")
    default_loss = "mse"
    predictable, gives = True, "predicted values in the targets' original units"

    def targets(self, table, data_name):
        if not np.issubdtype(table.y.dtype, np.number):
            raise DataError(f"task=regression needs numeric targets; data '{data_name}' has labels such as "
                            f"{table.y[0]!r}. Use task=auto or task=multiclass")
        return table.y.astype(np.float32), None

    def fit_targets(self, y_train, cfg):
        from dlcli.data.prepare import fit_scaler

        return {"target_scaling": fit_scaler(y_train.reshape(len(y_train), -1), cfg["target_scaling"])}

    def metric(self, name: str, num_classes: int | None) -> Any:
        from torchmetrics import regression as R

        builders = {"mae": R.MeanAbsoluteError, "mse": R.MeanSquaredError,
                    "rmse": lambda: R.MeanSquaredError(squared=False), "r2": R.R2Score,
                    "explained_variance": R.ExplainedVariance}
        return builders[name]() if name in builders else super().metric(name, num_classes)

    def output(self, out):
        return out.squeeze(-1) if out.shape[-1] == 1 else out  # one value per sample: (B, 1) -> (B,)

    def loss(self, loss_fn, out, x, y, y_mean, y_std):
        return loss_fn(out, (y - y_mean) / y_std)  # the model learns standardised targets

    def predictions(self, out, x, y_mean, y_std):
        return out * y_std + y_mean  # standardised -> the targets' units

    def eval_targets(self, y, class_names, pre, name):
        if not np.issubdtype(y.dtype, np.number):
            raise DataError(f"{name} has non-numeric targets such as {y[0]!r}; the run predicts values")
        width = pre["out_features"]
        y = y.astype(np.float32)
        if y.ndim == 2 and y.shape[1] == 1 and width == 1:
            y = y[:, 0]
        if (y.ndim == 1) != (width == 1) or (y.ndim == 2 and y.shape[1] != width):
            raise DataError(f"{name} has targets of shape {y.shape[1:]}; the run predicts {width} value(s) per row")
        return y

    def tabulate(self, ids, out, classes, threshold=0.5):
        values = np.asarray(out).reshape(len(out), -1)  # (N,) or (N, T) -> (N, T)
        names = ["prediction"] if values.shape[1] == 1 else [f"prediction_{i}" for i in range(values.shape[1])]
        return ["id", *names], [{"id": i, **dict(zip(names, map(float, v), strict=True))}
                                for i, v in zip(ids, values, strict=True)]
