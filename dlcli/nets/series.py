"""1-D convolutional networks for time-series classification and regression: FCN, ResNet1D, InceptionTime.

All three read (B, T, F) sequences (or (B, T) univariate rows, read as (B, T, 1)), convolve over time
with 'same' padding, pool over time with a global average and end in one linear layer.

Padding-aware: given ``lengths`` (B,), the real steps of sequences padded at the end, padded steps
count for nothing. They are set to 0 between layers (so a convolution near a sequence's end sees the
zeros that 'same' padding would put there), left out of batch-norm statistics (the norm runs on the
real steps only), set to -inf before max-pooling, and left out of the final average. A padded
sequence therefore gives the output of the same sequence unpadded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def step_mask(lengths: torch.Tensor | None, steps: int, device: torch.device) -> torch.Tensor | None:
    """(B, T) True at each sequence's real steps, or None when every step is real."""
    if lengths is None:
        return None
    return torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]


def masked(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """(B, C, T) with its padded steps set to 0 (whatever they held, -inf included)."""
    return x if keep is None else x.masked_fill(~keep[:, None, :], 0.0)


def norm_real_steps(norm: nn.Module, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Batch norm of (B, C, T) over the real steps only, so that padding never enters its statistics.

    The real steps are gathered into (N_real, C) rows, normalised by the same BatchNorm1d (which takes
    (N, C) as well as (N, C, T)), and put back; padded steps come out as 0.
    """
    if keep is None:
        return norm(x)
    steps = x.transpose(1, 2)  # (B, C, T) -> (B, T, C)
    out = steps.new_zeros(steps.shape)
    out[keep] = norm(steps[keep])  # (N_real, C)
    return out.transpose(1, 2)  # (B, T, C) -> (B, C, T)


def masked_mean(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Global average pooling over time, over the real steps only: (B, C, T) -> (B, C)."""
    if keep is None:
        return x.mean(dim=-1)
    k = keep[:, None, :].to(x.dtype)  # (B, 1, T)
    return (x * k).sum(dim=-1) / k.sum(dim=-1)


class SameConv1d(nn.Conv1d):
    """A convolution that keeps T: zeros padded on both sides, one more on the right for an even kernel (as Keras).

    Padded here rather than with ``padding="same"``, which warns for even kernels (FCN's 8) on every run.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        # no bias: the batch norm after each convolution shifts anyway
        super().__init__(in_channels, out_channels, kernel_size, bias=False)
        self.pads = ((kernel_size - 1) // 2, kernel_size // 2)  # (left, right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))  # (B, C_in, T) -> (B, C_in, T + k - 1) -> (B, C_out, T)


def conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv1d:
    return SameConv1d(in_channels, out_channels, kernel_size) if kernel_size > 1 else \
        nn.Conv1d(in_channels, out_channels, 1, bias=False)


class ConvBlock(nn.Module):
    """conv -> batch norm -> ReLU (ReLU optional): (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, act: bool = True) -> None:
        super().__init__()
        self.conv = conv(in_channels, out_channels, kernel_size)
        self.norm = nn.BatchNorm1d(out_channels)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        return masked(self.act(norm_real_steps(self.norm, self.conv(x), keep)), keep)


class SeriesNet(nn.Module):
    """What the three share: (B, T, F) or (B, T) in, the body's (B, C, T) features averaged over time, linear out."""

    def __init__(self, body: nn.ModuleList, channels: int, out_features: int) -> None:
        super().__init__()
        self.body = body
        self.linear = nn.Linear(channels, out_features)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` (B,): real steps of sequences padded at the end; padded steps count for nothing."""
        if x.dim() == 2:  # univariate rows (B, T) -> (B, T, 1)
            x = x.unsqueeze(-1)
        keep = step_mask(lengths, x.shape[1], x.device)
        h = masked(x.transpose(1, 2), keep)  # (B, T, F) -> (B, F, T), padding at 0
        for block in self.body:
            h = block(h, keep)  # (B, C, T)
        return self.linear(masked_mean(h, keep))  # (B, C, T) -> (B, C) -> (B, out_features)


def fcn(in_features: int, out_features: int, filters: tuple[int, ...], kernel_sizes: tuple[int, ...]) -> SeriesNet:
    """Fully convolutional network (Wang, Yan & Oates, 2017): conv-BN-ReLU blocks, GAP, linear."""
    blocks, channels = [], in_features
    for width, k in zip(filters, kernel_sizes, strict=True):
        blocks.append(ConvBlock(channels, width, k))
        channels = width
    return SeriesNet(nn.ModuleList(blocks), channels, out_features)


class ResidualBlock1d(nn.Module):
    """Convolutions of ``kernel_sizes`` (the last without ReLU) plus a shortcut, then ReLU: (B, C_in, T) -> (B, C, T).

    The shortcut is a 1x1 convolution and batch norm when the channel count changes, and a batch norm
    alone when it does not (as in Fawaz et al.'s reference code).
    """

    def __init__(self, in_channels: int, channels: int, kernel_sizes: tuple[int, ...]) -> None:
        super().__init__()
        convs, c = [], in_channels
        for i, k in enumerate(kernel_sizes):
            convs.append(ConvBlock(c, channels, k, act=i < len(kernel_sizes) - 1))
            c = channels
        self.convs = nn.ModuleList(convs)
        self.shortcut_conv = conv(in_channels, channels, 1) if in_channels != channels else None
        self.shortcut_norm = nn.BatchNorm1d(channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for block in self.convs:
            h = block(h, keep)
        short = x if self.shortcut_conv is None else self.shortcut_conv(x)
        return masked(self.act(h + norm_real_steps(self.shortcut_norm, short, keep)), keep)


def resnet1d(in_features: int, out_features: int, filters: tuple[int, ...],
             kernel_sizes: tuple[int, ...]) -> SeriesNet:
    """ResNet for time series (Wang et al., 2017; Fawaz et al., 2019): residual blocks, GAP, linear."""
    blocks, channels = [], in_features
    for width in filters:
        blocks.append(ResidualBlock1d(channels, width, tuple(kernel_sizes)))
        channels = width
    return SeriesNet(nn.ModuleList(blocks), channels, out_features)


class InceptionModule(nn.Module):
    """Bottleneck 1x1 -> parallel convolutions of ``kernel_sizes``, beside max-pool -> 1x1; concatenated, BN, ReLU.

    (B, C_in, T) -> (B, filters * (len(kernel_sizes) + 1), T). The bottleneck is skipped for a
    single input channel (nothing to reduce), as in the reference code.
    """

    def __init__(self, in_channels: int, filters: int, bottleneck: int, kernel_sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.bottleneck = conv(in_channels, bottleneck, 1) if bottleneck > 0 and in_channels > 1 else None
        c = bottleneck if self.bottleneck is not None else in_channels
        self.convs = nn.ModuleList(conv(c, filters, k) for k in kernel_sizes)
        self.pool = nn.MaxPool1d(3, stride=1, padding=1)
        self.pool_conv = conv(in_channels, filters, 1)
        self.out_channels = filters * (len(kernel_sizes) + 1)
        self.norm = nn.BatchNorm1d(self.out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        b = x if self.bottleneck is None else masked(self.bottleneck(x), keep)
        # padded steps at -inf for the max-pool, as its own padding is: the last real step's window ignores them
        pooled = self.pool(x if keep is None else x.masked_fill(~keep[:, None, :], float("-inf")))
        branches = [c(b) for c in self.convs] + [self.pool_conv(masked(pooled, keep))]  # each (B, filters, T)
        return masked(self.act(norm_real_steps(self.norm, torch.cat(branches, dim=1), keep)), keep)


class InceptionBlock(nn.Module):
    """``modules`` inception modules, with a residual shortcut (1x1 conv + BN) around them, then ReLU (or none)."""

    def __init__(self, in_channels: int, modules: int, filters: int, bottleneck: int,
                 kernel_sizes: tuple[int, ...], residual: bool) -> None:
        super().__init__()
        layers, c = [], in_channels
        for _ in range(modules):
            layers.append(InceptionModule(c, filters, bottleneck, kernel_sizes))
            c = layers[-1].out_channels
        self.inceptions = nn.ModuleList(layers)
        self.out_channels = c
        self.shortcut = nn.ModuleDict({"conv": conv(in_channels, c, 1), "norm": nn.BatchNorm1d(c)}) \
            if residual else None
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for module in self.inceptions:
            h = module(h, keep)
        if self.shortcut is None:
            return h
        short = norm_real_steps(self.shortcut["norm"], self.shortcut["conv"](x), keep)
        return masked(self.act(h + short), keep)


def inception_time(in_features: int, out_features: int, depth: int, filters: int, bottleneck: int,
                   kernel_sizes: tuple[int, ...], residual: bool) -> SeriesNet:
    """One InceptionTime network (Ismail Fawaz et al., 2020): inception modules, a shortcut every 3, GAP, linear."""
    blocks, channels = [], in_features
    for start in range(0, depth, 3):  # a residual connection around every 3 modules; a last shorter group has none
        n = min(3, depth - start)
        blocks.append(InceptionBlock(channels, n, filters, bottleneck, tuple(kernel_sizes), residual and n == 3))
        channels = blocks[-1].out_channels
    return SeriesNet(nn.ModuleList(blocks), channels, out_features)
