"""From a loaded :class:`Table` to train/val/test tensors: task, split, scaling.

Everything fitted here (label mapping, scaler statistics) is fitted on the train split
only and returned as plain data, saved with the run as ``preprocessing.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlcli.data.table import Table
from dlcli.errors import DataError, DlcliError

MAX_AUTO_CLASSES = 20  # integer targets with at most this many values are taken as classes


@dataclass
class Prepared:
    """Split, scaled data as numpy arrays, with what was fitted to get there."""

    task: str  # multiclass | binary | regression
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (x, y)
    in_shape: tuple[int, ...]
    out_features: int
    class_names: list[str] | None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    vocab_size: int | None = None  # token data: ids are 0 (padding) .. vocab_size - 1

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None


def infer_kind(y: np.ndarray) -> str:
    """classification for strings, booleans and few integers; multilabel for a 0/1 matrix; else regression."""
    if y.ndim == 2 and np.issubdtype(y.dtype, np.number) and np.isin(y, (0, 1)).all():
        return "multilabel"
    if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
        return "classification"
    if y.ndim == 1 and np.all(np.isfinite(y)) and np.all(np.mod(y, 1) == 0) \
            and len(np.unique(y)) <= MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def resolve_task(table: Table, requested: str, loss_name: str, loss_tasks: tuple[str, ...],
                 data_name: str) -> tuple[str, np.ndarray, list[str] | None]:
    """Decide the task kind; return (task, targets as class ids or floats, class names)."""
    kind = table.kind or infer_kind(table.y)
    if requested == "transcription" or (requested == "auto" and kind == "transcription"):
        if table.y.ndim != 2 or not table.class_names:
            raise DataError(f"task=transcription needs symbol sequences (N, L) and the symbols' names; data "
                            f"'{data_name}' has targets of shape {table.y.shape}")
        task, y, names = "transcription", table.y.astype(np.int64), ["<blank>", *table.class_names]
    elif requested == "reconstruction":  # the targets are the inputs; y keeps the labels (for anomaly flags)
        task, y, names = "reconstruction", table.y, None
    elif requested == "multilabel" or (requested == "auto" and kind == "multilabel"):
        if table.y.ndim != 2 or not np.isin(table.y, (0, 1)).all():
            raise DataError(f"task=multilabel needs a 0/1 target matrix (N, labels); data '{data_name}' has "
                            f"targets of shape {table.y.shape}")
        task, y = "multilabel", table.y.astype(np.float32)
        names = list(table.class_names or [f"label_{i}" for i in range(y.shape[1])])
    elif requested == "regression" or (requested == "auto" and kind == "regression"):
        if not np.issubdtype(table.y.dtype, np.number):
            raise DataError(f"task=regression needs numeric targets; data '{data_name}' has labels such as "
                            f"{table.y[0]!r}. Use task=auto or task=multiclass")
        task, y, names = "regression", table.y.astype(np.float32), None
    else:
        classes, y = np.unique(table.y, return_inverse=True)
        if table.class_names is not None and len(table.class_names) == len(classes):
            names = list(table.class_names)
        else:
            names = [str(c.item() if hasattr(c, "item") else c) for c in classes]
        if requested == "auto" and loss_tasks == ("metric_learning",):
            task = "metric_learning"
        elif requested == "auto":
            task = "binary" if "binary" in loss_tasks and "multiclass" not in loss_tasks else "multiclass"
        else:
            task = requested
        if task == "binary" and len(classes) != 2:
            raise DlcliError(f"loss '{loss_name}' is for binary classification, but data '{data_name}' has "
                             f"{len(classes)} classes. Use loss=cross_entropy")
        if len(classes) > len(table.y) // 2:
            raise DataError(f"data '{data_name}' has {len(classes)} distinct labels in {len(table.y)} rows: "
                            "that looks like a real-valued target. Use task=regression loss=mse")
    if task not in loss_tasks:
        fix = {"metric_learning": "loss=triplet", "regression": "loss=mse", "reconstruction": "loss=mse",
               "multiclass": "loss=cross_entropy",
               "binary": "loss=bce", "multilabel": "loss=bce", "transcription": "loss=ctc"}[task]
        raise DlcliError(f"loss '{loss_name}' does not fit a {task} task (data '{data_name}'; "
                         f"the loss fits {', '.join(loss_tasks)}). Use {fix}")
    return task, y, names


def _hold_out_anomalies(labels: np.ndarray, idx: dict[str, np.ndarray], anomaly_classes: list | None,
                        data_name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reconstruction: rows of ``anomaly_classes`` never train or validate; they all join the test split.

    Returns y = 1.0 for an anomaly, 0.0 otherwise, and the adjusted indices.
    """
    if not anomaly_classes:
        return np.zeros(len(labels), dtype=np.float32), idx
    wanted = {str(a) for a in anomaly_classes}
    flags = np.array([str(v.item() if hasattr(v, "item") else v) in wanted for v in labels])
    if not flags.any():
        present = sorted({str(v) for v in labels})[:20]
        raise DataError(f"data.anomaly_classes {list(anomaly_classes)}: no such labels in data '{data_name}'. "
                        f"Labels: {', '.join(present)}")
    anomalies = np.flatnonzero(flags)
    out = {k: v[~flags[v]] for k, v in idx.items()}
    out["test"] = np.sort(np.union1d(out.get("test", np.array([], dtype=int)), anomalies))
    return flags.astype(np.float32), out


