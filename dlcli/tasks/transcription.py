"""Transcription: a frame sequence -> a symbol sequence, unaligned (CTC)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcli.errors import DataError
from dlcli.metrics import TRANSCRIPTION
from dlcli.registry import TASKS
from dlcli.tasks.base import Task


def _per_step(out: Any, x: Any) -> Any:
    return out.view(out.shape[0], x.shape[1], -1)  # (B, T*C) -> (B, T, C): a score per step and class


@TASKS.register()
class transcription(Task):  # noqa: N801 - the registry name is the class name
    """Frames -> a symbol sequence, unaligned: a score per step for the CTC blank and each symbol; CER."""

    name = "transcription"
    auto_kind = "transcription"
    target_dtype, classes = "int64", "symbols"
    metric_names = TRANSCRIPTION
    default_metrics = ("cer",)
    monitor = ("val/cer", "min")
    default_loss = "ctc"
    gives = "per-step symbol probabilities (softmax), (batch, steps, symbols); symbol 0 is the CTC blank"

    def targets(self, table, data_name):
        if table.y.ndim != 2 or not table.class_names:
            raise DataError(f"task=transcription needs symbol sequences (N, L) and the symbols' names; data "
                            f"'{data_name}' has targets of shape {table.y.shape}")
        return table.y.astype(np.int64), ["<blank>", *table.class_names]

    def out_features(self, in_shape, y, class_names, embedding_dim):
        return in_shape[0] * len(class_names)  # per time step, a score for blank and each symbol

    def metric(self, name: str, num_classes: int | None) -> Any:
        if name == "cer":
            from torchmetrics.text import CharErrorRate

            return CharErrorRate()
        return super().metric(name, num_classes)

    def loss(self, loss_fn, out, x, y, y_mean, y_std):
        return loss_fn(_per_step(out, x), y)

    def predictions(self, out, x, y_mean, y_std):
        return _per_step(out, x).softmax(-1)  # (B, T, C): probabilities per step

    def update_metrics(self, metrics, confusion, out, x, y, y_mean, y_std):
        """Greedy CTC decoding, compared as strings of symbol ids (one character per symbol)."""
        from dlcli.nets.losses import greedy_decode

        def text(ids: list[int]) -> str:  # one character per symbol id, whatever the alphabet
            return "".join(chr(0x4E00 + i) for i in ids)

        preds = [text(seq) for seq in greedy_decode(_per_step(out, x))]
        metrics.update(preds, [text([i for i in row if i > 0]) for row in y.tolist()])

    def eval_targets(self, y, class_names, pre, name):
        if ["<blank>", *(class_names or [])] != list(pre["classes"]):
            raise DataError(f"{name} has symbols {class_names}; the run was trained on {pre['classes'][1:]}")
        return y.astype(np.int64)
