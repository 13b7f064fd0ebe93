"""From a loaded :class:`Table` to train/val/test tensors: task, split, scaling.

Everything fitted here (label mapping, scaler statistics) is fitted on the train split
only and returned as plain data, saved with the run as ``preprocessing.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlcli.data import padding
from dlcli.data.table import Table
from dlcli.errors import DataError

if TYPE_CHECKING:
    from dlcli.tasks.base import Task

MAX_AUTO_CLASSES = 20  # integer targets with at most this many values are taken as classes


@dataclass
class Prepared:
    """Split, scaled data as numpy arrays, with what was fitted to get there."""

    task: str  # a registered task's name (dlcli/tasks/)
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (x, y)
    in_shape: tuple[int, ...]
    out_features: int
    class_names: list[str] | None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    vocab_size: int | None = None  # token data: ids are 0 (padding) .. vocab_size - 1
    lengths: dict[str, np.ndarray] | None = None  # name -> (N,) real steps per sequence (padding.py); None: all
    offsets: dict[str, np.ndarray] | None = None  # name -> per-sample bases of differenced forecasts (forecast.py)
    rows: dict[str, np.ndarray] | None = None  # name -> the loaded table's row of each sample (reports name them)

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
                 data_name: str) -> tuple[Task, np.ndarray, list[str] | None]:
    """Decide the task (see :func:`dlcli.tasks.choose_task`); return it, its targets and the class names."""
    from dlcli.tasks import choose_task

    task = choose_task(requested, table.kind or infer_kind(table.y), loss_name, loss_tasks, data_name)
    y, names = task.targets(table, data_name)
    return task, y, names


def label_subset(y: np.ndarray, train: np.ndarray, fraction: float, seed: int, stratify: bool) -> np.ndarray:
    """A seeded share of the training rows (stratified by class when asked): training with fewer labels."""
    from dlcli.data.holdout import SplitRefused, train_test_split

    if not 0 < fraction <= 1:
        raise DataError(f"data.label_fraction is a share of the training split in (0, 1], got {fraction}")
    try:
        keep, _ = train_test_split(train, train_size=fraction, random_state=seed,
                                   stratify=y[train] if stratify else None)
    except SplitRefused as e:
        setting, n = f"data.label_fraction={fraction}", len(train)
        if e.reason == "train_below_classes":
            what = (f"{setting} keeps {e.facts['rows']} of the {n} training rows, fewer than the "
                    f"{e.facts['classes']} classes, and a stratified share keeps every class. Use a larger "
                    "fraction, or set data.stratify=false")
        elif e.reason == "test_below_classes":
            what = (f"{setting} leaves out {e.facts['rows']} of the {n} training rows, fewer than the "
                    f"{e.facts['classes']} classes, and a stratified share leaves out some of every class. Use a "
                    "smaller fraction (1 keeps every row), or set data.stratify=false")
        else:
            what = _refused_in_general(e, setting, f"{n} training rows")
        raise DataError(what) from None
    return np.sort(keep)


def _check_fits(fitted: dict[str, Any], shape: tuple[int, ...]) -> None:
    """The pretrained run's saved scaling must apply to these inputs (same channels, or same shape)."""
    scaler, source = fitted["scaling"], tuple(fitted["input_shape"])
    if scaler["method"] == "none" or tuple(shape) == source:
        return
    if scaler["method"] == "channel" and shape[scaler["axis"] - 1] == source[scaler["axis"] - 1]:
        return
    fix = []
    if len(shape) == 3 and len(source) == 3:
        if shape[0] != source[0]:
            fix.append(f"data.channels={source[0]}")
        if shape[1:] != source[1:]:
            fix.append(f"data.resize=[{source[1]},{source[2]}]")
    raise DataError(f"the pretrained run was trained on inputs of shape {source}; this data gives {tuple(shape)}, "
                    f"so its {scaler['method']} scaling cannot be re-applied"
                    + (f". Convert the inputs to fit: {' '.join(fix)}" if fix else ""))


