"""Layers for the `sequential` and `graph` models, by Keras-like names.

A layer builder takes ``in_shape`` (one sample's shape, inferred from the previous layer)
and its own parameters, and returns a module. Images are (C, H, W), sequences (T, F).
"""

from __future__ import annotations

import math
from typing import Literal

from dlcli.config.types import Count, Rate
from dlcli.errors import DlcliError
from dlcli.registry import LAYERS

Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus",
                     "maxout", "softmax", "none"]
Padding = int | Literal["same", "valid"]


def _need(in_shape: tuple[int, ...], ranks: tuple[int, ...], layer: str, what: str) -> None:
    if len(in_shape) not in ranks:
        raise DlcliError(f"layer '{layer}' needs {what}, got input of shape {tuple(in_shape)}")


def _with_activation(module, activation: str, slope: float, pieces: int):
    from torch import nn

    from dlcli.blocks import make_activation

    return module if activation == "none" else nn.Sequential(module, make_activation(activation, slope, pieces))


@LAYERS.register(inputs="any")
def dense(in_shape: tuple[int, ...], units: Count | None = None, activation: Activation = "none", bias: bool = True,
          slope: float = 0.01, pieces: int = 2):
    """Fully connected layer on the last axis (Keras Dense); units left out: the task's output width."""
    from torch import nn

    if units is None:
        raise DlcliError("dense: 'units' may be left out only in the model's last layer")
    return _with_activation(nn.Linear(in_shape[-1], units, bias=bias), activation, slope, pieces)


def _conv(dims: int, in_shape, filters, kernel_size, stride, padding, activation, bias, dilation, groups, slope,
          pieces):
    from torch import nn

    from dlcli.blocks import conv_padding

    conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(
        in_shape[0], filters, kernel_size, stride=stride, padding=conv_padding(padding, kernel_size, stride),
        dilation=dilation, groups=groups, bias=bias)
    return _with_activation(conv, activation, slope, pieces)


@LAYERS.register(inputs="image")
def conv2d(in_shape: tuple[int, ...], filters: Count = 32, kernel_size: Count = 3, stride: Count = 1,
           padding: Padding = "same", activation: Activation = "none", bias: bool = True, dilation: Count = 1,
           groups: Count = 1, slope: float = 0.01, pieces: int = 2):
    """2-D convolution over (C, H, W): filters, kernel size, stride, padding ('same', 'valid' or a number)."""
    _need(in_shape, (3,), "conv2d", "an image (C, H, W)")
    return _conv(2, in_shape, filters, kernel_size, stride, padding, activation, bias, dilation, groups, slope,
                 pieces)


@LAYERS.register(inputs="channels_first_sequence")
def conv1d(in_shape: tuple[int, ...], filters: Count = 32, kernel_size: Count = 3, stride: Count = 1,
           padding: Padding = "same", activation: Activation = "none", bias: bool = True, dilation: Count = 1,
           groups: Count = 1, slope: float = 0.01, pieces: int = 2):
    """1-D convolution over (C, L) (channels first; put `transpose` before it for (T, F) sequences)."""
    _need(in_shape, (2,), "conv1d", "a (C, L) input")
    return _conv(1, in_shape, filters, kernel_size, stride, padding, activation, bias, dilation, groups, slope,
                 pieces)


def _pool(kind: str, in_shape, pool_size: int, stride: int | None, padding: int):
    from torch import nn

    _need(in_shape, (2, 3), f"{kind}_pool", "an image (C, H, W) or a (C, L) input")
    cls = {("max", 2): nn.MaxPool1d, ("max", 3): nn.MaxPool2d, ("avg", 2): nn.AvgPool1d,
           ("avg", 3): nn.AvgPool2d}[(kind, len(in_shape))]
    return cls(pool_size, stride=stride or pool_size, padding=padding)


@LAYERS.register(inputs="image")
def max_pool(in_shape: tuple[int, ...], pool_size: Count = 2, stride: Count | None = None, padding: int = 0):
    """Max pooling over windows of pool_size (stride defaults to pool_size)."""
    return _pool("max", in_shape, pool_size, stride, padding)


@LAYERS.register(inputs="image")
def avg_pool(in_shape: tuple[int, ...], pool_size: Count = 2, stride: Count | None = None, padding: int = 0):
    """Average pooling over windows of pool_size (stride defaults to pool_size)."""
    return _pool("avg", in_shape, pool_size, stride, padding)


@LAYERS.register(inputs="image")
def global_avg_pool(in_shape: tuple[int, ...]):
    """Global average pooling: the mean of each channel, (C, H, W) -> (C,)."""
    from dlcli.blocks import GlobalPool

    _need(in_shape, (2, 3), "global_avg_pool", "an image (C, H, W) or a (C, L) input")
    return GlobalPool("avg")


@LAYERS.register(inputs="image")
def global_max_pool(in_shape: tuple[int, ...]):
    """Global max pooling: the maximum of each channel, (C, H, W) -> (C,)."""
    from dlcli.blocks import GlobalPool

    _need(in_shape, (2, 3), "global_max_pool", "an image (C, H, W) or a (C, L) input")
    return GlobalPool("max")


