"""Experiment loggers, in addition to the run folder's own metrics.csv and summary.json."""

from __future__ import annotations

from dlcli.errors import DlcliError
from dlcli.registry import LOGGERS


@LOGGERS.register()
def none(run_dir: str):
    """No extra logger."""
    return None


@LOGGERS.register()
def csv(run_dir: str):
    """Lightning's CSVLogger: every logged value per step, in <run>/logs."""
    from pytorch_lightning.loggers import CSVLogger

    return CSVLogger(save_dir=run_dir, name="logs", version="")


@LOGGERS.register()
def tensorboard(run_dir: str):
    """TensorBoard event files in <run>/logs (needs the tensorboard package)."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
        raise DlcliError("logger=tensorboard needs the tensorboard package: pip install tensorboard")
    from pytorch_lightning.loggers import TensorBoardLogger

    return TensorBoardLogger(save_dir=run_dir, name="logs", version="")
