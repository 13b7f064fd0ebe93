"""Loss functions. ``tasks`` says which task kinds a loss fits; validation checks it."""

from __future__ import annotations

from dlcli.registry import LOSSES


@LOSSES.register(tasks=("multiclass",))  # two classes: two logits, still "multiclass"
def cross_entropy(label_smoothing: float = 0.0):
    """Cross-entropy on logits with integer class labels (sparse categorical)."""
    from torch import nn

    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


@LOSSES.register(tasks=("binary", "multilabel"))
def bce(pos_weight: float | None = None):
    """Binary cross-entropy on logits (BCEWithLogits): one logit, or one per label (multilabel)."""
    import torch
    from torch import nn

    weight = None if pos_weight is None else torch.tensor([pos_weight])
    return nn.BCEWithLogitsLoss(pos_weight=weight)


@LOSSES.register(tasks=("regression", "reconstruction"))
def mse():
    """Mean squared error (L2) for regression and reconstruction."""
    from torch import nn

    return nn.MSELoss()
