"""The rows of one cross-validation fold: the test rows as without cv, then fold ``cv.fold`` of the rest.

Light on purpose (numpy; scikit-learn inside the functions): validation imports :func:`cv_problems`.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

from dlcli.errors import DataError

if TYPE_CHECKING:
    import numpy as np

    from dlcli.data.table import Table

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a folder name on every file system


def active(cv: dict | None) -> bool:
    """Whether a config's ``cv`` node makes this run a fold (``cv.folds`` set)."""
    return bool(cv and cv.get("folds"))


def cv_link(cfg: dict) -> dict[str, Any]:
    """``{"cv": {id, fold, folds, repeat, repeats, strategy}}`` for summary.json when the run is a fold, else ``{}``."""
    cv = cfg.get("cv")
    if not active(cv):
        return {}
    return {"cv": {k: cv[k] for k in ("id", "fold", "folds", "repeat", "repeats", "strategy")}}


def cv_problems(cv: dict, data: dict) -> list[tuple[str, str]]:
    """(key, message) for a ``cv`` node that cannot be run: a fold outside the folds, a group strategy without
    a column (or on data without columns), a validation file that no fold would use."""
    from dlcli.registry import DATASETS

    out: list[tuple[str, str]] = []
    folds, repeats = cv.get("folds"), cv.get("repeats")
    if cv.get("id") is not None and not _ID.fullmatch(str(cv["id"])):
        out.append(("cv.id", f"'{cv['id']}' is part of a folder name: use letters, digits, '.', '_' and '-' "
                             "(at most 100, starting with a letter or digit), e.g. cv.id=iris-mlp"))
    if folds is None:
        given = [k for k in ("fold", "repeat") if cv.get(k)]
        if given:
            out.append((f"cv.{given[0]}", f"cv.{given[0]} is set, but cv.folds is null (no cross-validation): "
                                          "set cv.folds=K too, or run `dlcli cv --folds K`"))
        return out
    for key, count, total in (("fold", folds, "folds"), ("repeat", repeats, "repeats")):
        value = cv.get(key)
        if isinstance(value, int) and isinstance(count, int) and value >= count:
            out.append((f"cv.{key}", f"cv.{key}={value} is not one of the {count} {total} (cv.{total}={count}): "
                                     f"they are numbered 0..{count - 1}"))
    strategy, group = cv.get("strategy"), cv.get("group")
    if strategy == "group":
        name = data.get("name")
        if group is None:
            out.append(("cv.group", "cv.strategy=group needs cv.group: the CSV column that holds each row's group "
                                    "(e.g. cv.group=patient_id); no group is then in both a fold's training and "
                                    "validation rows"))
        elif name in DATASETS and "group" not in inspect.signature(DATASETS.get(name).fn).parameters:
            out.append(("cv.strategy", f"cv.strategy=group reads groups from a column (cv.group), and data '{name}' "
                                       "has no columns: use a CSV (data=csv data.path=...) with a column of groups, "
                                       "or cv.strategy=stratified"))
    elif group is not None:
        out.append(("cv.group", f"cv.group is read only by cv.strategy=group (now {strategy}): add "
                                "cv.strategy=group, or remove cv.group"))
    if strategy == "timeseries" and isinstance(repeats, int) and repeats > 1:
        out.append(("cv.repeats", "a time-series split has no randomness: every repeat would give the same folds. "
                                  "Use cv.repeats=1"))
    for key in ("val_path", "val_root"):
        if data.get(key):
            out.append((f"data.{key}", f"under cross-validation each fold is the validation split, so data.{key} "
                                       "would never be used: remove it, or add its rows to the training file"))
    return out


