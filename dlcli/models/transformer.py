"""A Transformer encoder over token ids (text) or float sequences (T, F), pooled over time, then a linear head."""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import Count, Rate
from dlcli.errors import DlcliError
from dlcli.registry import MODELS


def check_encoder(model: str, d_model: int, num_heads: int, num_layers: int, dim_feedforward: int,
                  dropout: float) -> None:
    """Refuse encoder sizes PyTorch would reject later with a less helpful message (shared with `vit`)."""
    if min(d_model, num_heads, num_layers, dim_feedforward) < 1:
        raise DlcliError(f"model '{model}': d_model, num_heads, num_layers and dim_feedforward must be at least 1, "
                         f"got {d_model}, {num_heads}, {num_layers} and {dim_feedforward}")
    if d_model % num_heads:
        raise DlcliError(f"model '{model}': d_model ({d_model}) must be divisible by num_heads ({num_heads}): "
                         "each head attends over d_model / num_heads features")
    if not 0 <= dropout < 1:
        raise DlcliError(f"model '{model}': dropout must be in [0, 1), got {dropout}")


@MODELS.register(inputs="tokens")
def transformer(in_shape: tuple[int, ...], out_features: int, vocab_size: int | None = None, d_model: Count = 64,
                num_heads: Count = 2, num_layers: Count = 2, dim_feedforward: Count = 128, dropout: Rate = 0.1,
                activation: Literal["relu", "gelu"] = "gelu", norm_first: bool = True,
                positional: Literal["sinusoidal", "learned"] = "sinusoidal",
                pool: Literal["mean", "cls", "max"] = "mean"):
    """Transformer encoder over token ids (padding masked) or float sequences (T, F), pooled, then a linear head.

    With ``vocab_size`` (token data) the input is (T,) integer ids, 0 being padding, which is masked out of
    attention and pooling; without it the input is (T, F) floats, projected to ``d_model`` by a linear layer.
    Sequences may be shorter than the T the model was built for, never longer.
    """
    from dlcli.nets.transformer import TokenTransformer

    if vocab_size is not None and len(in_shape) != 1:
        raise DlcliError(f"model 'transformer' reads token ids (T,) when the data has a vocabulary, "
                         f"got samples of shape {tuple(in_shape)}")
    if vocab_size is None and len(in_shape) != 2:
        raise DlcliError(f"model 'transformer' needs token ids (T,) from a text dataset, or float sequences (T, F); "
                         f"got samples of shape {tuple(in_shape)}. Use a text or sequence dataset (data=sine, ...)")
    check_encoder("transformer", d_model, num_heads, num_layers, dim_feedforward, dropout)
    return TokenTransformer(in_shape[0], out_features, vocab_size, None if vocab_size else in_shape[1], d_model,
                            positional, pool, num_heads=num_heads, num_layers=num_layers,
                            dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                            norm_first=norm_first)
