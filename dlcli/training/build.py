"""Build a run's data and model from a validated config; shared by `train` and `model summary`."""

from __future__ import annotations

from typing import Any

from dlcli.config.schema import ModelConfig
from dlcli.config.validate import dataclass_params
from dlcli.data.prepare import Prepared
from dlcli.errors import DlcliError
from dlcli.registry import LOSSES, MODELS
from dlcli.tasks import loss_tasks


def load_data(cfg: dict, fitted: dict | None = None) -> Prepared:
    """Load the dataset, decide the task (with the loss), split and scale it (fitted on train only).

    ``fitted``: a run's own saved preprocessing, re-applied when the run is resumed.
    An ImageNet backbone (``model.pretrained``: imagenet, or torchvision/timm weights) first completes
    ``cfg["data"]`` in place with the inputs it expects (see :func:`dlcli.training.imagenet.imagenet_inputs`),
    so the run folder's config.yaml records what the run used.
    """
    from dlcli.data.fingerprint import fingerprint
    from dlcli.data.prepare import prepare
    from dlcli.data.splits import cv_group, load_table, use_recorded, warn_unseen_classes

    data_cfg = cfg["data"]
    loss = LOSSES.get(cfg["loss"]["name"])
    # a model that reads series (fcn, resnet1d, inception_time) has rows of T values read as (T, 1) sequences
    series = MODELS.get(cfg["model"]["name"]).meta.get("inputs") == "series"
    cv = cfg.get("cv")  # a cross-validation fold: its split (dlcli/cv/split.py), groups read from cv.group
    group = cv_group(cfg)
    if fitted is not None:
        table = load_table(data_cfg, cfg["seed"], group=group)  # with data.val_path / data.test_path's rows, marked
        use_recorded(table, fitted)  # resuming: the split the run recorded, row for row
        return prepare(table, data_cfg, task=cfg["task"], loss_name=loss.name, loss_tasks=loss_tasks(loss.name),
                       seed=cfg["seed"], embedding_dim=cfg["loss"].get("embedding_dim", 32), fitted=fitted,
                       cv=cv)
    pretrained, source, given = None, None, None
    if cfg["model"].get("pretrained"):
        from dlcli.training.transfer import resolve_source

        pretrained = resolve_source(cfg["model"], cfg["output_dir"])  # imagenet: fetched now, before the data
        if pretrained.imagenet:
            from dlcli.training.imagenet import imagenet_inputs

            given = imagenet_inputs(data_cfg)
            data_cfg.update(given)
    table = load_table(data_cfg, cfg["seed"], group=group)
    prints = fingerprint(data_cfg)
    if pretrained is not None and not pretrained.imagenet:  # fine-tuning: the earlier run's scaling and
        from dlcli.training.transfer import pretrained_preprocessing  # vocabulary are re-applied

        source = pretrained_preprocessing(pretrained, prints, cfg["model"].get("allow_changed_data", False))
    prepared = prepare(table, data_cfg, task=cfg["task"], loss_name=loss.name, loss_tasks=loss_tasks(loss.name),
                       seed=cfg["seed"], embedding_dim=cfg["loss"].get("embedding_dim", 32),
                       fitted=source[1] if source else None, series=series, cv=cv)
    warn_unseen_classes(prepared, table)
    prepared.preprocessing["data_fingerprint"] = prints
    if source:
        prepared.preprocessing["reused_from"] = str(source[0])
    if given is not None:
        prepared.preprocessing["backbone_inputs"] = given  # the data keys set for the ImageNet backbone
    return prepared


