"""Perceptron and multi-layer perceptron."""

from __future__ import annotations

import math
from typing import Literal

from dlcli.config.types import Count, Rate
from dlcli.registry import MODELS

Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus"]


def make_activation(name: str):
    """A fresh activation module by name."""
    from torch import nn

    return {
        "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU,
        "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus,
    }[name]()


@MODELS.register(inputs="any")
def perceptron(in_shape: tuple[int, ...], out_features: int, bias: bool = True):
    """Single-layer perceptron: one linear layer, inputs to outputs."""
    from torch import nn

    # (B, *in_shape) -> (B, prod(in_shape)) -> (B, out_features)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), out_features, bias=bias))


@MODELS.register(inputs="any")
def mlp(in_shape: tuple[int, ...], out_features: int, hidden: list[Count] = (256,),
        activation: Activation = "relu", dropout: Rate = 0.1,
        norm: Literal["none", "batch", "layer"] = "none"):
    """Multi-layer perceptron: hidden Linear layers with activation, optional norm and dropout."""
    from torch import nn

    layers: list[nn.Module] = [nn.Flatten()]  # (B, *in_shape) -> (B, prod(in_shape))
    width = math.prod(in_shape)
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(h))
        elif norm == "layer":
            layers.append(nn.LayerNorm(h))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_features))  # (B, hidden[-1]) -> (B, out_features)
    return nn.Sequential(*layers)

