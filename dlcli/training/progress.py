"""The terminal progress bar."""

from __future__ import annotations

import time

from pytorch_lightning.callbacks import RichProgressBar


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
