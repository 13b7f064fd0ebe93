"""VGG: stacked 3x3 convolutions in five stages (Simonyan & Zisserman, 2015).

Also holds what the image models (vgg, resnet, inception) share without torch: the activation and
norm names they accept and the check of their input shape and common parameters.
"""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import PositiveFloat, Rate
from dlcli.errors import DlcliError
from dlcli.registry import MODELS

# maxout, softmax and none are left out: maxout halves the channels, softmax and none make no sense inside a CNN.
ConvActivation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus"]
Norm = Literal["none", "batch", "layer", "instance", "group"]


def not_an_image(model: str, in_shape: tuple[int, ...]) -> str:
    """Why an image model cannot take ``in_shape``, and the models that can: 1-D ones for series, mlp for rows."""
    shape = tuple(in_shape)
    series = "model=fcn, resnet1d or inception_time (1-D convolutions over time)"
    if len(shape) == 2:
        fix = f"for sequences (T, F) use {series}, or a recurrent model (lstm, gru)"
    elif len(shape) == 1:
        fix = f"if each row of {shape[0]} values is a time series, use {series}; otherwise model=mlp"
    else:
        fix = "pick an image dataset (e.g. data=digits) or model=mlp"
    return f"model '{model}' needs images (C, H, W), but the data gives samples of shape {shape}: {fix}"


def check_image_model(model: str, in_shape: tuple[int, ...], width: float, dropout: float = 0.0) -> None:
    """Raise a DlcliError naming the fix when ``in_shape`` is not an image (C, H, W) or a parameter is out of range."""
    if len(in_shape) != 3:
        raise DlcliError(not_an_image(model, in_shape))
    if width <= 0:
        raise DlcliError(f"model '{model}': width must be > 0 (1.0 is the paper's channel counts), got {width}")
    if not 0 <= dropout < 1:
        raise DlcliError(f"model '{model}': dropout must be in [0, 1), got {dropout}")


@MODELS.register(inputs="image")
def vgg(in_shape: tuple[int, ...], out_features: int, depth: Literal[11, 13, 16, 19] = 11, width: PositiveFloat = 0.25,
        norm: Norm = "batch", activation: ConvActivation = "relu", dropout: Rate = 0.5,
        head: Literal["gap", "classic"] = "gap"):
    """VGG-11/13/16/19: five stages of 3x3 convolutions and max-pools, then a GAP or the paper's 4096-4096 head."""
    from dlcli.nets.vgg import VGG

    check_image_model("vgg", in_shape, width, dropout)
    channels, height, width_px = in_shape
    return VGG(channels, (height, width_px), out_features, depth=depth, width=width, norm=norm,
               activation=activation, dropout=dropout, head=head)
