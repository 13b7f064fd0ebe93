"""Inception (GoogLeNet): modules of parallel 1x1, 3x3, 5x5 and pooling branches (Szegedy et al., 2015)."""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import PositiveFloat, Rate
from dlcli.errors import DlcliError
from dlcli.models.vgg import ConvActivation, Norm, check_image_model
from dlcli.registry import MODELS


@MODELS.register(inputs="image")
def inception(in_shape: tuple[int, ...], out_features: int, blocks: list[int] = (2, 2), width: PositiveFloat = 0.25,
              stem: Literal["small", "imagenet"] = "small", factorize_5x5: bool = False, norm: Norm = "batch",
              activation: ConvActivation = "relu", dropout: Rate = 0.4):
    """GoogLeNet-style network: stages of inception modules (1x1, 3x3, 5x5, pool branches), GAP, linear."""
    from dlcli.nets.inception import Inception

    check_image_model("inception", in_shape, width, dropout)
    if not blocks or any(b < 1 for b in blocks):
        raise DlcliError(f"model 'inception': blocks lists the modules per stage, each >= 1 (GoogLeNet: [2, 5, 2]), "
                         f"got {list(blocks)}")
    return Inception(in_shape[0], out_features, blocks=tuple(blocks), width=width, stem=stem,
                     factorize_5x5=factorize_5x5, norm=norm, activation=activation, dropout=dropout)