def split_indices(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                  stratify: bool, ordered: bool = False, fixed: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Seeded train/val/test indices; stratified by class when asked.

    ``ordered`` rows (windows of a time series) are split in time instead: the first rows train,
    the next validate, the last test, so that no split sees the future of the one before it.
    ``fixed`` (a Table's ``split``) marks rows whose split a file gives: see dlcli/data/splits.py.
    """
    if fixed is not None and (fixed != "train").any():
        from dlcli.data.splits import fixed_split

        return fixed_split(y, fixed, val_fraction, test_fraction, seed, stratify, ordered)

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
    rest = idx
    if test_fraction > 0:  # the test rows first, then the validation rows from what is left
        left = "training and validation" if val_fraction > 0 else "training"
        rest, out["test"] = _carve(rest, y, test_fraction, seed, stratify, "test", test_fraction, left)
    if val_fraction > 0:
        rest, out["val"] = _carve(rest, y, val_fraction / (1 - test_fraction), seed, stratify, "val", val_fraction,
                                  "training", after_test=test_fraction > 0)
    out["train"] = rest
    return {k: np.sort(out[k]) for k in ("train", "val", "test") if k in out}


def _carve(rows: np.ndarray, y: np.ndarray, share: float, seed: int, stratify: bool, part: str, fraction: float,
           left: str, after_test: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(rows left, the ``part`` split's rows): a seeded ``share`` of ``rows``, stratified by class when asked.
    A split that cannot be made is a DataError in the user's terms: the setting, the rows and the classes."""
    from dlcli.data.holdout import SplitRefused, train_test_split

    try:
        return train_test_split(rows, test_size=share, random_state=seed, stratify=y[rows] if stratify else None)
    except SplitRefused as e:
        name = {"val": "validation"}.get(part, part)
        setting, of = f"data.{part}_fraction={fraction}", f"{len(y)} rows"
        if e.reason == "test_below_classes":
            what = (f"the {name} split ({setting} of {of}) would hold {rows_text(e.facts['rows'])}, fewer than the "
                    f"{e.facts['classes']} classes, and a stratified split puts every class in each split. "
                    f"Use a larger data.{part}_fraction, or set data.stratify=false")
        elif e.reason == "train_below_classes":
            what = (f"taking the {name} split ({setting} of {of}) would leave {rows_text(e.facts['rows'])} for {left}, "
                    f"fewer than the {e.facts['classes']} classes, and a stratified split puts every class in "
                    f"each split. Use a smaller data.{part}_fraction, or set data.stratify=false")
        else:
            where = " left after taking the test split" if after_test else ""
            what = _refused_in_general(e, setting, f"{len(rows)} rows{where}")
        raise DataError(f"cannot split the data: {what}") from None


def rows_text(n: int) -> str:
    """'1 row', '2 rows': a count of rows for a message."""
    return f"{n} row" if n == 1 else f"{n} rows"


def _refused_in_general(e, setting: str, rows: str) -> str:
    """The refusals that are not about how many rows a split holds, in the user's terms; ``rows``: the rows it
    was to be taken from."""
    if e.reason == "one_member":
        few = [str(c) for c in e.facts["classes"]]
        named = ", ".join(few[:10]) + (f" and {len(few) - 10} more" if len(few) > 10 else "")
        return (f"{'class' if len(few) == 1 else 'classes'} {named} {'has' if len(few) == 1 else 'have'} a single "
                f"row among the {rows}, and a stratified split needs at least 2 rows of each class to put it on "
                "both sides. Use more rows of those classes, or set data.stratify=false")
    return f"{setting} cannot be taken from {rows}: {e}. Use another fraction"


def fit_scaler(x: np.ndarray, method: str, mean: list[float] | None = None,
               std: list[float] | None = None) -> dict[str, Any]:
    """Statistics of the train inputs for ``method``: per feature, or per channel for ``channel``.

    ``channel`` standardises each channel of images (N, C, H, W), or each last-axis feature of
    tables and sequences; ``mean`` and ``std`` given (e.g. a backbone's) are used instead of fitted.
    NaN values (padded steps of variable-length sequences) are left out of the statistics.
    """
    from dlcli.data.padding import stat

    if method == "channel":
        axis = _channel_axis(x)
        if mean is None or std is None:
            reduce = tuple(a for a in range(x.ndim) if a != axis)
            fitted_mean, fitted_std = stat(x, "mean", reduce), stat(x, "std", reduce)  # NaN: padding, left out
            mean = fitted_mean.tolist() if mean is None else mean
            std = np.where(fitted_std > 0, fitted_std, 1).tolist() if std is None else std
        for key, values in (("channel_mean", mean), ("channel_std", std)):
            if len(values) != x.shape[axis]:
                raise DataError(f"data.{key} has {len(values)} values, but the inputs have {x.shape[axis]} "
                                f"channels (samples of shape {tuple(x.shape[1:])})")
        if any(v <= 0 for v in std):
            raise DataError(f"data.channel_std must be positive, got {list(std)}")
        return {"method": method, "axis": axis, "mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    flat = x.reshape(len(x), -1).astype(np.float64)  # (N, *S) -> (N, F)
    if method == "standard":
        std = stat(flat, "std", 0)
        return {"method": method, "mean": stat(flat, "mean", 0).tolist(), "std": np.where(std > 0, std, 1).tolist()}
    if method in ("minmax", "symmetric"):
        lo, hi = stat(flat, "min", 0), stat(flat, "max", 0)
        return {"method": method, "min": lo.tolist(), "max": np.where(hi > lo, hi, lo + 1).tolist()}
    return {"method": "none"}


def _channel_axis(x: np.ndarray) -> int:
    return 1 if x.ndim == 4 else x.ndim - 1  # images: the channel axis; otherwise the last (feature) axis


def apply_scaler(x: np.ndarray, scaler: dict[str, Any]) -> np.ndarray:
    """Apply statistics from :func:`fit_scaler` (to any split, or to new data later)."""
    method = scaler["method"]
    if method == "none":
        return x.astype(np.float32)
    if method == "channel":
        shape = [1] * x.ndim
        shape[scaler["axis"]] = -1  # broadcast the per-channel values along their axis
        mean, std = np.reshape(scaler["mean"], shape), np.reshape(scaler["std"], shape)
        return ((x - mean) / std).astype(np.float32)
    flat = x.reshape(len(x), -1).astype(np.float64)
    if flat.shape[1] != len(scaler.get("mean", scaler.get("min", []))):
        raise DataError(f"inputs of shape {tuple(x.shape[1:])} do not fit the saved {method} scaling of "
                        f"{len(scaler.get('mean', scaler.get('min', [])))} features")
    if method == "standard":
        out = (flat - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])
    else:
        lo, hi = np.asarray(scaler["min"]), np.asarray(scaler["max"])
        out = (flat - lo) / (hi - lo)
        if method == "symmetric":
            out = out * 2 - 1
    return out.reshape(x.shape).astype(np.float32)


def image_options(cfg: dict, x: np.ndarray, data_name: str) -> dict[str, Any] | None:
    """The configured image conversion (data.channels, data.resize), checked against the inputs."""
    channels, resize = cfg.get("channels"), cfg.get("resize")
    if channels is None and resize is None:
        return None
    if x.ndim != 4:
        key = "channels" if channels is not None else "resize"
        raise DataError(f"data.{key} converts images (C, H, W); data '{data_name}' has samples of shape "
                        f"{tuple(x.shape[1:])}. Remove data.{key}")
    if channels is not None and x.shape[1] not in (1, 3):
        raise DataError(f"data.channels converts between 1 (grayscale) and 3 (RGB) channels; data "
                        f"'{data_name}' has {x.shape[1]}")
    if resize is not None:
        resize = [int(resize), int(resize)] if isinstance(resize, int) else [int(v) for v in resize]
        if len(resize) != 2 or min(resize) < 1:
            raise DataError(f"data.resize is [height, width] (or one size for both), got {cfg['resize']}")
    return {"channels": channels, "resize": resize}


def convert_images(x: np.ndarray, image: dict[str, Any] | None) -> np.ndarray:
    """(N, C, H, W) -> grayscale <-> RGB as asked, then resized (bilinear, antialiased)."""
    if not image:
        return x
    channels, resize = image.get("channels"), image.get("resize")
    if channels is not None and channels != x.shape[1]:
        if channels == 3:  # gray -> RGB: the same values in each channel
            x = np.repeat(x, 3, axis=1)
        else:  # RGB -> gray: luma weights (ITU-R BT.601, as kornia's rgb_to_grayscale)
            x = np.tensordot(np.array([0.299, 0.587, 0.114]), x, axes=([0], [1]))[:, None].astype(x.dtype)
    if resize is not None and list(x.shape[-2:]) != list(resize):
        import torch
        import torch.nn.functional as F

        out = [F.interpolate(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)), size=tuple(resize),
                             mode="bilinear", align_corners=False, antialias=True).numpy()
               for chunk in np.array_split(x, max(1, len(x) // 4096))]  # chunks bound the memory of big sets
        x = np.concatenate(out)
    return x


def as_series(x: np.ndarray) -> np.ndarray:
    """Rows of T values, for a model that reads series: (N, T) -> (N, T, 1), univariate sequences."""
    return x[:, :, None]


def transform_inputs(x: Any, pre: dict[str, Any]) -> np.ndarray:
    """Raw inputs -> model inputs with a run's saved preprocessing: the same steps as in training.

    Texts are encoded with the saved vocabulary; arrays are converted (image channels, size) and
    scaled with the saved statistics. Training, fine-tuning and reloading a run all go through here.
    """
    if pre.get("text") is not None:
        from dlcli.data.tokenize import encode

        return encode([str(t) for t in x], pre["vocab"], pre["text"])
    return apply_scaler(unscaled_inputs(x, pre), pre["scaling"])


def unscaled_inputs(x: Any, pre: dict[str, Any]) -> np.ndarray:
    """Raw array inputs -> the values a run's scaling is applied to: CSV cells encoded, rows made series,
    images converted (channels, size). What ``input_range`` describes for the training rows."""
    if pre.get("columns") is not None:  # raw CSV records (N, F) -> one-hot, imputed floats (N, F')
        from dlcli.data.columns import encode_columns

        x = encode_columns(x, pre["columns"])
    if pre.get("rows_as_series") and np.ndim(x) == 2:
        x = as_series(np.asarray(x))
    return convert_images(np.asarray(x), pre.get("image"))


def _check_finite(table: Table, cfg: dict) -> None:
    """Inputs and numeric targets hold no NaN or infinity; else a DataError naming the first sample."""
    source = f"data '{cfg['name']}'" + (f" ('{cfg['path']}')" if cfg.get("path") else "")
    for what, values in (("input", None if table.text is not None or table.columns is not None else table.x),
                         ("target", table.y)):
        if values is None or not np.issubdtype(values.dtype, np.number) or np.isfinite(values).all():
            continue
        bad = np.argwhere(~np.isfinite(values))[0]  # (sample, *position)
        where = ""
        if what == "input" and len(bad) == 2 and table.feature_names:
            where = f", feature '{table.feature_names[bad[1]]}'"
        elif len(bad) > 1:
            where = f" at position {tuple(int(i) for i in bad[1:])}"
        raise DataError(f"{source} has a missing (NaN) or infinite {what} value: sample {int(bad[0])} (counting "
                        f"from 0){where} holds {values[tuple(bad)]}. Fill in or drop such samples before training")


def prepare(table: Table, cfg: dict, *, task: str, loss_name: str, loss_tasks: tuple[str, ...],
            seed: int, embedding_dim: int = 32, fitted: dict[str, Any] | None = None,
            series: bool = False, cv: dict | None = None) -> Prepared:
    """Task, split, image conversion, scaling (or a vocabulary, for text); ``cfg`` is the validated ``data`` node.

    ``fitted`` is an earlier run's preprocessing (fine-tuning from it): its scaling statistics and
    vocabulary are re-applied instead of being fitted again, so the inputs mean what they meant there.
    ``series``: the model reads series (fcn, resnet1d, inception_time): rows of T values become
    univariate sequences (T, 1), and ``scaling=standard`` scales each feature over all steps (see below).
    ``cv`` (the config's cv node) with ``folds`` set: the splits are a cross-validation fold (dlcli/cv/split.py).
    """
    if cfg.get("scaling") == "auto":  # (an ImageNet backbone has set it already: dlcli/training/imagenet.py)
        # images: one mean and sd per colour channel (per-pixel z-scores inflate near-constant border pixels;
        # bench/cnn_defaults.py measured channel best with model=cnn); other data: each feature on its own
        images = table.files is not None or getattr(table.x, "ndim", 0) == 4
        cfg = {**cfg, "scaling": "channel" if images else "standard"}
    table = padding.mark(table, cfg.get("pad_value"), f"data '{cfg['name']}'")  # sequences padded at the end
    _check_finite(table, cfg)
    spec, y, class_names = resolve_task(table, task, loss_name, loss_tasks, cfg["name"])
    stratify = cfg["stratify"] and spec.stratify
    if cv is not None and cv.get("folds"):  # a cross-validation fold (dlcli/cv/): the fold is the val split
        from dlcli.cv.split import fold_indices, fold_record

        idx, how = fold_indices(y, table, cv, cfg["test_fraction"], seed, stratify)
        recorded = fold_record(idx, table, cfg, seed, cv, how)
    else:
        idx = split_indices(y, cfg["val_fraction"], cfg["test_fraction"], seed, stratify, table.ordered, table.split)
        from dlcli.data.splits import split_record  # where each split came from, and its rows, for the record

        recorded = split_record(idx, table, cfg, seed)
    if cfg.get("label_fraction", 1.0) < 1:
        idx["train"] = label_subset(y, idx["train"], cfg["label_fraction"], seed, stratify)
    y, idx, held_out = spec.hold_out(y, idx, cfg, cfg["name"])
    pre: dict[str, Any] = {"task": spec.name, "feature_names": table.feature_names, "classes": class_names,
                           "split_sizes": {k: len(v) for k, v in idx.items()}, **recorded}
    if table.notes:  # what reading the data decided (e.g. the delimiter it found); a CSV table's column notes follow
        pre["notes"] = list(table.notes)
    if cfg.get("label_fraction", 1.0) < 1:
        pre["label_fraction"] = cfg["label_fraction"]
    pre.update(held_out)
    if (cfg.get("channel_mean") is not None or cfg.get("channel_std") is not None) and cfg["scaling"] != "channel":
        raise DataError("data.channel_mean and data.channel_std are the statistics of scaling=channel: "
                        "add data.scaling=channel")
    vocab_size = None
    if fitted is not None and (fitted.get("text") is None) != (table.text is None):
        kinds = ("texts", "arrays") if table.text is not None else ("arrays", "texts")
        raise DataError(f"data '{cfg['name']}' gives {kinds[0]}, but the pretrained run was trained on {kinds[1]}: "
                        "fine-tune on the same kind of data")
    if table.text is not None:
        # token ids: the vocabulary comes from the training texts only (or from the pretrained run)
        from dlcli.data.tokenize import build_vocab

        if fitted is not None:
            pre.update(text=fitted["text"], vocab=fitted["vocab"])
        else:
            texts = [str(t) for t in table.x]
            pre.update(text=table.text, vocab=build_vocab([texts[i] for i in idx["train"]], table.text))
        x = transform_inputs(table.x, pre)  # (N,) texts -> (N, max_length) ids
        vocab_size = len(pre["vocab"])
        splits = {name: (x[i], y[i]) for name, i in idx.items()}
    elif table.files is not None:  # streamed images (data.cache): decoded per batch, see dlcli/data/stream.py
        from dlcli.data.stream import prepare_streamed

        splits = prepare_streamed(table.files, y, idx, cfg, pre, fitted)
    else:
        x = table.x
        if table.columns is not None:  # a CSV's raw cells: encoding fitted on the train rows (data/columns.py)
            from dlcli.data.columns import keep_one_hot, prepare_columns

            x = prepare_columns(table, idx["train"], fitted, pre)  # (N, F) cells -> (N, F') floats
        if (fitted.get("rows_as_series", False) if fitted is not None else series) and x.ndim == 2:
            pre["rows_as_series"] = True  # re-applied to new inputs by transform_inputs
            x = as_series(x)
        image = image_options(cfg, x, cfg["name"])
        x = convert_images(x, image)
        if fitted is not None:
            _check_fits(fitted, x.shape[1:])
            scaler = fitted["scaling"]
        else:
            train = padding.as_missing(x[idx["train"]], padding.take(table.lengths, idx["train"]))  # padding: NaN
            # variable-length sequences: a step's position means something else in each sequence, so
            # `standard` scales each feature over all real steps instead of each (step, feature) position;
            # so it does for a model that reads series: scaling each step apart would bend every curve's shape
            # (FCN on ItalyPowerDemand, seeds 0-2: 0.895 scaled per step, 0.957 per feature; README)
            per_feature = table.lengths is not None or (series and x.ndim == 3)
            method = "channel" if per_feature and cfg["scaling"] == "standard" else cfg["scaling"]
            scaler = fit_scaler(train, method, cfg.get("channel_mean"), cfg.get("channel_std"))
            if pre.get("columns"):
                scaler = keep_one_hot(scaler, pre["columns"])  # one-hot columns stay 0/1
        if image:
            pre["image"] = image
        if fitted is None:  # what new inputs are checked against before prediction (dlcli/data/drift.py)
            from dlcli.data.drift import input_range

            pre["input_range"] = input_range(padding.as_missing(x[idx["train"]],
                                                                padding.take(table.lengths, idx["train"])),
                                             (pre.get("columns") or {}).get("encoded_names") or table.feature_names)
        elif fitted.get("input_range") is not None:
            pre["input_range"] = fitted["input_range"]
        pre["scaling"] = scaler
        splits = {name: (padding.scaled(apply_scaler(x[i], scaler), padding.take(table.lengths, i)), y[i])
                  for name, i in idx.items()}
        if table.lengths is not None:
            pre["variable_length"] = padding.saved(table.lengths, cfg.get("pad_value"))
    in_shape = tuple(splits["train"][0].shape[1:])
    pre["input_shape"] = list(in_shape)
    pre.update(spec.fit_targets(y[idx["train"]], cfg))
    out_features = spec.out_features(in_shape, y, class_names, embedding_dim)
    pre["out_features"] = out_features
    return Prepared(spec.name, splits, in_shape, out_features, class_names, pre, vocab_size,
                    padding.split_lengths(table.lengths, idx), padding.split_lengths(table.offset, idx), idx)
