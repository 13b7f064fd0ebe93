"""``evaluate(run)``: a finished run's checkpoint scored again, on its own test split or on other data.

The run's own test split is rebuilt from its ``config.yaml`` (same seed, same split) with its saved
preprocessing; overrides that change the data (``data=csv data.path=new.csv data.target=y``) score
every row of that data instead, still through the run's saved preprocessing. The metrics are the
task module's own torchmetrics, computed by Lightning's ``Trainer.test``, exactly as in training.
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlcli import startup
from dlcli.errors import DataError, DlcliError
from dlcli.runs import folder
from dlcli.tasks.base import label_key
from dlcli.training.reload import LoadedRun

EVAL_KEYS = ("data", "metrics", "threads", "trainer")  # what eval overrides may change; the rest is the run
# data keys that change how, not what, is evaluated (cache and its keys: decoded up front or per batch, data/stream.py)
LOADER_KEYS = ("batch_size", "num_workers", "eval_batch_size", "cache", "cache_budget_mib", "stats_sample")
EVAL_DIR = "eval"
SPLITS = ("auto", "test", "all")


@dataclass
class EvalResult:
    """What ``dlcli eval`` reports; the same as the JSON file it saves in ``<run>/eval/``."""

    run_dir: Path
    metrics: dict[str, float]
    data: str  # "test split", or which data (and its test split, or every row)
    rows: int
    checkpoint: str
    path: Path  # the saved record
    record: dict[str, Any] = field(default_factory=dict)
    report: Any = None  # a ReportResult (dlcli/training/report.py) when --report asked for one


def evaluate(run: LoadedRun, overrides: list[str] | tuple[str, ...] = (), checkpoint: str = "best",
             config_dirs: list[str | Path] | tuple = (), split: str = "auto",
             allow_changed_data: bool = False, report: bool = False) -> EvalResult:
    """Score ``checkpoint`` of ``run``; save the metrics as ``<run>/eval/<time>-<random>.json`` (atomically).

    ``split``: ``test`` rebuilds the test split (of the data as overridden: e.g. the run's CSV, moved),
    ``all`` takes every row; ``auto`` is ``test`` for the run's own data and ``all`` for other data.
    The run's own data (or its split rebuilt) must not have changed since the run recorded its
    fingerprint: a DataError names the changed file, unless ``allow_changed_data``.
    ``report``: also write ``<run>/report/`` (dlcli/training/report.py) from the same predictions.
    """
    if split not in SPLITS:
        raise DlcliError(f"--split is one of {', '.join(SPLITS)}, got '{split}'")
    if report:
        from dlcli.training.report import check_reportable

        check_reportable(run)
    cfg, other_data, every_row, unchanged = eval_config(run, overrides, checkpoint, config_dirs,
                                                       allow_changed_data, split)

    from dlcli.data.prepare import Prepared
    from dlcli.data.stream import num_workers
    from dlcli.training.module import ArrayDataModule, eval_batch_size

    data = f"data '{cfg['data']['name']}'" + (f" ({_source(cfg['data'])})" if _source(cfg["data"]) else "")
    if every_row:
        x, y, extras = other_data_arrays(run, cfg, extra_files=not other_data)
        described = f"every row of {data}" if other_data else f"every row of the run's {data}"
        rows = np.arange(len(x))
    else:
        test = rebuilt_test_split(run, cfg, reuse=unchanged and not other_data)
        (x, y), extras = test.splits["test"], {"lengths": test.lengths, "offsets": test.offsets}
        described = f"test split of {data}" if other_data else "test split"
        rows = test.rows["test"]
    pre = run.preprocessing
    prepared = Prepared(run.task, {"test": (x, y)}, tuple(pre["input_shape"]), pre["out_features"], run.classes, pre,
                        **extras)  # sequence lengths, forecast offsets (name -> {"test": values} or None)
    datamodule = ArrayDataModule(prepared, cfg["data"]["batch_size"], num_workers(cfg["data"], prepared),
                                 eval_batch_size(cfg["data"], prepared))
    module = run.module(checkpoint, cfg)
    trainer = _trainer(cfg, run.run_dir)
    startup.settle()  # imports and loading are done: the collector runs again (dlcli/startup.py)
    metrics = {k: float(v) for k, v in trainer.test(module, datamodule=datamodule, verbose=False)[0].items()}

    record: dict[str, Any] = {
        "run_id": run.run_dir.name, "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "checkpoint": checkpoint, "overrides": list(overrides), "data": described, "rows": int(len(x)),
        "split": "all" if every_row else "test",
        "data_config": cfg["data"] if other_data else None, "metrics": metrics,
    }
    if module.test_confusion is not None:
        record["confusion_matrix"] = {"classes": list(run.classes or []), "counts": module.test_confusion.tolist()}
    path = _save(run.run_dir, record)
    result = EvalResult(run.run_dir, metrics, described, int(len(x)), checkpoint, path, record)
    if report:
        from dlcli.training.report import write_report

        result.report = write_report(run, cfg, module, datamodule, rows, result,
                                     texts=_texts(run, cfg, rows, every_row, other_data))
    return result


def eval_config(run: LoadedRun, overrides: list[str] | tuple[str, ...], checkpoint: str,
                config_dirs: list[str | Path] | tuple, allow_changed_data: bool,
                split: str = "test") -> tuple[dict, bool, bool, bool]:
    """(the run's config with eval overrides, validated; whether it names other data; whether every row is
    scored (``split``); whether the run's own data is unchanged since its fingerprint). Sets torch's threads."""
    from dlcli.config.validate import validate

    # validated either way, so that keys added to dlcli since the run (defaults) do not count as other data
    cfg = validate(run.with_overrides(overrides, EVAL_KEYS, config_dirs, command="dlcli eval"))
    saved = validate(copy.deepcopy(run.config))
    other_data = _without_loader_keys(cfg["data"]) != _without_loader_keys(saved["data"])
    every_row = split == "all" or (split == "auto" and other_data)
    run.checkpoint_path(checkpoint)  # a missing checkpoint is reported before any data is loaded
    unchanged = True
    if not (other_data and every_row):  # the run's own data, or its split rebuilt (e.g. from a moved file)
        from dlcli.data.fingerprint import check

        unchanged = check(run.preprocessing, cfg["data"], allow_changed_data, f"run {run.run_dir.name}")

    import pytorch_lightning  # noqa: F401 - importing it sets its loggers' levels, so it comes before quieting them
    import torch

    from dlcli.training.threads import choose
    from dlcli.training.train import _quiet_lightning

    _quiet_lightning()
    threads = choose(cfg["threads"])[0]  # auto: the free cores
    if threads:
        torch.set_num_threads(threads)
    return cfg, other_data, every_row, unchanged


def _texts(run: LoadedRun, cfg: dict, rows: np.ndarray, every_row: bool, other_data: bool) -> list[str] | None:
    """A text run's raw texts of the scored rows (the report quotes its worst-predicted ones); else None."""
    if run.preprocessing.get("text") is None:
        return None
    table, _ = _table_for_run(run, cfg, extra_files=not (every_row and other_data))
    return [str(table.x[int(i)]) for i in rows]


def _without_loader_keys(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in LOADER_KEYS}


def _source(data: dict) -> str:
    """The file or folder the data comes from, if it names one."""
    for key in ("path", "root"):
        if data.get(key):
            return str(data[key])
    return ""


def _table(cfg: dict, extra_files: bool = True) -> Any:
    """The configured dataset, loaded whole (as training loads it); ``extra_files``: with the rows of
    data.val_path / data.test_path."""
    from dlcli.data.splits import cv_group, load_table

    # a cross-validation fold by groups reads its group column as groups, never as a feature (as it trained)
    return load_table(cfg["data"], cfg["seed"], extra_files, group=cv_group(cfg))


def run_test_split(run: LoadedRun, cfg: dict, reuse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The test split of the configured data (the run's own, unless overridden), rebuilt with the run's seed and
    fractions, and its saved preprocessing (never fitted again).

    ``reuse`` (the run's own, unchanged data): the rows the run recorded for each split, checked to be the same.
    """
    return rebuilt_test_split(run, cfg, reuse).splits["test"]


def rebuilt_test_split(run: LoadedRun, cfg: dict, reuse: bool = False) -> Any:
    """The :class:`Prepared` data of :func:`run_test_split` (with its sequences' lengths and forecast offsets)."""
    prepared = rebuilt_splits(run, cfg, reuse)
    if "test" not in prepared.splits:
        raise DlcliError(f"run {run.run_dir.name} has no test split (data.test_fraction=0): evaluate it on "
                         "other data with overrides, e.g. data=csv data.path=new.csv data.target=label")
    return prepared


def rebuilt_splits(run: LoadedRun, cfg: dict, reuse: bool = False) -> Any:
    """Every split of the configured data (the run's own, unless overridden) rebuilt as :class:`Prepared` data,
    with the run's seed and fractions and its saved preprocessing (never fitted again)."""
    from dlcli.data.prepare import prepare
    from dlcli.data.splits import check_same_split, use_recorded
    from dlcli.registry import LOSSES
    from dlcli.tasks import loss_tasks

    table, name = _table_for_run(run, cfg)
    if reuse:
        use_recorded(table, run.preprocessing)
    loss = LOSSES.get(cfg["loss"]["name"])
    prepared = prepare(table, cfg["data"], task=run.task, loss_name=loss.name, loss_tasks=loss_tasks(loss.name),
                       seed=cfg["seed"], embedding_dim=cfg["loss"].get("embedding_dim", 32),
                       fitted=run.preprocessing, cv=cfg.get("cv"))  # a cv fold: that fold's split, as it trained
    if reuse:
        check_same_split(prepared.preprocessing, run.preprocessing, run.run_dir.name, name)
    if [label_key(c) for c in prepared.class_names or []] != [label_key(c) for c in run.classes or []]:
        raise DataError(f"{name} has the classes {', '.join(map(str, prepared.class_names or []))}; the run was "
                        f"trained on {', '.join(map(str, run.classes or []))}. Use --split all to score its rows "
                        "by class name")
    return prepared


def other_data_arrays(run: LoadedRun, cfg: dict, extra_files: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Every row of the configured data as (model inputs, targets in the run's terms, per-sample extras: sequence
    lengths and forecast offsets, as :class:`Prepared` keyword arguments); ``extra_files``: with the rows of
    data.val_path / data.test_path (the run's own data), else data.path's only (other data)."""
    table, name = _table_for_run(run, cfg, extra_files)
    if table.files is not None:  # streamed images: the run's conversion and scaling, applied per batch
        from dlcli.data.stream import with_preprocessing

        return with_preprocessing(table.files, run.preprocessing, run.run_dir.name, name), \
            run_targets(run, table.y, table.class_names, name), {}
    x = run.inputs(list(table.x) if table.text is not None else table.x)
    lengths = run.lengths(table.x, name) if table.text is None else None
    extras = {"lengths": lengths, "offsets": table.offset}
    return x, run_targets(run, table.y, table.class_names, name), \
        {k: None if v is None else {"test": v} for k, v in extras.items()}


def _table_for_run(run: LoadedRun, cfg: dict, extra_files: bool = True) -> tuple[Any, str]:
    """The configured dataset with raw inputs as the run's data gave them: its feature columns, in its order
    and shape (e.g. a CSV of an image run's pixels); and its name for messages."""
    columns = run.preprocessing.get("columns")
    if columns is not None:  # a CSV run: new data is read with the run's column types (data/columns.py)
        from dlcli.data.columns import run_types
        from dlcli.registry import DATASETS

        cfg = {**cfg, "data": run_types(cfg["data"], DATASETS.get(cfg["data"]["name"]).params, columns)}
    table = _table(cfg, extra_files)
    name = f"data '{cfg['data']['name']}'" + (f" ('{_source(cfg['data'])}')" if _source(cfg["data"]) else "")
    if (table.text is None) != (run.preprocessing.get("text") is None):
        kinds = ("texts", "arrays") if table.text is not None else ("arrays", "texts")
        raise DataError(f"{name} gives {kinds[0]}, but run {run.run_dir.name} was trained on {kinds[1]}")
    if table.text is None and table.columns is not None and columns is not None:
        table.x = _run_features(run, table, name)  # raw cells in the run's column order, encoded by run.inputs
    elif table.text is None and table.files is None:  # streamed images are read by the run's preprocessing
        if table.columns is not None:  # a CSV's cells for a run trained on plain numbers: each must be one
            from dlcli.data.columns import plain_numbers

            table.x, table.columns = plain_numbers(table, name), None
        table.x = run.raw_arrays(_run_features(run, table, name), name)
        if run.preprocessing.get("variable_length"):  # sequences padded at the end (NaN, or the run's pad_value)
            from dlcli.data.padding import check_finite

            check_finite(table.x, run.lengths(table.x, name), name)
        elif not np.all(np.isfinite(table.x)):
            raise DataError(f"{name} has missing or infinite input values: clean them first")
    return table, name


def _run_features(run: LoadedRun, table: Any, name: str) -> np.ndarray:
    """The table's inputs with the run's feature columns in the run's order, when both are named."""
    wanted, have = run.preprocessing.get("feature_names"), table.feature_names
    if not wanted or not have or list(have) == list(wanted) or table.x.ndim != 2:
        return table.x
    missing = [f for f in wanted if f not in have]
    if missing:
        raise DataError(f"{name} lacks {len(missing)} of the run's feature columns: {', '.join(missing[:20])}"
                        f"{', ...' if len(missing) > 20 else ''}. Name them in data.features, in any order")
    return table.x[:, [list(have).index(f) for f in wanted]]


def run_targets(run: LoadedRun, y: np.ndarray, class_names: list[str] | None, name: str) -> np.ndarray:
    """Targets of new data in the run's terms: its class ids, its label columns, or values."""
    from dlcli.tasks import get_task

    return get_task(run.task).eval_targets(y, class_names, run.preprocessing, name)


def _trainer(cfg: dict, run_dir: Path) -> Any:
    """A Trainer that only tests: one device, no logger, no checkpoints, nothing written."""
    import pytorch_lightning as pl
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    t = cfg["trainer"]
    try:
        return pl.Trainer(accelerator=t.get("accelerator") or "auto", devices=1, precision=t.get("precision"),
                          logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, default_root_dir=str(run_dir))
    except (MisconfigurationException, ValueError) as e:
        raise DlcliError(f"trainer: {e} (e.g. trainer.accelerator=cpu)") from None


def _save(run_dir: Path, record: dict[str, Any]) -> Path:
    out = run_dir / EVAL_DIR
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}.json"
    try:
        out.mkdir(exist_ok=True)
        folder.write_json(path, record)
    except OSError as e:
        raise DlcliError(f"cannot save the evaluation in {out}: {e.strerror or e}. Make the run folder "
                         "writable") from None
    return path
