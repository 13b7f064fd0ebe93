"""ResNet: residual blocks whose shortcut adds the input back (He et al., 2016)."""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import PositiveFloat
from dlcli.models.vgg import ConvActivation, Norm, check_image_model
from dlcli.registry import MODELS


@MODELS.register(inputs="image")
def resnet(in_shape: tuple[int, ...], out_features: int, depth: Literal[10, 18, 34, 50] = 18,
           width: PositiveFloat = 0.25, small_input: bool = True, norm: Norm = "batch",
           activation: ConvActivation = "relu", zero_init_residual: bool = False):
    """ResNet-10/18/34 (basic blocks) or -50 (bottlenecks), with a small-image or ImageNet stem."""
    from dlcli.nets.resnet import ResNet

    check_image_model("resnet", in_shape, width)
    return ResNet(in_shape[0], out_features, depth=depth, width=width, small_input=small_input, norm=norm,
                  activation=activation, zero_init_residual=zero_init_residual)
