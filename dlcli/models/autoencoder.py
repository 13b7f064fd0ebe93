"""Autoencoder: dense or convolutional encoder/decoder around a small latent code."""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import Count, NonNegativeFloat
from dlcli.errors import DlcliError
from dlcli.registry import MODELS

Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus"]


@MODELS.register(inputs="any")
def autoencoder(in_shape: tuple[int, ...], out_features: int, kind: Literal["dense", "conv"] = "dense",
                hidden: list[Count] = (128,), channels: list[Count] = (16, 32), latent: Count = 16,
                activation: Activation = "relu", output_activation: Literal["none", "sigmoid"] = "none",
                noise: NonNegativeFloat = 0.0, task: str = "reconstruction"):
    """Autoencoder (dense or conv): input -> latent code -> reconstruction; noise > 0 makes it denoising.

    For any other task (e.g. multiclass), the encoder gets a head on its latent code instead of the
    decoder: the model a pretrained autoencoder is fine-tuned into (``model.pretrained=RUN``).
    """
    from torch import nn

    from dlcli.blocks import make_activation
    from dlcli.nets.autoencoder import AutoEncoder, EncoderHead, conv_autoencoder, dense_autoencoder

    if latent < 1:
        raise DlcliError(f"model.latent must be at least 1, got {latent}")
    output = nn.Sigmoid() if output_activation == "sigmoid" else nn.Identity()
    if kind == "conv":
        if len(in_shape) != 3:
            raise DlcliError(f"model.kind=conv needs images (C, H, W); this data has samples of shape "
                             f"{tuple(in_shape)}: use model.kind=dense")
        if not channels:
            raise DlcliError("model.channels is empty: list the conv encoder's channels, e.g. [16, 32]")
        encoder, decoder = conv_autoencoder(in_shape, out_features, list(channels), latent, activation, output)
    else:
        encoder, decoder = dense_autoencoder(in_shape, out_features, list(hidden), latent, activation, output)
    if task != "reconstruction":
        return EncoderHead(encoder, nn.Sequential(make_activation(activation), nn.Linear(latent, out_features)), noise)
    return AutoEncoder(encoder, decoder, noise)
