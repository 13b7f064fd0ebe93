"""Build a run's data and model from a validated config; shared by `train` and `model summary`."""

from __future__ import annotations

from typing import Any

from dlcli.config.schema import DataConfig, ModelConfig
from dlcli.config.validate import dataclass_params
from dlcli.data.prepare import Prepared
from dlcli.registry import DATASETS, LOSSES, MODELS


def load_data(cfg: dict) -> Prepared:
    """Load the dataset, decide the task (with the loss), split and scale it (fitted on train only)."""
    from dlcli.data.prepare import prepare

    data_cfg = cfg["data"]
    common = set(dataclass_params(DataConfig))
    table = DATASETS.get(data_cfg["name"]).build({k: v for k, v in data_cfg.items() if k not in common},
                                                 seed=cfg["seed"])
    loss = LOSSES.get(cfg["loss"]["name"])
    return prepare(table, data_cfg, task=cfg["task"], loss_name=loss.name, loss_tasks=loss.meta["tasks"],
                   seed=cfg["seed"])


def build_model(cfg: dict, prepared: Prepared) -> Any:
    """The configured model for the data's input shape and the task's output width, initialised."""
    from dlcli.blocks import initialize

    common = set(dataclass_params(ModelConfig))
    model = MODELS.get(cfg["model"]["name"]).build(
        {k: v for k, v in cfg["model"].items() if k not in common},
        in_shape=prepared.in_shape, out_features=prepared.out_features, task=prepared.task,
        vocab_size=prepared.vocab_size)
    return initialize(model, cfg["model"]["init"])
