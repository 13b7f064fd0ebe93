"""ResNet (He et al., 2016): stages of residual blocks, ``out = act(F(x) + shortcut(x))``.

Follows torchvision's layout (the stride sits in the 3x3 convolution of a bottleneck, "ResNet v1.5"),
so width 1.0 with batch norm has the reference parameter counts.
"""

from __future__ import annotations

import torch
from torch import nn

from dlcli.blocks import GlobalPool, make_activation, make_norm
from dlcli.nets.vgg import ConvNormAct, scale_channels

# Blocks per stage, and whether the block is a bottleneck (1x1 -> 3x3 -> 1x1, 4x wider output).
RESNET_LAYOUTS = {10: ((1, 1, 1, 1), False), 18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False),
                  50: ((3, 4, 6, 3), True)}
RESNET_WIDTHS = (64, 128, 256, 512)


def _conv(in_channels: int, out_channels: int, kernel_size: int, norm: str, stride: int = 1) -> nn.Conv2d:
    # No bias when a norm follows: its shift does the same job.
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                     bias=norm == "none")


class ResidualBlock(nn.Module):
    """A basic (two 3x3) or bottleneck (1x1 -> 3x3 -> 1x1) block: (B, C_in, H, W) -> (B, planes*expansion, H/s, W/s).

    The shortcut is the identity when the shape is kept, else a 1x1 convolution (with ``stride``) and a norm.
    """

    def __init__(self, in_channels: int, planes: int, stride: int, bottleneck: bool, norm: str,
                 activation: str) -> None:
        super().__init__()
        self.out_channels = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.residual = nn.Sequential(
                _conv(in_channels, planes, 1, norm), make_norm(norm, planes, 2), make_activation(activation),
                _conv(planes, planes, 3, norm, stride), make_norm(norm, planes, 2), make_activation(activation),
                _conv(planes, self.out_channels, 1, norm), make_norm(norm, self.out_channels, 2),
            )
        else:
            self.residual = nn.Sequential(
                _conv(in_channels, planes, 3, norm, stride), make_norm(norm, planes, 2), make_activation(activation),
                _conv(planes, planes, 3, norm), make_norm(norm, planes, 2),
            )
        if stride == 1 and in_channels == self.out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(_conv(in_channels, self.out_channels, 1, norm, stride),
                                          make_norm(norm, self.out_channels, 2))
        self.act = make_activation(activation)

    def zero_init_last(self) -> None:
        """Make the residual branch output zero, so the block starts as act(shortcut(x)) (Goyal et al., 2017).

        Zeroes the last norm's scale, or the last convolution when there is no norm.
        """
        last_norm, last_conv = self.residual[-1], self.residual[-2]
        if getattr(last_norm, "weight", None) is not None:
            nn.init.zeros_(last_norm.weight)
        else:
            nn.init.zeros_(last_conv.weight)
            if last_conv.bias is not None:
                nn.init.zeros_(last_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.residual(x) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-``depth``: a stem, four stages of residual blocks (the last three halve the image), GAP, linear.

    ``small_input``: the CIFAR-style stem (one 3x3 convolution, stride 1, no max-pool) that keeps small
    images' few pixels; otherwise the ImageNet stem (7x7 stride 2, then a 3x3 stride-2 max-pool: /4).
    """

    def __init__(self, in_channels: int, out_features: int, depth: int = 18, width: float = 1.0,
                 small_input: bool = False, norm: str = "batch", activation: str = "relu",
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        blocks, bottleneck = RESNET_LAYOUTS[depth]
        stem_channels = scale_channels(64, width)
        if small_input:
            self.stem = ConvNormAct(in_channels, stem_channels, 3, norm, activation)  # (B, C, H, W) -> (B, 64w, H, W)
        else:
            self.stem = nn.Sequential(
                ConvNormAct(in_channels, stem_channels, 7, norm, activation, stride=2),  # -> (B, 64w, H/2, W/2)
                nn.MaxPool2d(3, stride=2, padding=1),  # -> (B, 64w, H/4, W/4)
            )
        stages: list[nn.Module] = []
        channels = stem_channels
        for i, (count, base) in enumerate(zip(blocks, RESNET_WIDTHS, strict=True)):
            planes = scale_channels(base, width)
            stage = []
            for j in range(count):
                # The first block of stages 2..4 halves the image: (B, C, H, W) -> (B, C', H/2, W/2).
                block = ResidualBlock(channels, planes, 2 if i > 0 and j == 0 else 1, bottleneck, norm, activation)
                if zero_init_residual:
                    block.zero_init_last()
                stage.append(block)
                channels = block.out_channels
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool = GlobalPool("avg")  # (B, C, h, w) -> (B, C)
        self.fc = nn.Linear(channels, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))))  # (B, C, H, W) -> (B, out_features)
