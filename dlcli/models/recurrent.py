"""Recurrent models over sequences (T, F): simple RNN, LSTM and GRU, with a choice of output head."""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import Count, Rate
from dlcli.errors import DlcliError
from dlcli.registry import MODELS

Head = Literal["last", "mean", "max", "many_to_many"]


def _recurrent_net(kind: str, in_shape: tuple[int, ...], out_features: int, hidden_size: int, num_layers: int,
                   bidirectional: bool, dropout: float, head: str):
    """The one implementation behind `rnn`, `lstm` and `gru`: checks, then a RecurrentNet."""
    from dlcli.nets.recurrent import RecurrentNet

    if len(in_shape) != 2:
        raise DlcliError(f"model '{kind}' needs sequences (T, F) as input, got samples of shape {tuple(in_shape)}. "
                         "Use a sequence dataset (data=sine, data=waveforms, data=timeseries_csv)")
    if hidden_size < 1 or num_layers < 1:
        raise DlcliError(f"model '{kind}': hidden_size and num_layers must be at least 1, "
                         f"got {hidden_size} and {num_layers}")
    if not 0 <= dropout < 1:
        raise DlcliError(f"model '{kind}': dropout must be in [0, 1), got {dropout}")
    steps, features = in_shape
    per_step = out_features
    if head == "many_to_many":
        # one prediction per input step: the task's outputs are T groups of k values, flattened
        if out_features % steps:
            raise DlcliError(
                f"model '{kind}' with head=many_to_many predicts k values at each of the {steps} input steps, "
                f"so the task's output count ({out_features}) must be a multiple of {steps}. Use a many-to-one head "
                f"(model.head=last, mean or max), or targets with {steps} x k values per sample")
        per_step = out_features // steps
    return RecurrentNet(kind, features, hidden_size, per_step, num_layers, bidirectional, dropout, head)


@MODELS.register(inputs="sequence")
def rnn(in_shape: tuple[int, ...], out_features: int, hidden_size: Count = 64, num_layers: Count = 1,
        bidirectional: bool = False, dropout: Rate = 0.0, head: Head = "last"):
    """Simple (Elman, tanh) RNN over a sequence (T, F), then a linear head on the last, mean or max step."""
    return _recurrent_net("rnn", in_shape, out_features, hidden_size, num_layers, bidirectional, dropout, head)


@MODELS.register(inputs="sequence")
def lstm(in_shape: tuple[int, ...], out_features: int, hidden_size: Count = 64, num_layers: Count = 1,
         bidirectional: bool = False, dropout: Rate = 0.0, head: Head = "last"):
    """LSTM over a sequence (T, F), then a linear head on the last, mean or max step (or on every step)."""
    return _recurrent_net("lstm", in_shape, out_features, hidden_size, num_layers, bidirectional, dropout, head)


@MODELS.register(inputs="sequence")
def gru(in_shape: tuple[int, ...], out_features: int, hidden_size: Count = 64, num_layers: Count = 1,
        bidirectional: bool = False, dropout: Rate = 0.0, head: Head = "last"):
    """GRU over a sequence (T, F), then a linear head on the last, mean or max step (or on every step)."""
    return _recurrent_net("gru", in_shape, out_features, hidden_size, num_layers, bidirectional, dropout, head)
