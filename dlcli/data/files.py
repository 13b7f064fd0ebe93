"""Datasets from a user's own files: CSV tables and NumPy .npz arrays."""

from __future__ import annotations

from pathlib import Path

from dlcli.data.table import Table
from dlcli.errors import DataError
from dlcli.registry import DATASETS, did_you_mean


def _existing(path: str, what: str, key: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{what} file not found: '{path}' (data.{key}). "
                        f"Give an existing file: data.{key}=/path/to/file")
    return p


@DATASETS.register()
def csv(seed: int, path: str, target: str, features: list[str] | None = None, delimiter: str = ","):
    """A CSV file with a header row: one target column, numeric feature columns."""
    import csv as csvlib

    import numpy as np

    p = _existing(path, "CSV", "path")
    with p.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csvlib.reader(f, delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]  # blank lines carry nothing
    if len(rows) < 2:
        raise DataError(f"CSV file '{path}' needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"malformed CSV '{path}': row {lineno} has {len(row)} fields, the header has "
                            f"{len(header)}. Check the delimiter (data.delimiter='{delimiter}') and quoting")
    if target not in header:
        raise DataError(f"CSV '{path}' has no column '{target}' (data.target).{did_you_mean(target, header)} "
                        f"Columns: {', '.join(header)}")
    features = list(features) if features is not None else [h for h in header if h != target]
    for name in features:
        if name not in header:
            raise DataError(f"CSV '{path}' has no column '{name}' (data.features).{did_you_mean(name, header)}"
                            f" Columns: {', '.join(header)}")
    if not features:
        raise DataError(f"CSV '{path}' has no feature columns besides the target '{target}'")
    cols = [header.index(name) for name in features]
    x = np.empty((len(rows) - 1, len(cols)), dtype=np.float32)
    for i, row in enumerate(rows[1:]):
        for j, c in enumerate(cols):
            try:
                x[i, j] = float(row[c])
            except ValueError:
                what = "is empty (a missing value: fill it in or drop the row)" if not row[c].strip() \
                    else "is not a number"
                raise DataError(
                    f"CSV '{path}', row {i + 2}, column '{features[j]}': {row[c]!r} {what}. "
                    "Feature columns must be numeric: encode it, or leave the column out with "
                    "data.features=[...]"
                ) from None
    labels = [row[header.index(target)].strip() for row in rows[1:]]
    if any(v == "" for v in labels):
        line = next(i + 2 for i, v in enumerate(labels) if v == "")
        raise DataError(f"CSV '{path}', row {line}: the target column '{target}' is empty")
    try:
        y = np.array([float(v) for v in labels])
    except ValueError:
        y = np.array(labels)  # string labels: classes, mapped to ids later
    return Table(x, y, None, None, features)


@DATASETS.register()
def npz(seed: int, path: str, x_key: str = "x", y_key: str = "y"):
    """A NumPy .npz file holding an input array and a target array."""
    import numpy as np

    p = _existing(path, "NPZ", "path")
    try:
        arrays = np.load(p, allow_pickle=False)  # never unpickle a data file
    except (ValueError, OSError) as e:
        raise DataError(f"cannot read '{path}' as a .npz file: {e}") from None
    with arrays:
        for key, role in ((x_key, "x_key"), (y_key, "y_key")):
            if key not in arrays.files:
                raise DataError(f"'{path}' has no array '{key}' (data.{role}).{did_you_mean(key, arrays.files)} "
                                f"Arrays: {', '.join(arrays.files)}")
        x, y = arrays[x_key], arrays[y_key]
    if len(x) != len(y):
        raise DataError(f"'{path}': '{x_key}' has {len(x)} rows but '{y_key}' has {len(y)}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"'{path}': '{x_key}' must be numeric, got dtype {x.dtype}")
    return Table(x.astype(np.float32), y, None)
