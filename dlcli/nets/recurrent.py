"""A recurrent network with a choice of output head, behind the `rnn`, `lstm` and `gru` models."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from dlcli.blocks import Recurrent

Head = Literal["last", "mean", "max", "many_to_many"]


class RecurrentNet(nn.Module):
    """RNN / LSTM / GRU layers over (B, T, F), then a linear head.

    Many-to-one heads (``last``, ``mean``, ``max``) reduce the per-step outputs over time to one
    vector per sample, then map it to ``out_features``: (B, T, F) -> (B, out_features).
    ``many_to_many`` maps every step to ``out_features`` values and flattens time into the
    features, so that the model still returns one row per sample: (B, T, F) -> (B, T * out_features).
    """

    def __init__(self, kind: Literal["rnn", "lstm", "gru"], in_features: int, hidden_size: int, out_features: int,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 head: Head = "last") -> None:
        super().__init__()
        self.head = head
        # `last` uses Recurrent's own last step, which for a bidirectional net takes the backward
        # direction at t=0 (where it has read the whole sequence), not at t=T-1 (where it has read one step)
        self.recurrent = Recurrent(kind, in_features, hidden_size, num_layers, bidirectional,
                                   return_sequences=head != "last", dropout=dropout)
        self.linear = nn.Linear(hidden_size * (2 if bidirectional else 1), out_features)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` (B,): real steps of sequences padded at the end; padded steps count for nothing."""
        h = self.recurrent(x, lengths)  # (B, T, H*dirs), or (B, H*dirs) for `last`
        keep = None if lengths is None or self.head in ("last", "many_to_many") else \
            (torch.arange(h.shape[1], device=h.device) < lengths.to(h.device)[:, None]).unsqueeze(-1)  # (B, T, 1)
        if self.head == "mean":
            # (B, T, H*dirs) -> (B, H*dirs), over the real steps only
            h = h.mean(dim=1) if keep is None else (h * keep).sum(dim=1) / keep.sum(dim=1)
        elif self.head == "max":
            # (B, T, H*dirs) -> (B, H*dirs), over the real steps only
            h = (h if keep is None else h.masked_fill(~keep, float("-inf"))).amax(dim=1)
        out = self.linear(h)  # (B, out_features), or (B, T, k) for many_to_many
        return out.flatten(1) if self.head == "many_to_many" else out  # (B, T, k) -> (B, T*k)

    def extra_repr(self) -> str:
        return f"head={self.head}"