def fold_indices(y: np.ndarray, table: Table, cv: dict, test_fraction: float, seed: int,
                 stratify: bool) -> tuple[dict[str, np.ndarray], str]:
    """(split -> rows, how the folds were made) for fold ``cv.fold`` of repeat ``cv.repeat``.

    The test rows are chosen first, exactly as without cross-validation (a test file's rows, the dataset's own,
    or ``test_fraction`` carved with ``seed``; the latest rows for time series), so every fold of every repeat
    holds out the same rows. The rest (data.val_fraction is not used: the fold is the validation split; a
    dataset's own validation rows join the pool) is split into ``cv.folds`` folds by ``cv.strategy``, shuffled
    with ``seed + cv.repeat``; ``timeseries`` validates each fold on rows later than all its training rows.
    """
    import numpy as np
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

    from dlcli.data.prepare import split_indices

    strategy, folds, fold, repeat = cv["strategy"], cv["folds"], cv["fold"], cv["repeat"]
    if table.ordered and strategy != "timeseries":
        raise DataError(f"the rows of this data follow time (forecasting windows): cv.strategy={strategy} would "
                        "validate on the past of its training rows. Use cv.strategy=timeseries")
    ordered = table.ordered or strategy == "timeseries"
    fixed = table.split
    if fixed is not None and (fixed == "val").any():  # the dataset's own (or a recorded fold's) val rows: pooled
        fixed = np.where(fixed == "val", "train", fixed)
    carved = split_indices(y, 0.0, test_fraction, seed, stratify, ordered, fixed)
    test = carved.get("test", np.array([], dtype=np.int64))
    pool = np.setdiff1d(np.arange(len(y)), test)  # (P,) the rows the folds share out, in row order
    rng = seed + repeat
    if strategy == "stratified" and stratify:
        how, splitter, args = "stratified", StratifiedKFold(folds, shuffle=True, random_state=rng), (y[pool],)
    elif strategy in ("stratified", "kfold"):  # regression, multi-label, data.stratify=false: no classes to balance
        how, splitter, args = "kfold", KFold(folds, shuffle=True, random_state=rng), ()
    elif strategy == "group":
        groups = table.groups[pool]
        how = f"groups of '{cv['group']}'"
        splitter, args = GroupKFold(folds, shuffle=True, random_state=rng), (None, groups)
    else:
        how, splitter, args = "timeseries", TimeSeriesSplit(folds), ()
    try:
        train_pos, val_pos = list(splitter.split(pool, *args))[fold]
    except ValueError as e:
        hint = {"group": f" cv.strategy=group needs at least cv.folds={folds} distinct groups."}.get(strategy, "")
        raise DataError(f"cannot split the {len(pool)} rows outside the test split into {folds} folds "
                        f"(cv.strategy={strategy}): {str(e).rstrip('.')}.{hint} Use fewer cv.folds") from None
    out = {"train": pool[train_pos], "val": pool[val_pos]}
    if len(test):
        out["test"] = test
    return {k: np.sort(v) for k, v in out.items()}, how


def fold_record(idx: dict[str, np.ndarray], table: Table, cfg: dict, seed: int, cv: dict,
                how: str) -> dict[str, Any]:
    """preprocessing.json's ``split_sources`` and ``split_indices`` for a fold, as :func:`split_record` does."""
    from dataclasses import replace

    from dlcli.data.splits import describe_sources, encode_membership

    timed = replace(table, ordered=table.ordered or cv["strategy"] == "timeseries")  # its test rows: the latest
    sources = describe_sources({k: v for k, v in idx.items() if k != "val"}, timed, {**cfg, "val_fraction": 0.0},
                               seed)
    fold = (f"fold {cv['fold']} of folds 0-{cv['folds'] - 1} ({how}, repeat {cv['repeat']}"
            + (f", seed {seed + cv['repeat']}" if how != "timeseries" else "") + ")")
    sources["train"] = f"{sources['train']}, less {fold}"
    return {"split_sources": {"train": sources["train"], "val": fold,
                              **{k: v for k, v in sources.items() if k == "test"}},
            "split_indices": encode_membership(idx, len(table.y))}
