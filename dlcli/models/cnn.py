"""A configurable convolutional network: conv blocks, then the last map flattened (or pooled) into a dense head."""

from __future__ import annotations

import math
from typing import Literal

from dlcli.config.types import Count, Rate
from dlcli.errors import DlcliError
from dlcli.models.vgg import not_an_image
from dlcli.registry import MODELS

Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus", "maxout"]
Norm = Literal["none", "batch", "layer", "instance", "group"]


@MODELS.register(inputs="image")
def cnn(in_shape: tuple[int, ...], out_features: int, channels: list[Count] = (32, 64), convs_per_block: Count = 1,
        kernel_size: Count = 3, stride: Count = 1, padding: int | Literal["same", "valid"] = "same",
        pool: Literal["max", "avg", "none"] = "max", pool_size: Count = 2, norm: Norm = "batch",
        activation: Activation = "relu", dropout: Rate = 0.0,
        head: Literal["auto", "flatten", "gap"] = "auto", head_features: Count = 4096, hidden: list[Count] = (),
        head_dropout: Rate = 0.5):
    """Convolutional network: blocks of [conv -> norm -> activation] x n -> pool -> dropout, then a dense head."""
    from torch import nn

    from dlcli.blocks import conv_padding, make_activation, make_norm, output_shape

    if len(in_shape) != 3:
        raise DlcliError(not_an_image("cnn", in_shape))
    if head_features < 1:
        raise DlcliError(f"model 'cnn': head_features must be at least 1 (the most features head=auto flattens "
                         f"into the dense head), got {head_features}")
    layers: list[nn.Module] = []
    shape = tuple(in_shape)
    for width in channels:
        for i in range(convs_per_block):
            s = stride if i == 0 else 1
            layers += [nn.Conv2d(shape[0], width, kernel_size, stride=s, padding=conv_padding(padding, kernel_size, s),
                                 bias=norm == "none"),
                       make_norm(norm, width, dims=2), make_activation(activation)]
            try:
                shape = output_shape(nn.Sequential(*layers), in_shape)
            except RuntimeError:  # a kernel larger than what is left of the image
                shape = (width, 0, 0)
            if min(shape[1:]) < 1:
                raise DlcliError(f"model 'cnn': the image {tuple(in_shape)} is too small for {len(channels)} blocks "
                                 f"of {convs_per_block} {kernel_size}x{kernel_size} convolution(s) with padding "
                                 f"{padding!r}: use fewer blocks, padding: same, or larger images")
        if pool != "none" and min(shape[1:]) >= pool_size:  # a 1x1 map has nothing left to pool
            layers.append((nn.MaxPool2d if pool == "max" else nn.AvgPool2d)(pool_size))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        shape = output_shape(nn.Sequential(*layers), in_shape)
    head_layers, width = head_pooling(head, shape, head_features)
    layers += head_layers
    for h in hidden:
        layers += [nn.Linear(width, h), make_activation(activation)]
        if head_dropout > 0:
            layers.append(nn.Dropout(head_dropout))
        width = h
    if head_dropout > 0 and not hidden:
        layers.append(nn.Dropout(head_dropout))
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def head_grid(shape: tuple[int, int, int], head_features: int) -> tuple[int, int] | None:
    """head=auto: the (h, w) grid a (C, H, W) map is average-pooled to before flattening; None: flatten as it is.

    A grid of about the map's aspect ratio with C*h*w <= head_features, grown until no row or column more
    fits (1x1, global average pooling, when the channels alone exceed the bound), so the dense head's
    weights stay bounded for big images.
    """
    c, h, w = shape
    cells = head_features // c
    if cells >= h * w:
        return None
    f = math.sqrt(cells / (h * w))  # h*f * w*f = cells
    gh, gw = (max(1, min(n, math.floor(n * f + 1e-9))) for n in (h, w))  # 1e-9: 56 * (1/7) is 8, not 7.999...
    while gh * gw > max(cells, 1):  # the rounding may land one step over the bound
        gh, gw = (gh - 1, gw) if gh >= gw else (gh, gw - 1)
    while True:  # and may leave room: add rows or columns (to the side pooled more) while they fit
        room = [(g / n, side) for side, (g, n) in enumerate(((gh, h), (gw, w)))
                if g < n and (gh + (side == 0)) * (gw + (side == 1)) <= cells]
        if not room:
            return gh, gw
        side = min(room)[1]
        gh, gw = gh + (side == 0), gw + (side == 1)


def head_pooling(head: str, shape: tuple[int, int, int], head_features: int):
    """The layers between the last block's (C, H, W) map and the dense head, and the width they give."""
    from torch import nn

    from dlcli.blocks import GlobalPool

    c, h, w = shape
    if head == "gap":
        return [GlobalPool("avg")], c  # (B, C, H, W) -> (B, C)
    grid = head_grid(shape, head_features) if head == "auto" else None
    if grid is None:
        return [nn.Flatten()], c * h * w  # (B, C, H, W) -> (B, C*H*W)
    # (B, C, H, W) -> (B, C, h, w) -> (B, C*h*w): VGG's adaptive pooling before its flatten, sized to the bound
    return [nn.AdaptiveAvgPool2d(grid), nn.Flatten()], c * grid[0] * grid[1]
