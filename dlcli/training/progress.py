"""The terminal progress bar."""

from __future__ import annotations

from pytorch_lightning.callbacks import RichProgressBar


class EpochProgressBar(RichProgressBar):
    """Lightning's rich progress bar, counting epochs from 1 as people do: "Epoch 3/30".

    (Files keep Lightning's 0-based epoch index: metrics.csv, summary.json, checkpoints.)
    """

    def _get_train_description(self, current_epoch: int) -> str:
        total = self.trainer.max_epochs
        return f"Epoch {current_epoch + 1}/{total}" if total and total > 0 else f"Epoch {current_epoch + 1}"
