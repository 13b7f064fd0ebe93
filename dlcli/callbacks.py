"""Training callbacks, by Keras-style names.

``monitor: auto`` and ``mode: auto`` are resolved by the task before a builder is called
(val/acc, max for classification; val/loss, min for regression).
"""

from __future__ import annotations

from typing import Literal

from dlcli.config.types import Count, NonNegativeFloat, NonNegativeInt, PositiveFloat, Prob, ShrinkFactor
from dlcli.errors import DlcliError
from dlcli.registry import CALLBACKS

Mode = Literal["auto", "min", "max"]


@CALLBACKS.register()
def model_checkpoint(run_dir: str, monitor: str = "auto", mode: Mode = "auto", save_last: bool = True,
                     save_top_k: int = 1, save_best_only: bool = True, save_weights_only: bool = False,
                     every_n_epochs: int = 1, tiebreak: str | None = "val/loss"):
    """Keep the best epoch's weights (checkpoints/best.ckpt; top k: best-<epoch>.ckpt) and the latest (last.ckpt).

    ``tiebreak``: an epoch that ties the best monitored value wins when this metric is better (so a
    ``val/acc`` stuck at 1.0 keeps the epoch with the lowest ``val/loss``, not the first). Returns one
    callback, or two when ``save_last``: the best checkpoint first.
    """
    from pytorch_lightning.callbacks import ModelCheckpoint

    from dlcli.nets.callbacks import TieBreakingCheckpoint
    from dlcli.runs.direction import metric_mode

    if not save_best_only:  # Keras' save_best_only=False: keep every epoch's checkpoint
        save_top_k = -1
    if save_top_k == 0 or save_top_k < -1:
        raise DlcliError(f"callbacks.model_checkpoint.save_top_k must be >= 1 or -1 (all), got {save_top_k}")
    name = "best" if save_top_k == 1 else "best-{epoch}"
    best = TieBreakingCheckpoint(dirpath=f"{run_dir}/checkpoints", filename=name,
                                 monitor=monitor, mode=mode, save_top_k=save_top_k, save_weights_only=save_weights_only,
                                 every_n_epochs=every_n_epochs, auto_insert_metric_name=False, tiebreak=tiebreak,
                                 tiebreak_mode=metric_mode(tiebreak) if tiebreak else "min")
    if not save_last:
        return best
    # Lightning's own save_last only rewrites last.ckpt in epochs that also save a best checkpoint;
    # a second, unmonitored checkpoint keeps last.ckpt at the latest epoch, every epoch. It is written at
    # the very end of the epoch, after the epoch's metrics are recorded, so `dlcli resume` goes on from there.
    last = ModelCheckpoint(dirpath=f"{run_dir}/checkpoints", filename="last", monitor=None, save_top_k=1,
                           save_weights_only=save_weights_only, every_n_epochs=1, enable_version_counter=False,
                           save_on_train_epoch_end=True)
    return [best, last]


@CALLBACKS.register()
def early_stopping(run_dir: str, monitor: str = "auto", mode: Mode = "auto", patience: NonNegativeInt | None = None,
                   min_delta: NonNegativeFloat = 0.0):
    """Stop training when the monitored metric has not improved for `patience` epochs (after the trainer's minimum).

    `patience` null: the model family's (`model.patience`, 10 unless its YAML says otherwise)."""
    from dlcli.nets.callbacks import EarlyStoppingAfterMinimum

    return EarlyStoppingAfterMinimum(monitor=monitor, mode=mode, patience=10 if patience is None else patience,
                                     min_delta=min_delta)


@CALLBACKS.register()
def terminate_on_nan(run_dir: str):
    """Stop the run, marked failed, as soon as the training loss is NaN or infinite (names epoch and step)."""
    from dlcli.nets.callbacks import TerminateOnNaN

    return TerminateOnNaN()


@CALLBACKS.register()
def timer(run_dir: str, duration: str = "00:01:00:00"):
    """Stop training after a wall-time budget ("DD:HH:MM:SS"); the best checkpoint so far is still tested."""
    from pytorch_lightning.callbacks import Timer

    return Timer(duration=duration, interval="step")


@CALLBACKS.register()
def ema(run_dir: str, decay: Prob = 0.999):
    """Exponential moving average of the weights, used for validation, checkpoints and the test."""
    from dlcli.nets.callbacks import EMA

    if not 0 < decay < 1:
        raise DlcliError(f"callbacks.ema.decay must be in (0, 1), got {decay}")
    return EMA(decay)


@CALLBACKS.register()
def swa(run_dir: str, swa_lrs: PositiveFloat = 0.01, swa_epoch_start: float = 0.8, annealing_epochs: Count = 5):
    """Stochastic weight averaging over the last epochs (Lightning's StochasticWeightAveraging)."""
    from pytorch_lightning.callbacks import StochasticWeightAveraging

    return StochasticWeightAveraging(swa_lrs=swa_lrs, swa_epoch_start=swa_epoch_start,
                                     annealing_epochs=annealing_epochs)


@CALLBACKS.register()
def reduce_lr_on_plateau(run_dir: str, monitor: str = "val/loss", mode: Mode = "auto",
                         factor: ShrinkFactor = 0.1, patience: NonNegativeInt = 5, min_lr: NonNegativeFloat = 0.0,
                         min_delta: NonNegativeFloat = 1e-4):
    """Multiply the learning rate by `factor` when the monitored metric stalls for `patience` epochs (Keras)."""
    from dlcli.nets.callbacks import ReduceLROnPlateau

    if not 0 < factor < 1:
        raise DlcliError(f"callbacks.reduce_lr_on_plateau.factor must be in (0, 1), got {factor}")
    return ReduceLROnPlateau(monitor, mode, factor, patience, min_lr, min_delta)


@CALLBACKS.register()
def lr_monitor(run_dir: str, logging_interval: Literal["step", "epoch"] = "step"):
    """Log the learning rate to the experiment logger (metrics.csv records it per epoch regardless)."""
    from pytorch_lightning.callbacks import LearningRateMonitor

    return LearningRateMonitor(logging_interval=logging_interval)
