"""Typed schemas for the parts of the config that are not registry components.

The dataclass defaults are the fallback for keys a user's own YAML leaves out; the
shipped YAML shows every knob with its value and why. Components (model, loss,
optimizer, ...) are typed by their registered builder's signature instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from dlcli.config.types import Count, NonNegativeFloat, NonNegativeInt, Range, Rate

Fraction01 = Annotated[float, Range(0, 1, open_low=True)]  # (0, 1]
Seed = Annotated[int, Range(0, 2**32 - 1)]  # numpy's seeds

Precision = Literal[
    "32-true", "32", 32, "16-mixed", "16-true", "16", 16, "bf16-mixed", "bf16-true", "bf16",
    "64-true", "64", 64, "transformer-engine", "transformer-engine-float16",
]


@dataclass
class TopConfig:
    """The top level of a run's config; the groups are validated separately."""

    seed: Seed = 42
    name: str = "run"
    output_dir: str = "outputs"
    task: str = "auto"  # "auto" or a registered task (dlcli/tasks/; `dlcli list tasks`)
    threads: Count | Literal["auto"] | None = "auto"  # auto: dlcli/training/threads.py
    tags: list[str] | None = None  # labels for `runs ls --tag T` / `runs prune`; the tag `keep` protects a run
    regularization: dict | None = None
    metrics: list[str] | None = None
    finetune: dict | None = None
    data: dict | None = None
    model: dict | None = None
    loss: dict | None = None
    optimizer: dict | None = None
    scheduler: dict | None = None
    augmentation: dict | None = None
    callbacks: dict | None = None
    trainer: dict | None = None
    logger: dict | None = None
    cv: dict | None = None


CvStrategy = Literal["stratified", "kfold", "group", "timeseries"]


@dataclass
class CvConfig:
    """Cross-validation (``dlcli cv``, dlcli/cv/): which fold of which repeat this run validates on.

    ``folds`` null is an ordinary run; ``dlcli cv`` sets every key per fold, so each fold's config.yaml
    says which fold it is. The ranges that relate keys (fold < folds) are checked by a rule in validate.py.
    """

    folds: Annotated[int, Range(2)] | None = None
    fold: NonNegativeInt = 0
    repeats: Count = 1
    repeat: NonNegativeInt = 0
    strategy: CvStrategy = "stratified"
    group: str | None = None  # strategy=group: the CSV column holding each row's group (not a feature)
    id: str | None = None  # links a cv's folds: `dlcli runs ls --cv ID`, `runs compare --group-by cv.id`


@dataclass
class TrainerConfig:
    """Passed to ``pytorch_lightning.Trainer``; the names are Lightning's."""

    max_epochs: Count | None = None  # None: the model's (ModelConfig.max_epochs), filled in by validation
    min_epochs: NonNegativeInt | None = None
    min_steps: NonNegativeInt | None = None  # None: the model's (ModelConfig.min_steps)
    max_time: str | None = None
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"] = "auto"
    devices: Count | str | list[NonNegativeInt] = "auto"
    strategy: str = "auto"
    num_nodes: Count = 1
    precision: Precision = "32-true"
    deterministic: bool = False
    benchmark: bool | None = None
    gradient_clip_val: NonNegativeFloat | None = None
    gradient_clip_algorithm: Literal["norm", "value"] = "norm"
    accumulate_grad_batches: Count = 1
    log_every_n_steps: Count = 50
    check_val_every_n_epoch: Count = 1
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    enable_progress_bar: bool = True
    num_sanity_val_steps: Annotated[int, Range(-1)] = 0  # -1: all
    matmul_precision: Literal["highest", "high", "medium"] | None = None


@dataclass
class ModelConfig:
    """Keys every model takes; a model's own keys come from its builder's signature."""

    name: str = "mlp"
    init: Literal["default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
                  "orthogonal", "normal"] = "default"
    pretrained: str | None = None
    allow_changed_data: bool = False  # fine-tune although the data files the pretrained run recorded have changed
    compile: bool = False
    channels_last: bool = False
    # the model family's training length, used where trainer.max_epochs / trainer.min_steps /
    # callbacks.early_stopping.patience are left at null: families such as fcn need hundreds of optimiser steps,
    # which small sets give in 1-2 an epoch, and keep improving after tens of flat epochs (conf/model/fcn.yaml)
    max_epochs: Count = 30
    min_steps: Count | None = None
    patience: Count = 10


@dataclass
class FinetuneConfig:
    """Which parameters stay fixed while the rest trains."""

    freeze: list[str] | None = None
    stages: list[dict] | None = None


@dataclass
class OptimizerConfig:
    """Keys every optimizer takes, applied by dlcli when it groups the parameters."""

    name: str = "adam"
    param_groups: dict[str, float] | None = None
    decay_bias_and_norm: bool = True


@dataclass
class RegularizationConfig:
    """Penalties added to the training loss."""

    l1: NonNegativeFloat = 0.0


@dataclass
class SchedulerConfig:
    """Keys every scheduler takes: linear warmup from warmup_start_factor x lr, then the schedule."""

    name: str = "none"
    warmup_epochs: NonNegativeInt = 0
    warmup_steps: NonNegativeInt = 0
    warmup_start_factor: Fraction01 = 0.01  # LinearLR's start_factor: (0, 1]


@dataclass
class DataConfig:
    """Keys every dataset takes; a dataset's own keys come from its builder's signature."""

    name: str = "digits"
    batch_size: Count = 32
    val_fraction: Rate = 0.15
    test_fraction: Rate = 0.15
    stratify: bool = True
    # auto: standard, or channel with ImageNet's statistics for an ImageNet backbone (model.pretrained)
    scaling: Literal["none", "minmax", "symmetric", "standard", "channel", "auto"] = "auto"
    channel_mean: list[float] | None = None
    channel_std: list[float] | None = None
    resize: int | list[int] | None = None
    channels: Literal[1, 3] | None = None
    label_fraction: Fraction01 = 1.0
    target_scaling: Literal["none", "standard"] = "standard"
    num_workers: NonNegativeInt | Literal["auto"] = 0  # auto: 0 in memory, a few when streamed (dlcli/data/stream.py)
    eval_batch_size: Count | None = None
    anomaly_classes: list[int | str] | None = None
    # official splits (dlcli/data/splits.py): files that are the test / validation split, read by the same loader
    # as data.path (data.root for folders); the rest is carved from train only where no file is given
    split: Literal["official", "random"] = "official"  # random: a dataset's own test files join the training pool
    test_path: str | None = None
    val_path: str | None = None
    test_root: str | None = None
    val_root: str | None = None
    pad_value: float | None = None  # sequences (N, T, F): the value of padded steps at the end (NaN always is)
