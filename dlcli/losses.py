"""Loss functions. ``tasks`` says which task kinds a loss fits; dlcli checks it before training.

Classification losses take logits: (B, C) for multiclass, (B,) for binary, (B, K) for multilabel.
Multiclass targets are class ids (B,) ("sparse categorical") or, where noted, probabilities (B, C)
("categorical": one-hot or soft, e.g. from mixup).
"""

from __future__ import annotations

from dlcli.config.types import Count, NonNegativeFloat, PositiveFloat, Rate
from dlcli.registry import LOSSES


@LOSSES.register(tasks=("multiclass",))
def cross_entropy(label_smoothing: Rate = 0.0, class_weights: list[float] | None = None):
    """Cross-entropy on logits; class-id targets (sparse categorical) or probabilities (categorical)."""
    import torch
    from torch import nn

    weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


@LOSSES.register(tasks=("multiclass",))
def nll():
    """Negative log-likelihood of the true class under log-softmax of the logits."""
    from dlcli.nets.losses import NLLOnLogits

    return NLLOnLogits()


@LOSSES.register(tasks=("multiclass",))
def kl_div():
    """Kullback-Leibler divergence from the target distribution to softmax(logits); ids become one-hot."""
    from dlcli.nets.losses import KLDivOnLogits

    return KLDivOnLogits()


@LOSSES.register(tasks=("multiclass",))
def focal(gamma: NonNegativeFloat = 2.0, alpha: list[float] | None = None):
    """Focal loss: cross-entropy scaled by (1 - p_true)^gamma, focusing on hard examples."""
    from dlcli.nets.losses import FocalLoss

    return FocalLoss(gamma, alpha)


@LOSSES.register(tasks=("binary", "multiclass"))
def hinge(margin: NonNegativeFloat = 1.0):
    """Hinge (SVM) loss: binary on one logit with ±1 targets, or the multiclass margin loss."""
    from dlcli.nets.losses import HingeLoss

    return HingeLoss(margin)


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


@LOSSES.register(tasks=("regression", "reconstruction"))
def mae():
    """Mean absolute error (L1): less swayed by outliers than MSE."""
    from torch import nn

    return nn.L1Loss()


@LOSSES.register(tasks=("regression", "reconstruction"))
def huber(delta: PositiveFloat = 1.0):
    """Huber loss: quadratic for errors under delta, linear beyond (robust regression)."""
    from torch import nn

    return nn.HuberLoss(delta=delta)


@LOSSES.register(tasks=("regression", "reconstruction"))
def smooth_l1(beta: NonNegativeFloat = 1.0):
    """Smooth L1: Huber divided by beta (quadratic under beta, |error| - beta/2 beyond)."""
    from torch import nn

    return nn.SmoothL1Loss(beta=beta)


@LOSSES.register(tasks=("transcription",))
def ctc(zero_infinity: bool = True):
    """Connectionist temporal classification: unaligned symbol sequences from per-step scores (blank = 0)."""
    from dlcli.nets.losses import CTCOnLogits

    return CTCOnLogits(zero_infinity)


@LOSSES.register(tasks=("metric_learning",))
def triplet(margin: NonNegativeFloat = 0.2, embedding_dim: Count = 32):
    """Triplet loss, batch-hard: same-class embeddings closer than other-class ones by a margin."""
    from dlcli.nets.losses import BatchHardTriplet

    return BatchHardTriplet(margin)


@LOSSES.register(tasks=("metric_learning",))
def cosine_embedding(margin: NonNegativeFloat = 0.5, embedding_dim: Count = 32):
    """Cosine embedding loss over all pairs: same class -> cosine 1, other classes -> below margin."""
    from dlcli.nets.losses import PairwiseCosineEmbedding

    return PairwiseCosineEmbedding(margin)


@LOSSES.register(tasks=("contrastive",))
def nt_xent(temperature: PositiveFloat = 0.5, embedding_dim: Count = 64):
    """NT-Xent (SimCLR): two augmented views of an image embed close, other images apart; no labels."""
    from dlcli.nets.losses import NTXent

    return NTXent(temperature)
