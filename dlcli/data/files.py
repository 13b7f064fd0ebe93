"""Datasets from a user's own files: CSV tables and NumPy .npz arrays."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

from dlcli.data.columns import NA_VALUES
from dlcli.data.table import Table
from dlcli.errors import DataError
from dlcli.registry import DATASETS, did_you_mean


def _existing(path: str, what: str, key: str) -> Path:
    """The data file at ``path``; a DataError naming it and ``data.<key>`` if it is missing, a folder or
    unreadable."""
    import os

    p = Path(path).expanduser()
    if p.is_dir():
        raise DataError(f"'{path}' (data.{key}) is a folder, not a {what} file. "
                        f"Give a file in it: data.{key}={Path(path) / ('<file>.' + what.lower())}")
    if not p.is_file():
        raise DataError(f"{what} file not found: '{path}' (data.{key}). "
                        f"Give an existing file: data.{key}=/path/to/file")
    if not os.access(p, os.R_OK):
        raise DataError(f"cannot read {what} file '{path}' (data.{key}): permission denied. "
                        "Make it readable (chmod +r), or copy it somewhere you can read")
    return p


def read_text(p: Path, path: str, key: str) -> str:
    """A text file's content (UTF-8, with or without a byte-order mark); DataError if it is not text."""
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise DataError(f"'{path}' (data.{key}) is not UTF-8 text: byte {e.object[e.start]:#04x} on line {line}. "
                        "Save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`); if it is not a "
                        "CSV file at all, give the right file") from None
    except OSError as e:
        raise DataError(f"cannot read '{path}' (data.{key}): {e.strerror or e}") from None


def csv_rows(path: str, delimiter: str, key: str = "path", header: bool = True) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank row of a CSV file, the header first (unless ``header`` is False).

    DataError when the file is missing, unreadable, not UTF-8 text, not parseable, or has no data row.
    """
    import csv as csvlib
    import io

    delimiter = {"\\t": "\t"}.get(delimiter, delimiter)  # data.delimiter='\t' on a command line is a tab
    if len(delimiter) != 1:
        raise DataError(f"data.delimiter must be one character, got {delimiter!r}: e.g. data.delimiter=';' "
                        "(a tab: data.delimiter='\\t')")
    p = _existing(path, "CSV", key)
    text = read_text(p, path, key)
    reader = csvlib.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        # the reader's line_num after a row is where that row ends: a quoted field may span lines
        rows = [(reader.line_num, r) for r in reader if any(cell.strip() for cell in r)]
    except csvlib.Error as e:
        raise DataError(f"malformed CSV '{path}' near line {reader.line_num}: {e}. Check the delimiter "
                        f"(data.delimiter='{delimiter}') and quoting") from None
    if not rows:
        raise DataError(f"CSV file '{path}' (data.{key}) is empty: it needs a header row and at least one data row")
    if len(rows) < 2 and header:
        raise DataError(f"CSV file '{path}' (data.{key}) has a header row but no data rows")
    return rows


@DATASETS.register()
def csv(seed: int, path: str, target: int | str, features: list[int | str] | None = None, delimiter: str = ",",
        header: bool = True, categorical: list[int | str] | None = None, numeric: list[int | str] | None = None,
        na_values: list[str] = NA_VALUES, missing: Literal["error", "drop", "impute"] = "impute",
        max_categories: int = 50, group: str | None = None):
    """A CSV table: one target column; numeric, categorical and text columns, with missing values."""
    from dlcli.data.columns import read_table

    numbered = csv_rows(path, delimiter, header=header)  # blank lines carry nothing and are left out
    lines, rows = [n for n, _ in numbered], [r for _, r in numbered]
    if header:
        names, lines, rows = [h.strip() for h in rows[0]], lines[1:], rows[1:]
    else:  # header-less: the columns are named by position, "0".."N-1" (data.target=0 works)
        names = [str(i) for i in range(len(rows[0]))]
    for lineno, row in zip(lines, rows, strict=True):
        if len(row) != len(names):
            raise DataError(f"malformed CSV '{path}': row {lineno} has {len(row)} fields, the "
                            f"{'header' if header else 'first row'} has {len(names)}. Check the delimiter "
                            f"(data.delimiter='{delimiter}') and quoting")
    return read_table(f"'{path}'", names, rows, lines, str(target), _named(features), _named(categorical),
                      _named(numeric), list(na_values), missing, max_categories, header, group)


def _named(columns: list[int | str] | None) -> list[str] | None:
    """Column names as text: header-less files name their columns by position, given as numbers."""
    return None if columns is None else [str(n) for n in columns]


@DATASETS.register()
def npz(seed: int, path: str, x_key: str = "x", y_key: str = "y"):
    """A NumPy .npz file holding an input array and a target array."""
    import numpy as np

    p = _existing(path, "NPZ", "path")
    try:
        arrays = np.load(p, allow_pickle=False)  # never unpickle a data file
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"cannot read '{path}' (data.path) as a .npz file: {e}. Save it with "
                        "np.savez(path, x=inputs, y=targets)") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise DataError(f"'{path}' (data.path) is a single .npy array, not a .npz archive of inputs and targets. "
                        "Save both with np.savez(path, x=inputs, y=targets)")
    with arrays:
        for key, role in ((x_key, "x_key"), (y_key, "y_key")):
            if key not in arrays.files:
                raise DataError(f"'{path}' has no array '{key}' (data.{role}).{did_you_mean(key, arrays.files)} "
                                f"Arrays: {', '.join(arrays.files)}")
        x, y = (_npz_array(arrays, key, role, path) for key, role in ((x_key, "x_key"), (y_key, "y_key")))
    if len(x) != len(y):
        raise DataError(f"'{path}': '{x_key}' has {len(x)} rows but '{y_key}' has {len(y)}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"'{path}': '{x_key}' must be numeric, got dtype {x.dtype}")
    return Table(x.astype(np.float32), y, None)


def _npz_array(arrays, key: str, role: str, path: str):
    try:
        return arrays[key]
    except ValueError as e:  # an object array: reading it would unpickle
        raise DataError(f"'{path}': array '{key}' (data.{role}) cannot be read: {e}. dlcli reads numeric and string "
                        "arrays only, never pickled Python objects: save it with a numeric dtype, e.g. "
                        "x.astype('float32')") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"'{path}' (data.path) is damaged: array '{key}' cannot be read ({e}). Save it again") from None
