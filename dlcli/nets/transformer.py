"""Transformer encoders (Vaswani et al., 2017) behind the `transformer` (tokens, sequences) and `vit` (images) models.

Both models turn their input into a sequence of ``d_model``-wide vectors, then share :class:`EncoderHead`:
positions, an optional learned [CLS] token, PyTorch's ``nn.TransformerEncoder``, a final norm, pooling over
the sequence and a linear head.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Pool = Literal["mean", "cls", "max"]


class Positions(nn.Module):
    """Adds a position code to each step: (B, T, D) -> (B, T, D), for sequences of at most ``max_len`` steps.

    sinusoidal: the fixed sines and cosines of the original paper (no weights to learn);
    learned: one trained vector per position (BERT, ViT), initialised small, N(0, 0.02^2).
    """

    def __init__(self, kind: Literal["sinusoidal", "learned"], max_len: int, d_model: int) -> None:
        super().__init__()
        self.kind, self.max_len = kind, max_len
        if kind == "learned":
            self.table = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            position = torch.arange(max_len).unsqueeze(1)  # (T, 1)
            # wavelengths grow geometrically from 2*pi to 10000*2*pi across the feature pairs
            freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (ceil(D/2),)
            table = torch.zeros(max_len, d_model)
            table[:, 0::2] = torch.sin(position * freq)
            table[:, 1::2] = torch.cos(position * freq[: d_model // 2])  # an odd D has one sine more than cosines
            self.register_buffer("table", table, persistent=False)  # recomputed at load: not in checkpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        if steps > self.max_len:
            raise ValueError(f"a sequence of {steps} steps is longer than the {self.max_len} this model was built for")
        return x + self.table[:steps]  # (B, T, D) + (T, D)

    def extra_repr(self) -> str:
        return f"{self.kind}, max_len={self.max_len}"


class EncoderHead(nn.Module):
    """Positions, [CLS], Transformer encoder layers, final norm, pooling, linear: (B, T, D) -> (B, out_features).

    ``keep`` (B, T), True at real steps, masks padding out of attention and out of mean/max pooling, so padded
    steps change nothing. The [CLS] token (``pool="cls"``) is prepended after the positions are added: it has
    no position of its own, it is one learned vector wherever it sits.
    """

    def __init__(self, d_model: int, out_features: int, max_len: int, num_heads: int, num_layers: int,
                 dim_feedforward: int, dropout: float, activation: str, norm_first: bool,
                 positional: Literal["sinusoidal", "learned"], pool: Pool) -> None:
        super().__init__()
        self.pool = pool
        self.positions = Positions(positional, max_len, d_model)
        self.dropout = nn.Dropout(dropout)
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02) if pool == "cls" else None
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout, activation,
                                           batch_first=True, norm_first=norm_first)
        # The final norm matters for pre-norm stacks, whose residual stream is never normalised otherwise.
        # Nested tensors (a speed-up for padded batches) are off: they do not support pre-norm, and warn.
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(d_model, out_features)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = self.dropout(self.positions(x))  # (B, T, D)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, T, D) -> (B, 1 + T, D)
            if keep is not None:
                keep = F.pad(keep, (1, 0), value=True)  # the [CLS] step is always real
        if keep is not None:
            # a row of padding only would leave attention nothing to attend to (NaN): let it see its padding
            keep = keep | ~keep.any(dim=1, keepdim=True)
        h = self.encoder(x, src_key_padding_mask=None if keep is None else ~keep)  # (B, T', D)
        if self.pool == "cls":
            h = h[:, 0]  # (B, T', D) -> (B, D)
        elif keep is None:
            h = h.mean(dim=1) if self.pool == "mean" else h.amax(dim=1)  # (B, T, D) -> (B, D)
        elif self.pool == "mean":
            weights = keep.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
            h = (h * weights).sum(dim=1) / weights.sum(dim=1)  # mean over the real steps only
        else:
            h = h.masked_fill(~keep.unsqueeze(-1), float("-inf")).amax(dim=1)  # max over the real steps only
        return self.head(h)  # (B, D) -> (B, out_features)

    def extra_repr(self) -> str:
        return f"pool={self.pool}"


class TokenTransformer(nn.Module):
    """A Transformer encoder classifier over token ids (B, T), 0 being padding, or over float sequences (B, T, F).

    Token ids go through an embedding, float steps through a linear layer, to (B, T, d_model); padding
    (id 0) is masked. Float sequences are masked past their ``lengths`` when given (variable-length data).
    """

    def __init__(self, steps: int, out_features: int, vocab_size: int | None, in_features: int | None,
                 d_model: int, positional: Literal["sinusoidal", "learned"], pool: Pool, **encoder) -> None:
        super().__init__()
        if vocab_size is not None:
            self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0)  # (B, T) -> (B, T, D)
        else:
            self.embed = nn.Linear(in_features, d_model)  # (B, T, F) -> (B, T, D)
        self.tokens = vocab_size is not None
        # token embeddings start at N(0, 1): scaling by sqrt(D) keeps them on a par with the position codes
        self.scale = math.sqrt(d_model) if self.tokens and positional == "sinusoidal" else 1.0
        self.body = EncoderHead(d_model, out_features, steps, positional=positional, pool=pool, **encoder)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` (B,): real steps of float sequences padded at the end (token ids mark padding as 0)."""
        keep = x != 0 if self.tokens else None  # (B, T): True at real tokens
        if lengths is not None and not self.tokens:
            keep = torch.arange(x.shape[1], device=x.device) < lengths.to(x.device)[:, None]  # (B, T)
        return self.body(self.embed(x) * self.scale, keep)


class VisionTransformer(nn.Module):
    """ViT (Dosovitskiy et al., 2021): non-overlapping ``patch_size`` patches, each a token, into an encoder.

    (B, C, H, W) -> pad right/bottom to multiples of ``patch_size`` -> (B, D, H/p, W/p) -> (B, H/p * W/p, D).
    """

    def __init__(self, in_shape: tuple[int, int, int], out_features: int, patch_size: int, d_model: int,
                 pool: Pool, **encoder) -> None:
        super().__init__()
        channels, height, width = in_shape
        self.patch_size = patch_size
        self.patches = nn.Conv2d(channels, d_model, kernel_size=patch_size, stride=patch_size)
        grid = -(-height // patch_size) * -(-width // patch_size)  # patches after padding (ceil division)
        self.body = EncoderHead(d_model, out_features, grid, positional="learned", pool=pool, **encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p))  # zeros on the right and bottom edges
        x = self.patches(x)  # (B, C, H, W) -> (B, D, H/p, W/p)
        return self.body(x.flatten(2).transpose(1, 2))  # -> (B, D, N) -> (B, N, D)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}"
