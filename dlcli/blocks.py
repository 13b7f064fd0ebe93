"""Building blocks shared by the models: activations, normalisation, convolution padding, init.

This module imports torch: import it inside a builder, never at the top of a registered module.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from dlcli.errors import DlcliError

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus", "maxout",
               "softmax", "none")
Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus",
                     "maxout", "softmax", "none"]
Norm = Literal["none", "batch", "layer", "instance", "group"]
Init = Literal["default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal",
               "normal"]


class Maxout(nn.Module):
    """Maxout: the maximum over ``pieces`` groups of channels, (B, C*pieces, ...) -> (B, C, ...)."""

    def __init__(self, pieces: int = 2) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c % self.pieces:
            raise ValueError(f"maxout with {self.pieces} pieces needs a channel count divisible by it, got {c}")
        return x.view(x.shape[0], c // self.pieces, self.pieces, *x.shape[2:]).amax(dim=2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def make_activation(name: str, slope: float = 0.01, pieces: int = 2) -> nn.Module:
    """A fresh activation module; ``slope`` is leaky_relu's, ``pieces`` maxout's.

    softmax normalises over dim 1 (classes, or channels).
    """
    factories = {
        "relu": nn.ReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid, "softplus": nn.Softplus, "none": nn.Identity,
        "leaky_relu": lambda: nn.LeakyReLU(slope), "maxout": lambda: Maxout(pieces),
        "softmax": lambda: nn.Softmax(dim=1),
    }
    if name not in factories:
        raise DlcliError(f"unknown activation '{name}'. Available: {', '.join(ACTIVATIONS)}")
    return factories[name]()


def make_norm(kind: str, channels: int, dims: int, groups: int = 8) -> nn.Module:
    """Normalisation over ``channels`` for inputs with ``dims`` spatial dims (0: (B, C); 1: (B, C, L); 2: (B, C, H, W)).

    layer: over all of a sample's features (GroupNorm with one group for conv inputs);
    instance: per sample and channel; group: ``groups`` channel groups per sample.
    """
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return (nn.BatchNorm1d if dims <= 1 else nn.BatchNorm2d)(channels)
    if kind == "layer":
        return nn.LayerNorm(channels) if dims == 0 else nn.GroupNorm(1, channels)
    if kind == "instance":
        if dims == 0:
            raise DlcliError("instance norm needs a spatial or time dimension; use layer or batch norm for vectors")
        return (nn.InstanceNorm1d if dims == 1 else nn.InstanceNorm2d)(channels, affine=True)
    if kind == "group":
        if channels % groups:
            raise DlcliError(f"group norm with {groups} groups needs a channel count divisible by {groups}, "
                             f"got {channels}: change groups")
        return nn.GroupNorm(groups, channels)
    raise DlcliError(f"unknown norm '{kind}'. Available: none, batch, layer, instance, group")


def conv_padding(padding: int | str, kernel_size: int, stride: int = 1) -> int | str:
    """'valid' -> 0; 'same' -> PyTorch's 'same' (stride 1) or kernel_size // 2 (keeps size / stride)."""
    if padding == "valid":
        return 0
    if padding == "same":
        return "same" if stride == 1 else kernel_size // 2
    if isinstance(padding, int) and padding >= 0:
        return padding
    raise DlcliError(f"padding must be 'same', 'valid' or a number >= 0, got {padding!r}")


_INITS = {
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "orthogonal": nn.init.orthogonal_,
    "normal": lambda w: nn.init.normal_(w, std=0.02),
}


def initialize(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise the weights of every linear, convolution and recurrent layer; biases to zero.

    ``default`` keeps PyTorch's own initialisation. Xavier (Glorot) suits tanh/sigmoid, Kaiming (He)
    suits ReLU; ``normal`` draws from N(0, 0.02^2).
    """
    if scheme == "default":
        return model
    if scheme not in _INITS:
        raise DlcliError(f"unknown init '{scheme}'. Available: default, {', '.join(_INITS)}")
    fn = _INITS[scheme]
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
            fn(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.RNNBase,)):
            for name, param in module.named_parameters():
                if "weight" in name:
                    fn(param)
                elif "bias" in name:
                    nn.init.zeros_(param)
    return model


def output_shape(module: nn.Module, in_shape: tuple[int, ...], dtype: Any = torch.float32) -> tuple[int, ...]:
    """The shape (without batch) ``module`` gives for inputs of ``in_shape``, by a dry run on 2 zeros."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, *in_shape, dtype=dtype))
    finally:
        module.train(was_training)
    return tuple(out.shape[1:])


class GlobalPool(nn.Module):
    """Global average or max pooling: (B, C, *spatial) -> (B, C)."""

    def __init__(self, kind: Literal["avg", "max"]) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)  # (B, C, *S) -> (B, C, prod(S))
        return flat.mean(-1) if self.kind == "avg" else flat.amax(-1)

    def extra_repr(self) -> str:
        return self.kind


class Transpose(nn.Module):
    """Swap the two axes of each sample: (B, T, F) -> (B, F, T)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class Recurrent(nn.Module):
    """An RNN / LSTM / GRU over (B, T, F), batch first.

    Returns every step (B, T, H*dirs) with ``return_sequences``, else the last one (B, H*dirs):
    for a bidirectional net, the forward direction's last step and the backward direction's first.
    """

    def __init__(self, kind: Literal["rnn", "lstm", "gru"], in_features: int, units: int, num_layers: int = 1,
                 bidirectional: bool = False, return_sequences: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = cls(in_features, units, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.units, self.bidirectional, self.return_sequences = units, bidirectional, return_sequences

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` (B,): each sequence's real steps (padding at the end): the net runs over those only
        (packed), steps past them come out as zeros, and the last step is each sequence's last real one."""
        if lengths is None:
            out, _ = self.rnn(x)  # (B, T, H*dirs)
            last = out[:, -1]
        else:
            from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
            last = out[torch.arange(len(out), device=out.device), lengths.to(out.device) - 1]  # (B, H*dirs)
        if self.return_sequences:
            return out
        if not self.bidirectional:
            return last
        return torch.cat([last[:, : self.units], out[:, 0, self.units:]], dim=-1)


class Graph(nn.Module):
    """Named nodes evaluated in order: a layer applied to one earlier node, or a merge of several.

    ``order``: [(node, source node or None for a merge)]; ``merges``: node -> (op, [input nodes]).
    """

    def __init__(self, layers: dict[str, nn.Module], order: list[tuple[str, str | None]],
                 merges: dict[str, tuple[str, list[str]]], output: str) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.order, self.merges, self.output = order, merges, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {"input": x}
        for node, source in self.order:
            if source is not None:
                values[node] = self.layers[node](values[source])
                continue
            op, inputs = self.merges[node]
            tensors = [values[i] for i in inputs]
            if op == "concatenate":
                values[node] = torch.cat(tensors, dim=1)  # along channels (images) or features (vectors)
            elif op == "add":
                values[node] = torch.stack(tensors).sum(0)
            else:
                values[node] = torch.stack(tensors).prod(0)
        return values[self.output]