@LAYERS.register(inputs="any")
def flatten(in_shape: tuple[int, ...]):
    """Flatten each sample to a vector: (C, H, W) -> (C*H*W,)."""
    from torch import nn

    return nn.Flatten()


@LAYERS.register(inputs="any")
def dropout(in_shape: tuple[int, ...], rate: Rate = 0.5):
    """Zero each value with probability `rate` while training (and scale the rest)."""
    from torch import nn

    if not 0 <= rate < 1:
        raise DlcliError(f"dropout rate must be in [0, 1), got {rate}")
    return nn.Dropout(rate)


@LAYERS.register(inputs="any")
def activation(in_shape: tuple[int, ...], name: Activation = "relu", slope: float = 0.01, pieces: int = 2):
    """An activation on its own: relu, leaky_relu (slope), elu, selu, gelu, silu, tanh, sigmoid, ..."""
    from dlcli.blocks import make_activation

    return make_activation(name, slope, pieces)


def _norm(kind: str, in_shape, groups: Count = 8):
    from dlcli.blocks import make_norm

    return make_norm(kind, in_shape[0] if len(in_shape) > 1 else in_shape[-1], len(in_shape) - 1, groups)


@LAYERS.register(inputs="any")
def batch_norm(in_shape: tuple[int, ...]):
    """Batch normalisation over the channels (or features of a vector)."""
    return _norm("batch", in_shape)


@LAYERS.register(inputs="any")
def layer_norm(in_shape: tuple[int, ...]):
    """Layer normalisation over each sample's features."""
    return _norm("layer", in_shape)


@LAYERS.register(inputs="image")
def instance_norm(in_shape: tuple[int, ...]):
    """Instance normalisation: per sample and channel, over the spatial dimensions."""
    return _norm("instance", in_shape)


@LAYERS.register(inputs="image")
def group_norm(in_shape: tuple[int, ...], groups: Count = 8):
    """Group normalisation: per sample, over `groups` groups of channels."""
    return _norm("group", in_shape, groups)


@LAYERS.register(inputs="any")
def reshape(in_shape: tuple[int, ...], shape: list[int] = (-1,)):
    """Reshape each sample, e.g. [1, 28, 28]; one entry may be -1."""
    from torch import nn

    target = list(shape)
    known = math.prod(s for s in target if s != -1)
    total = math.prod(in_shape)
    if target.count(-1) > 1 or (-1 not in target and known != total) or total % known:
        raise DlcliError(f"reshape: cannot reshape {tuple(in_shape)} ({total} values) to {tuple(target)}")
    return nn.Unflatten(1, tuple(s if s != -1 else total // known for s in target)) if len(in_shape) == 1 else \
        nn.Sequential(nn.Flatten(), nn.Unflatten(1, tuple(s if s != -1 else total // known for s in target)))


@LAYERS.register(inputs="sequence")
def transpose(in_shape: tuple[int, ...]):
    """Swap the two axes of a 2-D sample: (T, F) <-> (F, T), e.g. before conv1d on a sequence."""
    from dlcli.blocks import Transpose

    _need(in_shape, (2,), "transpose", "a 2-D sample such as a sequence (T, F)")
    return Transpose()


@LAYERS.register(inputs="tokens")
def embedding(in_shape: tuple[int, ...], vocab_size: int | None = None, dim: Count = 64):
    """Token ids (T,) -> vectors (T, dim); the vocabulary size comes from the data."""
    from torch import nn

    if vocab_size is None:
        raise DlcliError("embedding needs token data (text): this dataset has no vocabulary")
    return nn.Embedding(vocab_size, dim, padding_idx=0)


def _recurrent(kind: str, in_shape, units: int, num_layers: int, bidirectional: bool, return_sequences: bool,
               dropout: float):
    from dlcli.blocks import Recurrent

    _need(in_shape, (2,), kind, "a sequence (T, F)")
    return Recurrent(kind, in_shape[-1], units, num_layers, bidirectional, return_sequences, dropout)


@LAYERS.register(inputs="sequence")
def lstm(in_shape: tuple[int, ...], units: Count = 64, num_layers: Count = 1, bidirectional: bool = False,
         return_sequences: bool = False, dropout: Rate = 0.0):
    """LSTM over a sequence (T, F): all steps (return_sequences) or the last one."""
    return _recurrent("lstm", in_shape, units, num_layers, bidirectional, return_sequences, dropout)


@LAYERS.register(inputs="sequence")
def gru(in_shape: tuple[int, ...], units: Count = 64, num_layers: Count = 1, bidirectional: bool = False,
        return_sequences: bool = False, dropout: Rate = 0.0):
    """GRU over a sequence (T, F): all steps (return_sequences) or the last one."""
    return _recurrent("gru", in_shape, units, num_layers, bidirectional, return_sequences, dropout)


@LAYERS.register(inputs="sequence")
def rnn(in_shape: tuple[int, ...], units: Count = 64, num_layers: Count = 1, bidirectional: bool = False,
        return_sequences: bool = False, dropout: Rate = 0.0):
    """Simple (Elman, tanh) RNN over a sequence (T, F): all steps (return_sequences) or the last one."""
    return _recurrent("rnn", in_shape, units, num_layers, bidirectional, return_sequences, dropout)
