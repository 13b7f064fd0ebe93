"""Loss functions. ``tasks`` says which task kinds a loss fits; validation checks it."""

from __future__ import annotations

from dlcli.registry import LOSSES


@LOSSES.register(tasks=("multiclass",))  # two classes: two logits, still "multiclass"
def cross_entropy(label_smoothing: float = 0.0):
    """Cross-entropy on logits with integer class labels (sparse categorical)."""
    from torch import nn

    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


@LOSSES.register(tasks=("binary",))
def bce(pos_weight: float | None = None):
    """Binary cross-entropy on a single logit (BCEWithLogits)."""
    import torch
    from torch import nn

    weight = None if pos_weight is None else torch.tensor([pos_weight])
    return nn.BCEWithLogitsLoss(pos_weight=weight)


@LOSSES.register(tasks=("regression",))
def mse():
    """Mean squared error (L2) for regression."""
    from torch import nn

    return nn.MSELoss()
