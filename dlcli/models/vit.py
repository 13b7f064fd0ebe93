"""Vision Transformer: an image cut into patches, each patch a token, into a Transformer encoder."""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import Count, Rate
from dlcli.errors import DlcliError
from dlcli.models.transformer import check_encoder
from dlcli.models.vgg import not_an_image
from dlcli.registry import MODELS


@MODELS.register(inputs="image")
def vit(in_shape: tuple[int, ...], out_features: int, patch_size: Count = 4, d_model: Count = 64, num_heads: Count = 4,
        num_layers: Count = 2, dim_feedforward: Count = 128, dropout: Rate = 0.1,
        pool: Literal["mean", "cls"] = "mean"):
    """Vision Transformer (ViT): patch embedding, learned positions, pre-norm encoder, cls or mean pooling, linear.

    Works on any channel count and image size: when H or W is not a multiple of ``patch_size``, the image is
    padded with zeros on the right and bottom up to the next multiple. The encoder is pre-norm with GELU, as
    in the paper.
    """
    from dlcli.nets.transformer import VisionTransformer

    if len(in_shape) != 3:
        raise DlcliError(not_an_image("vit", in_shape))
    if patch_size < 1:
        raise DlcliError(f"model 'vit': patch_size must be at least 1, got {patch_size}")
    check_encoder("vit", d_model, num_heads, num_layers, dim_feedforward, dropout)
    return VisionTransformer(tuple(in_shape), out_features, patch_size, d_model, pool, num_heads=num_heads,
                             num_layers=num_layers, dim_feedforward=dim_feedforward, dropout=dropout,
                             activation="gelu", norm_first=True)
