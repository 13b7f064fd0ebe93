"""VGG (Simonyan & Zisserman, 2015): stages of 3x3 convolutions, each stage halving the image with a max-pool.

Also home of :class:`ConvNormAct` and :func:`scale_channels`, the plain convolution unit and the width
rule that ResNet and Inception reuse.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from dlcli.blocks import GlobalPool, make_activation, make_norm

# Convolutions per stage for each depth (the paper's configurations A, B, D and E); depth counts
# the convolutions plus the classifier's three linear layers: 11 = 1+1+2+2+2 + 3.
VGG_STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to a multiple of 8 (at least 8), so group norm's 8 groups always divide it.

    The reference widths are all multiples of 8, so width 1.0 gives them back unchanged.
    """
    return max(8, int(round(channels * width / 8)) * 8)


class ConvNormAct(nn.Sequential):
    """k x k convolution ('same' padding, optional stride), norm, activation: (B, C_in, H, W) -> (B, C_out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, norm: str, activation: str,
                 stride: int = 1) -> None:
        # A norm's learned shift makes the convolution's bias redundant: keep the bias only without one.
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                      bias=norm == "none"),
            make_norm(norm, out_channels, dims=2),
            make_activation(activation),
        )


class VGG(nn.Module):
    """VGG-``depth``: five stages of 3x3 convolutions, then a GAP or the paper's 4096-4096 classifier.

    ``image_size`` (H, W) decides where max-pools are skipped: a side already 1 pixel long is not pooled,
    so 8x8 digits pass all five stages (8 -> 4 -> 2 -> 1 -> 1 -> 1).
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], out_features: int, depth: int = 16,
                 width: float = 1.0, norm: str = "none", activation: str = "relu", dropout: float = 0.5,
                 head: Literal["gap", "classic"] = "classic") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, (h, w) = in_channels, image_size
        for convs, base in zip(VGG_STAGES[depth], VGG_WIDTHS, strict=True):
            out = scale_channels(base, width)
            for _ in range(convs):
                layers.append(ConvNormAct(channels, out, 3, norm, activation))  # (B, C, H, W) -> (B, out, H, W)
                channels = out
            kernel = (2 if h > 1 else 1, 2 if w > 1 else 1)
            if kernel != (1, 1):
                layers.append(nn.MaxPool2d(kernel))  # (B, C, H, W) -> (B, C, H/2, W/2), per side longer than 1
                h, w = h // kernel[0], w // kernel[1]
        self.features = nn.Sequential(*layers)
        if head == "gap":
            self.head = nn.Sequential(
                GlobalPool("avg"),  # (B, C, h, w) -> (B, C)
                nn.Dropout(dropout),
                nn.Linear(channels, out_features),
            )
        else:
            # The paper's classifier, with its 4096 hidden units scaled by `width` like the convolutions.
            hidden = scale_channels(4096, width)
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d((7, 7)),  # (B, C, h, w) -> (B, C, 7, 7), whatever the input size
                nn.Flatten(),  # -> (B, C*49)
                nn.Linear(channels * 49, hidden), make_activation(activation), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), make_activation(activation), nn.Dropout(dropout),
                nn.Linear(hidden, out_features),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, C, H, W) -> (B, out_features)
