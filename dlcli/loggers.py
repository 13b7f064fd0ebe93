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


@LOGGERS.register()
def mlflow(run_dir: str, config: dict | None = None, tracking_uri: str | None = None,
           experiment_name: str = "dlcli"):
    """MLflow: the flattened config as params, metrics per epoch; a local store in <run>/mlruns (needs mlflow)."""
    import importlib.util
    import os
    from pathlib import Path

    if importlib.util.find_spec("mlflow") is None:
        raise DlcliError("logger=mlflow needs the mlflow package: pip install 'dlcli[mlflow]' (mlflow-skinny)")
    from pytorch_lightning.loggers import MLFlowLogger

    from dlcli.runs.table import flatten

    uri = tracking_uri or Path(run_dir, "mlruns").as_uri()
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 keeps its file store only on request; a local folder needs no server and no database
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    logger = MLFlowLogger(experiment_name=experiment_name, run_name=Path(run_dir).name, tracking_uri=uri)
    if config is not None:
        logger.log_hyperparams(flatten(config))
    return logger
