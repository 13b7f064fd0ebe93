"""Metrics that torchmetrics does not have."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class RecallAtOne(Metric):
    """Share of samples whose nearest other sample (by cosine, over the whole epoch) has the same class."""

    higher_is_better = True
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        self.embeddings.append(F.normalize(embeddings.detach().float(), dim=-1))
        self.labels.append(labels.detach())

    def compute(self) -> torch.Tensor:
        z, y = dim_zero_cat(self.embeddings), dim_zero_cat(self.labels)
        sim = z @ z.T
        sim.fill_diagonal_(-2.0)  # never your own neighbour
        return (y[sim.argmax(1)] == y).float().mean()
