"""Training callbacks, by Keras-style names.

``monitor: auto`` and ``mode: auto`` are resolved by the task before a builder is called
(val/acc, max for classification; val/loss, min for regression).
"""

from __future__ import annotations

from typing import Literal

from dlcli.registry import CALLBACKS

Mode = Literal["auto", "min", "max"]


@CALLBACKS.register()
def model_checkpoint(run_dir: str, monitor: str = "auto", mode: Mode = "auto", save_last: bool = True):
    """Keep the best epoch's weights (checkpoints/best.ckpt) and the latest (last.ckpt)."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=f"{run_dir}/checkpoints", filename="best", monitor=monitor, mode=mode,
                           save_top_k=1, save_last=save_last, auto_insert_metric_name=False)
    ckpt.CHECKPOINT_NAME_LAST = "last"
    return ckpt


@CALLBACKS.register()
def early_stopping(run_dir: str, monitor: str = "auto", mode: Mode = "auto", patience: int = 10,
                   min_delta: float = 0.0):
    """Stop training when the monitored metric has not improved for `patience` epochs."""
    from pytorch_lightning.callbacks import EarlyStopping

    return EarlyStopping(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta)
