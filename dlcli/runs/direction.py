"""Which way is better for a metric. Light on purpose: training and the ``runs`` commands share the rule."""

from __future__ import annotations

# The last part of a metric name (``val/acc`` -> ``acc``) for which higher is better; everything else
# (losses, errors) is better lower.
HIGHER_IS_BETTER = frozenset({"acc", "r2", "f1", "f1_micro", "auroc", "precision", "recall", "recall_at_1",
                              "anomaly_auroc", "average_precision", "explained_variance"})


def metric_mode(metric: str) -> str:
    """``max`` for metrics where higher is better (accuracy, R2, ...), ``min`` for losses and errors."""
    last = metric.rsplit("/", 1)[-1]
    return "max" if last in HIGHER_IS_BETTER or (last.startswith("top") and last.endswith("_acc")) else "min"
