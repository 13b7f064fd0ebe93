"""What a run shows while it trains: a live progress bar in a terminal, one plain line per epoch elsewhere.

A terminal gets Lightning's rich progress bar with each finished epoch's line printed above it (the
history stays on screen). Output that is not a terminal (a pipe, ``| tee log``, nohup, CI and SLURM
logs) cannot show a live bar, so it gets only the lines: one per epoch, never wrapped, written as
each epoch ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import RichProgressBar


def epoch_line(row: dict, seconds: float | None, max_epochs: int | None) -> str:
    """One finished epoch, e.g. ``epoch 3/30  1.2 s  train/loss 0.4311  val/loss 0.3803  val/acc 0.9122``.

    ``row`` is the epoch's metrics.csv row (0-based ``epoch``); people count epochs from 1.
    """
    n = row["epoch"] + 1
    parts = [f"epoch {n}/{max_epochs}" if max_epochs and max_epochs > 0 else f"epoch {n}"]
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    shown = [k for k in ("train/loss",) if k in row] + sorted(k for k in row if k.startswith("val/"))
    parts += [f"{k} {row[k]:.4f}" for k in shown]
    return "  ".join(parts)


class EpochLines(pl.Callback):
    """Hand ``write`` one :func:`epoch_line` as each epoch ends; reads the row the ``recorder`` has just added
    (so it must come after the recorder among the callbacks)."""

    def __init__(self, recorder: Any, write: Callable[[str], None]) -> None:
        self.recorder, self.write = recorder, write

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rows = self.recorder.rows
        if not rows or rows[-1]["epoch"] != trainer.current_epoch:  # nothing recorded for this epoch
            return
        seconds = self.recorder.seconds[-1] if len(self.recorder.seconds) == len(rows) else None
        self.write(epoch_line(rows[-1], seconds, trainer.max_epochs))


def plain_writer(console: Any) -> Callable[[str], None]:
    """Lines to a rich Console that is not a terminal: no markup, no highlighting, never wrapped."""
    def write(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return write


class EpochProgressBar(RichProgressBar):
    """Lightning's rich progress bar, counting epochs from 1 as people do: "Epoch 3/30".

    (Files keep Lightning's 0-based epoch index: metrics.csv, summary.json, checkpoints.)

    Its numbers are read from the device at most every ``metrics_interval`` seconds (and at each epoch's
    end), not after every batch: reading a value back waits for the GPU, which would stall it every step.
    ``loss`` is the mean training loss of the epoch so far, as Keras shows it.
    """

    def __init__(self, *args, metrics_interval: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.metrics_interval = metrics_interval
        self._metrics_at = 0.0

    def print_above(self, line: str) -> None:
        """Print a line above the live bar, where it stays (the finished epochs' history)."""
        from rich import get_console

        console = self.progress.console if self.progress is not None else get_console()
        console.print(line, markup=False, highlight=False)

    def _get_train_description(self, current_epoch: int) -> str:
        total = self.trainer.max_epochs
        return f"Epoch {current_epoch + 1}/{total}" if total and total > 0 else f"Epoch {current_epoch + 1}"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not self.is_disabled and self.train_progress_bar_id is None:  # resumed mid-epoch
            self._initialize_train_progress_bar_id()
        self._update(self.train_progress_bar_id, batch_idx + 1)  # the counter: no device read
        now = time.monotonic()
        if now - self._metrics_at >= self.metrics_interval:
            self._metrics_at = now
            self._update_metrics(trainer, pl_module)
        self.refresh()

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        running = getattr(pl_module, "running_loss", None)
        value = running() if callable(running) else None
        if value is not None:
            items["loss"] = value
        return items