def split_indices(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                  stratify: bool, ordered: bool = False) -> dict[str, np.ndarray]:
    """Seeded train/val/test indices; stratified by class when asked.

    ``ordered`` rows (windows of a time series) are split in time instead: the first rows train,
    the next validate, the last test, so that no split sees the future of the one before it.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if ordered:
        n_test, n_val = round(len(y) * test_fraction), round(len(y) * val_fraction)
        n_train = len(y) - n_test - n_val
        if n_train < 1:
            raise DataError(f"cannot split {len(y)} rows with val_fraction={val_fraction}, "
                            f"test_fraction={test_fraction}: nothing is left to train on")
        cuts = {"train": idx[:n_train], "val": idx[n_train:n_train + n_val], "test": idx[n_train + n_val:]}
        return {k: v for k, v in cuts.items() if len(v)}
    out: dict[str, np.ndarray] = {}
    try:
        rest = idx
        if test_fraction > 0:
            rest, out["test"] = train_test_split(idx, test_size=test_fraction, random_state=seed,
                                                 stratify=y if stratify else None)
        if val_fraction > 0:
            frac = val_fraction / (1 - test_fraction)
            rest, out["val"] = train_test_split(rest, test_size=frac, random_state=seed,
                                                stratify=y[rest] if stratify else None)
    except ValueError as e:
        hint = " Set data.stratify=false, or use larger fractions." if stratify else ""
        raise DataError(f"cannot split the data (val_fraction={val_fraction}, "
                        f"test_fraction={test_fraction}): {e}.{hint}") from None
    out["train"] = rest
    return {k: np.sort(out[k]) for k in ("train", "val", "test") if k in out}


def fit_scaler(x: np.ndarray, method: str) -> dict[str, Any]:
    """Per-feature statistics of the train inputs for ``method``."""
    flat = x.reshape(len(x), -1).astype(np.float64)  # (N, *S) -> (N, F)
    if method == "standard":
        std = flat.std(axis=0)
        return {"method": method, "mean": flat.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1).tolist()}
    if method in ("minmax", "symmetric"):
        lo, hi = flat.min(axis=0), flat.max(axis=0)
        return {"method": method, "min": lo.tolist(), "max": np.where(hi > lo, hi, lo + 1).tolist()}
    return {"method": "none"}


def apply_scaler(x: np.ndarray, scaler: dict[str, Any]) -> np.ndarray:
    """Apply statistics from :func:`fit_scaler` (to any split, or to new data later)."""
    method = scaler["method"]
    if method == "none":
        return x.astype(np.float32)
    flat = x.reshape(len(x), -1).astype(np.float64)
    if method == "standard":
        out = (flat - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])
    else:
        lo, hi = np.asarray(scaler["min"]), np.asarray(scaler["max"])
        out = (flat - lo) / (hi - lo)
        if method == "symmetric":
            out = out * 2 - 1
    return out.reshape(x.shape).astype(np.float32)


def prepare(table: Table, cfg: dict, *, task: str, loss_name: str, loss_tasks: tuple[str, ...],
            seed: int, embedding_dim: int = 32) -> Prepared:
    """Task, split, scaling (or a vocabulary, for text); ``cfg`` is the validated ``data`` node."""
    if table.text is None and not np.all(np.isfinite(table.x)):
        raise DataError(f"data '{cfg['name']}' has missing or infinite input values: clean them first")
    task, y, class_names = resolve_task(table, task, loss_name, loss_tasks, cfg["name"])
    stratify = cfg["stratify"] and task in ("multiclass", "binary", "reconstruction", "metric_learning")
    idx = split_indices(y, cfg["val_fraction"], cfg["test_fraction"], seed, stratify, table.ordered)
    if task == "reconstruction":
        y, idx = _hold_out_anomalies(y, idx, cfg.get("anomaly_classes"), cfg["name"])
        pre_anomalies = int(y.sum())
    else:
        pre_anomalies = 0
    pre: dict[str, Any] = {"task": task, "feature_names": table.feature_names, "classes": class_names,
                           "split_sizes": {k: len(v) for k, v in idx.items()}}
    if task == "reconstruction":
        pre["anomaly_classes"], pre["anomalies"] = cfg.get("anomaly_classes"), pre_anomalies
    vocab_size = None
    if table.text is not None:
        # token ids: the vocabulary comes from the training texts only
        from dlcli.data.tokenize import build_vocab, encode

        texts = [str(t) for t in table.x]
        vocab = build_vocab([texts[i] for i in idx["train"]], table.text)
        x = encode(texts, vocab, table.text)  # (N,) texts -> (N, max_length) ids
        pre.update(text=table.text, vocab=vocab)
        vocab_size = len(vocab)
        splits = {name: (x[i], y[i]) for name, i in idx.items()}
    else:
        x_scaler = fit_scaler(table.x[idx["train"]], cfg["scaling"])
        pre["scaling"] = x_scaler
        splits = {name: (apply_scaler(table.x[i], x_scaler), y[i]) for name, i in idx.items()}
    in_shape = tuple(splits["train"][0].shape[1:])
    pre["input_shape"] = list(in_shape)
    if task == "regression":
        pre["target_scaling"] = fit_scaler(y[idx["train"]].reshape(len(idx["train"]), -1),
                                           cfg["target_scaling"])
    if task == "reconstruction":
        out_features = int(np.prod(in_shape))  # the model gives back a whole (flattened) input
    elif task == "metric_learning":
        out_features = embedding_dim  # the model outputs an embedding, compared by cosine
    elif task == "transcription":
        out_features = in_shape[0] * len(class_names)  # per time step, a score for blank and each symbol
    elif task in ("binary", "regression") and y.ndim == 1:
        out_features = 1
    else:
        out_features = y.shape[1] if task in ("regression", "multilabel") else len(class_names)
    return Prepared(task, splits, in_shape, out_features, class_names, pre, vocab_size)
