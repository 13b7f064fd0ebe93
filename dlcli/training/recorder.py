"""A callback that writes ``metrics.csv``: one row per epoch, rewritten atomically."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytorch_lightning as pl

from dlcli.runs.folder import METRICS, write_csv


class EpochRecorder(pl.Callback):
    """Record every epoch-level metric, the learning rate and the elapsed time."""

    def __init__(self, run_dir: Path, monitor: str, mode: str, write: bool = True) -> None:
        self.path = Path(run_dir) / METRICS
        self.write = write  # False in the extra processes of a multi-device run
        self.monitor, self.mode = monitor, mode
        self.rows: list[dict] = []
        self.lrs: dict[str, float] = {}
        self.start = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the rate this epoch trains with: epoch-interval schedulers step before on_train_epoch_end
        self.lrs = {}
        for i, opt in enumerate(trainer.optimizers):
            for j, group in enumerate(opt.param_groups):
                self.lrs["lr" if i == j == 0 else f"lr/{i}.{j}"] = float(group["lr"])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row: dict = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(("train/", "val/")) and value.numel() == 1:
                row[key] = float(value)
        row.update(self.lrs)
        row["time_s"] = round(time.perf_counter() - self.start, 3)
        self.rows.append(row)
        if self.write:
            write_csv(self.path, self.rows)

    def best(self) -> dict | None:
        """The epoch with the best monitored value (the first, on ties), as the checkpoint sees it."""
        scored = [r for r in self.rows if isinstance(r.get(self.monitor), float)
                  and not math.isnan(r[self.monitor])]
        if not scored:
            return None
        sign = -1 if self.mode == "max" else 1
        row = min(scored, key=lambda r: (sign * r[self.monitor], r["epoch"]))  # first best on ties
        return {"monitor": self.monitor, "mode": self.mode, "value": row[self.monitor], "epoch": row["epoch"]}
