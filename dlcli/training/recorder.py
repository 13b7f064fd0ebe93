"""Callbacks that keep the run folder current: ``metrics.csv`` every epoch, summary.json's heartbeat."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from dlcli.runs.folder import HEARTBEAT_S, METRICS, SUMMARY, now_iso, read_json, write_csv, write_json


class EpochRecorder(pl.Callback):
    """Record every epoch-level metric and the learning rate; metrics.csv is rewritten atomically each epoch.

    Wall time is kept apart (``seconds``, per epoch, for summary.json), so that two runs with the same
    seed write byte-identical metrics.csv files. The rows travel in every checkpoint: a resumed run
    continues from the checkpoint's rows. An epoch's row is added at its end, before last.ckpt is saved,
    and written to the file just after (at the next epoch's start, or the end of training), so the file
    never shows an epoch that last.ckpt does not hold.
    """

    def __init__(self, run_dir: Path, monitor: str, mode: str, write: bool = True,
                 tiebreak: tuple[str, str] | None = None) -> None:
        self.path = Path(run_dir) / METRICS
        self.write = write  # False in the extra processes of a multi-device run
        self.monitor, self.mode = monitor, mode
        self.tiebreak = tiebreak  # (metric, mode) that ranks epochs tying on the monitor, as the checkpoint does
        self.rows: list[dict] = []
        self.written = 0  # how many rows metrics.csv holds
        self.seconds: list[float] = []  # wall time of each epoch, train and validation
        self.lrs: dict[str, float] = {}
        self.epoch_start = time.perf_counter()

    def flush(self, trainer: pl.Trainer | None = None) -> None:
        """Write metrics.csv if it lacks rows (resumed: the checkpoint's rows replace a killed run's file).

        Only global rank 0 writes: under ``trainer.strategy=ddp_spawn`` every spawned process holds a copy of
        this recorder, the one made by the process that owns the run folder."""
        pending, self.written = self.written != len(self.rows), len(self.rows)  # counted first: a signal may
        if self.write and pending and (trainer is None or trainer.is_global_zero):  # cut the write short,
            write_csv(self.path, self.rows)  # and last.ckpt already holds these rows

    def recover(self, summary_path: Path) -> None:
        """After a fit in spawned processes (``ddp_spawn``), whose copies of this recorder did the recording:
        the rows from the metrics.csv that rank 0 wrote, the epochs' wall times from its summary.json beat."""
        if self.rows or not self.path.is_file():
            return
        from dlcli.runs.table import read_metrics

        self.rows = [{k: int(v) if k in ("epoch", "step") else v for k, v in row.items() if not math.isnan(v)}
                     for row in read_metrics(self.path.parent)]
        self.written = len(self.rows)
        try:
            self.seconds = list(read_json(summary_path).get("epoch_seconds") or [])
        except (OSError, ValueError):
            self.seconds = []
        self.seconds += [math.nan] * (len(self.rows) - len(self.seconds))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.rows:  # resumed
            self.written = -1
            self.flush(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.flush(trainer)  # the previous epoch's row, now that its checkpoint is saved
        self.epoch_start = time.perf_counter()
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
        self.rows.append(row)
        self.seconds.append(round(time.perf_counter() - self.epoch_start, 3))

    def best(self) -> dict | None:
        """The epoch with the best monitored value, as the checkpoint sees it: on ties, the best tie-break
        value, then the first."""
        scored = [r for r in self.rows if isinstance(r.get(self.monitor), float)
                  and not math.isnan(r[self.monitor])]
        if not scored:
            return None
        sign = -1 if self.mode == "max" else 1

        def tie(row: dict) -> float:
            if self.tiebreak is None or not isinstance(row.get(self.tiebreak[0]), float):
                return math.inf
            return (-1 if self.tiebreak[1] == "max" else 1) * row[self.tiebreak[0]]

        row = min(scored, key=lambda r: (sign * r[self.monitor], tie(r), r["epoch"]))
        return {"monitor": self.monitor, "mode": self.mode, "value": row[self.monitor], "epoch": row["epoch"]}

    def at_epoch(self, epoch: int) -> dict | None:
        """The monitored value of ``epoch`` (e.g. the tested checkpoint's), in :meth:`best`'s form; None when
        that epoch has no row or no value of the monitor."""
        row = next((r for r in self.rows if r["epoch"] == epoch), None)
        if row is None or not isinstance(row.get(self.monitor), float):
            return None
        return {"monitor": self.monitor, "mode": self.mode, "value": row[self.monitor], "epoch": epoch}

    def state_dict(self) -> dict:
        return {"rows": [dict(r) for r in self.rows], "seconds": list(self.seconds)}

    def load_state_dict(self, state: dict) -> None:
        self.rows = [dict(r) for r in state["rows"]]
        self.seconds = list(state.get("seconds", []))


class SummaryBeat:
    """One heartbeat of a run: summary.json rewritten with the time now and the epochs ``recorder`` has written.

    A class, not a closure: it travels with the callbacks into the processes of ``trainer.strategy=ddp_spawn``.
    """

    def __init__(self, run_dir: Path, summary: dict[str, Any], recorder: EpochRecorder) -> None:
        self.path, self.summary, self.recorder = Path(run_dir) / SUMMARY, summary, recorder

    def __call__(self) -> None:
        recorder = self.recorder
        self.summary.update(heartbeat=now_iso(), epochs=recorder.written,
                            epoch_seconds=recorder.seconds[:recorder.written])
        write_json(self.path, self.summary)


class Heartbeat(pl.Callback):
    """Call ``beat`` (which refreshes summary.json's heartbeat) at every epoch's start (just after metrics.csv
    got the previous epoch's row) and at the end of training, and after a batch of training, validation or
    testing when ``interval`` seconds have passed: a run that stops beating is dead. Only global rank 0 beats."""

    def __init__(self, beat: Callable[[], None], interval: float = HEARTBEAT_S) -> None:
        self.beat, self.interval = beat, interval
        self.last = time.monotonic()

    def _maybe(self, trainer: pl.Trainer) -> None:
        if time.monotonic() - self.last >= self.interval:
            self._now(trainer)

    def _now(self, trainer: pl.Trainer) -> None:
        if trainer.is_global_zero:
            self.last = time.monotonic()
            self.beat()

    def on_train_batch_end(self, trainer: pl.Trainer, *args, **kwargs) -> None:
        self._maybe(trainer)

    def on_validation_batch_end(self, trainer: pl.Trainer, *args, **kwargs) -> None:
        self._maybe(trainer)

    def on_test_batch_end(self, trainer: pl.Trainer, *args, **kwargs) -> None:
        self._maybe(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._now(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._now(trainer)
