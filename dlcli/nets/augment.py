"""Batch augmentation on the device: a pipeline of image ops (kornia) and mixup / cutmix with soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MixUp(nn.Module):
    """x = lam * x + (1 - lam) * x[perm]; targets mixed the same way (one-hot -> soft), lam ~ Beta(alpha, alpha)."""

    def __init__(self, alpha: float = 0.2, p: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.p = alpha, p

    def forward(self, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.rand(()) >= self.p:
            return x, y
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample().to(x.device)
        perm = torch.randperm(x.shape[0], device=x.device)
        soft = soft_targets(y, num_classes)
        return lam * x + (1 - lam) * x[perm], lam * soft + (1 - lam) * soft[perm]


class CutMix(nn.Module):
    """Paste a random box from another sample; targets mixed by the pasted area (Yun et al., 2019)."""

    def __init__(self, alpha: float = 1.0, p: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.p = alpha, p

    def forward(self, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.rand(()) >= self.p or x.ndim != 4:
            return x, y
        h, w = x.shape[-2:]
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample().item()
        bh, bw = int(round(h * (1 - lam) ** 0.5)), int(round(w * (1 - lam) ** 0.5))
        top, left = torch.randint(0, h - bh + 1, ()).item(), torch.randint(0, w - bw + 1, ()).item()
        perm = torch.randperm(x.shape[0], device=x.device)
        x = x.clone()
        x[:, :, top:top + bh, left:left + bw] = x[perm, :, top:top + bh, left:left + bw]
        kept = 1 - (bh * bw) / (h * w)  # the share of each image that is still its own
        soft = soft_targets(y, num_classes)
        return x, kept * soft + (1 - kept) * soft[perm]


def soft_targets(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class ids (B,) -> one-hot (B, C); probabilities pass through; binary 0/1 stays a probability."""
    if y.is_floating_point():
        return y
    return F.one_hot(y, num_classes).float()


class Pipeline(nn.Module):
    """Image ops in order (each with its own probability), then at most one of mixup / cutmix.

    Called on training batches only, on whatever device they are on. ``set_epoch`` switches mixing
    off for the last ``mix_off_last_epochs`` epochs, so the model ends on clean targets.
    """

    def __init__(self, ops: list[nn.Module], mixers: list[nn.Module], num_classes: int | None,
                 mix_off_last_epochs: int = 0) -> None:
        super().__init__()
        self.ops, self.mixers = nn.ModuleList(ops), nn.ModuleList(mixers)
        self.num_classes, self.mix_off_last_epochs = num_classes, mix_off_last_epochs
        self.mixing = True

    def set_epoch(self, epoch: int, max_epochs: int | None) -> None:
        self.mixing = not (max_epochs and self.mix_off_last_epochs and epoch >= max_epochs - self.mix_off_last_epochs)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for op in self.ops:
            x = op(x)
        if self.mixing and self.mixers:
            mixer = self.mixers[torch.randint(len(self.mixers), ()).item()]  # one of them per batch
            x, y = mixer(x, y, self.num_classes)
        return x, y
