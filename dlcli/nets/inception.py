"""GoogLeNet / Inception v1 (Szegedy et al., 2015): stages of inception modules, four branches concatenated.

The 1x1 convolutions reduce the channels before the costly 3x3 and 5x5 ones, which is what lets the
network be wide at a low cost. Built with a norm after each convolution (the batch-norm variant).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from dlcli.blocks import GlobalPool
from dlcli.nets.vgg import ConvNormAct, scale_channels

# GoogLeNet's modules (Table 1 of the paper), per stage: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj).
# Stage s, module j uses GOOGLENET_STAGES[s][j]; a stage or module past the table repeats its last entry.
GOOGLENET_STAGES = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),  # 3a, 3b
    ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),  # 4a, 4b, 4c
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)),  # 4d, 4e
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),  # 5a, 5b
)


def module_spec(stage: int, index: int) -> tuple[int, ...]:
    """The paper's channels for module ``index`` of ``stage`` (0-based); past the table, its last entries repeat."""
    table = GOOGLENET_STAGES[min(stage, len(GOOGLENET_STAGES) - 1)]
    return table[min(index, len(table) - 1)]


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels: (B, C_in, H, W) -> (B, c1 + c3 + c5 + proj, H, W).

    ``factorize_5x5`` replaces the 5x5 convolution by two 3x3 (same receptive field, fewer weights; Inception v2).
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, proj: int,
                 norm: str, activation: str, factorize_5x5: bool = False) -> None:
        super().__init__()
        self.branch1 = ConvNormAct(in_channels, c1, 1, norm, activation)
        self.branch3 = nn.Sequential(ConvNormAct(in_channels, c3_reduce, 1, norm, activation),
                                     ConvNormAct(c3_reduce, c3, 3, norm, activation))
        wide = ([ConvNormAct(c5_reduce, c5, 3, norm, activation), ConvNormAct(c5, c5, 3, norm, activation)]
                if factorize_5x5 else [ConvNormAct(c5_reduce, c5, 5, norm, activation)])
        self.branch5 = nn.Sequential(ConvNormAct(in_channels, c5_reduce, 1, norm, activation), *wide)
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),  # keeps H, W
                                         ConvNormAct(in_channels, proj, 1, norm, activation))
        self.out_channels = c1 + c3 + c5 + proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        return torch.cat(branches, dim=1)  # 4 x (B, c_i, H, W) -> (B, sum c_i, H, W)


class Inception(nn.Module):
    """A stem, then ``blocks[s]`` inception modules per stage with a stride-2 max-pool between stages, GAP, linear.

    ``stem``: "small" keeps the image size (3x3 conv to 64w, 3x3 conv to 192w), for images of a few dozen
    pixels; "imagenet" is GoogLeNet's (7x7 stride 2, max-pool, 1x1, 3x3, max-pool: /8).
    """

    def __init__(self, in_channels: int, out_features: int, blocks: tuple[int, ...] = (2, 5, 2), width: float = 1.0,
                 stem: Literal["small", "imagenet"] = "imagenet", factorize_5x5: bool = False, norm: str = "batch",
                 activation: str = "relu", dropout: float = 0.4) -> None:
        super().__init__()
        c64, c192 = scale_channels(64, width), scale_channels(192, width)
        if stem == "small":
            self.stem = nn.Sequential(
                ConvNormAct(in_channels, c64, 3, norm, activation),  # (B, C, H, W) -> (B, 64w, H, W)
                ConvNormAct(c64, c192, 3, norm, activation),  # -> (B, 192w, H, W)
            )
        else:
            self.stem = nn.Sequential(
                ConvNormAct(in_channels, c64, 7, norm, activation, stride=2),  # -> (B, 64w, H/2, W/2)
                nn.MaxPool2d(3, stride=2, padding=1),  # -> H/4, W/4
                ConvNormAct(c64, c64, 1, norm, activation),
                ConvNormAct(c64, c192, 3, norm, activation),  # -> (B, 192w, H/4, W/4)
                nn.MaxPool2d(3, stride=2, padding=1),  # -> H/8, W/8
            )
        layers: list[nn.Module] = []
        channels = c192
        for s, count in enumerate(blocks):
            if s > 0:
                # Padding 1 keeps a 1-pixel side at 1, so small images pass any number of stages.
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))  # (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))
            for j in range(count):
                spec = [scale_channels(c, width) for c in module_spec(s, j)]
                module = InceptionModule(channels, *spec, norm=norm, activation=activation,
                                         factorize_5x5=factorize_5x5)
                layers.append(module)
                channels = module.out_channels
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(GlobalPool("avg"), nn.Dropout(dropout), nn.Linear(channels, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))  # (B, C, H, W) -> (B, C', h, w) -> (B, out_features)