def build_model(cfg: dict, prepared: Prepared) -> Any:
    """The configured model for the data's input shape and the task's output width, initialised."""
    from dlcli.blocks import initialize

    common = set(dataclass_params(ModelConfig))
    model = MODELS.get(cfg["model"]["name"]).build(
        {k: v for k, v in cfg["model"].items() if k not in common},
        in_shape=prepared.in_shape, out_features=prepared.out_features, task=prepared.task,
        vocab_size=prepared.vocab_size)
    initialize(model, cfg["model"]["init"])
    if cfg["model"].get("channels_last"):  # NHWC weights: faster convolutions on tensor-core GPUs
        import torch

        model.to(memory_format=torch.channels_last)
    model.dlcli_pretrained = None
    if cfg["model"].get("pretrained"):
        from dlcli.training.transfer import load_pretrained

        model.dlcli_pretrained = load_pretrained(model, cfg["model"], cfg["output_dir"])
    if (cfg.get("finetune") or {}).get("freeze"):
        from dlcli.training.transfer import freeze

        freeze(model, cfg["finetune"]["freeze"])
    return model


def component_params(node: dict) -> dict:
    """A component node's own parameters: everything but its registry name."""
    return {k: v for k, v in node.items() if k != "name"}


def build_run(cfg: dict, fitted: dict | None = None) -> tuple[Prepared, Any, Any]:
    """(prepared data, its DataModule, the task's LightningModule) for a validated config.

    ``fitted`` (resuming): the run's own saved preprocessing is re-applied, and no pretrained weights are
    loaded (the checkpoint holds the weights).
    """
    import math
    from functools import partial

    from dlcli.data.stream import num_workers
    from dlcli.optim import build_optimizer
    from dlcli.registry import AUGMENTATIONS
    from dlcli.schedulers import build_scheduler
    from dlcli.training.module import ArrayDataModule, TaskModule, eval_batch_size

    prepared = load_data(cfg, fitted)
    data_cfg = cfg["data"]
    datamodule = ArrayDataModule(prepared, data_cfg["batch_size"], num_workers(data_cfg, prepared),
                                 eval_batch_size(data_cfg, prepared))
    model = build_model({**cfg, "model": {**cfg["model"], "pretrained": None}} if fitted else cfg, prepared)
    loss = LOSSES.get(cfg["loss"]["name"]).build(component_params(cfg["loss"]))
    weights = cfg["loss"].get("class_weights")
    if weights is not None and len(weights) != (prepared.num_classes or 0):
        raise DlcliError(f"loss.class_weights has {len(weights)} values, but data '{cfg['data']['name']}' has "
                         f"{prepared.num_classes or 'no'} classes ({', '.join(prepared.class_names or [])}): give "
                         "one weight per class, in that order")
    n_train = len(prepared.splits["train"][0])
    steps_per_epoch = math.ceil(math.ceil(n_train / data_cfg["batch_size"])
                                / cfg["trainer"]["accumulate_grad_batches"])
    module = TaskModule(
        model, loss, prepared.task, prepared.num_classes,
        # partials of module-level functions, not closures: the module is pickled into each process of
        # trainer.strategy=ddp_spawn (and of a DataLoader's worker processes)
        make_optimizer=partial(build_optimizer, cfg["optimizer"]),
        make_scheduler=partial(build_scheduler, cfg["scheduler"], max_epochs=cfg["trainer"]["max_epochs"],
                               steps_per_epoch=steps_per_epoch),
        augment=AUGMENTATIONS.get(cfg["augmentation"]["name"]).build(
            component_params(cfg["augmentation"]), in_shape=prepared.in_shape, num_classes=prepared.num_classes,
            task=prepared.task, vocab=prepared.preprocessing.get("vocab"), text=prepared.preprocessing.get("text")),
        target_scaling=prepared.preprocessing.get("target_scaling"),
        has_anomalies=bool(prepared.preprocessing.get("anomalies")),
        l1=cfg["regularization"]["l1"], metrics=cfg["metrics"],
        clip_val=cfg["trainer"]["gradient_clip_val"], clip_algorithm=cfg["trainer"]["gradient_clip_algorithm"],
        accumulate=cfg["trainer"]["accumulate_grad_batches"], channels_last=cfg["model"].get("channels_last", False),
    )
    return prepared, datamodule, module
