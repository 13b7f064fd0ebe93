"""Loss modules that torch does not ship in the form dlcli needs (logits in, class ids or probabilities)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def as_distribution(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class ids (B,) -> one-hot (B, C); probabilities (B, C) pass through."""
    return F.one_hot(target, num_classes).float() if target.ndim == 1 else target


class NLLOnLogits(nn.Module):
    """NLL of log_softmax(logits): the textbook form of cross-entropy."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(F.log_softmax(logits, dim=-1), target)


class KLDivOnLogits(nn.Module):
    """KL(target || softmax(logits)), averaged over the batch."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = as_distribution(target, logits.shape[-1])
        return F.kl_div(F.log_softmax(logits, dim=-1), p, reduction="batchmean")


class FocalLoss(nn.Module):
    """-alpha_t (1 - p_t)^gamma log p_t (Lin et al., 2017); gamma 0 and no alpha is cross-entropy."""

    def __init__(self, gamma: float = 2.0, alpha: list[float] | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("alpha", None if alpha is None else torch.tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=-1)
        p_true = as_distribution(target, logits.shape[-1])
        ce = -(p_true * log_p).sum(-1)  # (B,)
        pt = (p_true * log_p.exp()).sum(-1)  # probability given to the target
        loss = (1 - pt).pow(self.gamma) * ce
        if self.alpha is not None:
            loss = loss * (p_true * self.alpha).sum(-1)
        return loss.mean()


class HingeLoss(nn.Module):
    """Binary: mean(max(0, margin - t * logit)) with t = 2y - 1 in {-1, +1}; multiclass: the margin loss."""

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 1:  # binary, one logit per sample; targets 0/1
            t = target.float() * 2 - 1
            return torch.clamp(self.margin - t * logits, min=0).mean()
        return F.multi_margin_loss(logits, target, margin=self.margin)


class CTCOnLogits(nn.Module):
    """CTC on per-step logits (B, T, C) (class 0 is the blank) against padded targets (B, L), 0 = padding."""

    def __init__(self, zero_infinity: bool = True) -> None:
        super().__init__()
        self.zero_infinity = zero_infinity  # a target longer than the input gives inf: count it as 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # (T, B, C), as torch's ctc_loss wants
        steps = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
        lengths = (target > 0).sum(1)
        return F.ctc_loss(log_probs, target, steps, lengths, blank=0, zero_infinity=self.zero_infinity)


def greedy_decode(logits: torch.Tensor) -> list[list[int]]:
    """Best path per sample: the top class per step, repeats merged, blanks (0) dropped."""
    best = logits.argmax(-1).tolist()  # (B, T)
    out = []
    for row in best:
        seq, prev = [], 0
        for c in row:
            if c != prev and c != 0:
                seq.append(c)
            prev = c
        out.append(seq)
    return out


def _normalized_distances(emb: torch.Tensor) -> torch.Tensor:
    z = F.normalize(emb, dim=-1)
    return torch.cdist(z, z)  # (B, B) euclidean distances between unit vectors


class BatchHardTriplet(nn.Module):
    """Triplet loss with in-batch mining: for each anchor, its farthest same-class sample and nearest other-class
    sample; mean of max(0, d(a, p) - d(a, n) + margin) over anchors that have both (Hermans et al., 2017)."""

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = _normalized_distances(emb)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
        pos = (same & ~eye).float()
        neg = (~same).float()
        hardest_pos = (d * pos).amax(1)
        hardest_neg = (d + 1e6 * (1 - neg)).amin(1)  # other-class distances only
        valid = (pos.sum(1) > 0) & (neg.sum(1) > 0)
        if not valid.any():
            return emb.sum() * 0.0  # no usable triplet in this batch
        return F.relu(hardest_pos - hardest_neg + self.margin)[valid].mean()


class PairwiseCosineEmbedding(nn.Module):
    """Cosine embedding loss over every pair in the batch: 1 - cos for same-class pairs, max(0, cos - margin)
    for different-class pairs."""

    def __init__(self, margin: float = 0.5) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = F.normalize(emb, dim=-1)
        cos = z @ z.T
        same = labels[:, None] == labels[None, :]
        off = ~torch.eye(len(labels), dtype=torch.bool, device=emb.device)
        loss = torch.where(same, 1 - cos, F.relu(cos - self.margin))
        return loss[off].mean()


class NTXent(nn.Module):
    """NT-Xent / InfoNCE (Chen et al., 2020, SimCLR): each of the 2B embeddings of two views must pick out the
    other view of its own image among the 2B - 1 others, by cosine similarity / temperature."""

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        z = F.normalize(torch.cat([view1, view2]), dim=-1)  # (2B, D) unit vectors
        sim = z @ z.T / self.temperature  # (2B, 2B)
        sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))  # not yourself
        b = len(view1)
        positive = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)  # i <-> i + B
        return F.cross_entropy(sim, positive)
