"""CSV columns as they come: typed (numeric, categorical, text), with missing values, one-hot encoded.

The CSV loader reads the cells and decides each column's type (:func:`read_table`); ``prepare`` fits
the encoding on the train split only (:func:`fit_columns`: medians, category lists, the one-hot layout)
and saves it as plain data under ``preprocessing["columns"]``; :func:`encode_columns` turns raw records
(strings, numbers, missing cells) into a float matrix with it, in training, eval, predict and export alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlcli.data.table import Table
from dlcli.errors import DataError
from dlcli.registry import did_you_mean

# the cells read as "no value" by default (data.na_values); matched exactly, after stripping spaces
NA_VALUES = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
MISSING = "<missing>"  # the category of a missing cell (data.missing=impute)
CATEGORY_SHARE = 0.5  # a non-numeric column is categorical when at most this share of its cells are distinct


def column_positions(names: list[str], source: str) -> dict[str, int]:
    """Each column name's position in a header row, built once (a lookup per column stays linear in the width).

    DataError naming ``source`` and every name the header holds twice: a lookup by name would silently
    read the first of them for each.
    """
    from collections import Counter

    positions = {name: i for i, name in enumerate(names)}
    if len(positions) < len(names):
        twice = [name for name, n in Counter(names).items() if n > 1]
        others = ", ".join(repr(n) for n in twice[1:10]) + (f" and {len(twice) - 10} more" if len(twice) > 10 else "")
        raise DataError(f"CSV {source} has two columns named '{twice[0]}' in its header row"
                        + (f" (and so do {others})" if others else "") + ": a column is read by its name, so "
                        "each name must be unique. Rename them. If the file has no header row, add "
                        "data.header=false (columns are then named 0..N-1)")
    return positions


def columns_list(names: list[str], limit: int = 20) -> str:
    """The first ``limit`` column names for a message (a wide file would print a megabyte of them)."""
    return ", ".join(names[:limit]) + (f", ... ({len(names)} columns)" if len(names) > limit else "")


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_table(source: str, names: list[str], rows: list[list[str]], lines: list[int], target: str,
               features: list[str] | None, categorical: list[str] | None, numeric: list[str] | None,
               na_values: list[str], missing: str, max_categories: int, header: bool,
               group: str | None = None, exclude: list[str] | None = None) -> Table:
    """A CSV's cells (``rows`` under the column ``names``) as a Table of typed raw columns.

    Rows whose target is missing are dropped (with a note); numeric columns become floats (NaN where
    missing), categorical ones stay strings (None where missing); text columns are left out with a note.
    ``missing`` (error | drop | impute) says what a missing feature cell does; impute happens in prepare.
    ``group`` (cv.group) names a column read as each row's group (``Table.groups``), never as a feature.
    ``exclude``: columns that are not features when ``features`` is not given (every other column is).
    """
    na, notes = set(na_values), []
    position = column_positions(names, source)  # refuses a name given twice
    if header:
        if all(_number(n) is not None for n in names):
            notes.append(f"the header row of {source} is all numbers ({', '.join(names[:5])}...): if it is data, "
                         "add data.header=false (columns are then named 0..N-1)")
    for key, wanted in (("target", [target]), ("features", features), ("categorical", categorical),
                        ("numeric", numeric), ("exclude", exclude)):
        for name in wanted or []:
            if name not in position:
                hint = " The file is read without a header (data.header=false): columns are 0.." \
                       f"{len(names) - 1}" if not header else \
                       (" Is the file header-less? Add data.header=false" if name.isdigit() else "")
                raise DataError(f"CSV {source} has no column '{name}' (data.{key}).{did_you_mean(name, names)} "
                                f"Columns: {columns_list(names)}.{hint}")
    if group is not None:
        _check_group(source, group, target, names, position, features, categorical, numeric, header)
    both = sorted(set(categorical or []) & set(numeric or []))
    if both:
        raise DataError(f"column '{both[0]}' is in both data.categorical and data.numeric: keep it in one")
    if target in (categorical or []) or target in (numeric or []):
        raise DataError(f"the target '{target}' is not a feature: remove it from data.categorical / data.numeric")
    if exclude and features is not None:
        raise DataError("data.exclude leaves columns out of the default features (every column); with "
                        "data.features listing them, leave it null")
    if target in (exclude or []):
        raise DataError(f"the target '{target}' is in data.exclude: it is never a feature; remove it from there")

    t = position[target]
    labels = [row[t].strip() for row in rows]
    gone = [i for i, v in enumerate(labels) if v in na]
    if gone:
        counts = {v: sum(labels[i] == v for i in gone) for v in dict.fromkeys(labels[i] for i in gone)}
        notes.append(f"dropped {len(gone)} of {len(rows)} rows whose target '{target}' is missing ("
                     + ", ".join(f"{v!r}: {n}" for v, n in counts.items()) + "); they are never made a class")
        keep = [i for i in range(len(rows)) if labels[i] not in na]
        if not keep:
            raise DataError(f"CSV {source}: every row's target '{target}' is missing (data.na_values)")
        rows, lines, labels = [rows[i] for i in keep], [lines[i] for i in keep], [labels[i] for i in keep]

    explicit = set(features or [])  # named in data.features: a text column there is refused, not left out
    left_out = {target, group, *(exclude or [])}
    features = list(features) if features is not None else [n for n in names if n not in left_out]
    if not features:
        raise DataError(f"CSV {source} has no feature columns besides the target '{target}'")
    types: dict[str, str] = {}
    cells: dict[str, list[str]] = {}
    categorical_set, numeric_set = set(categorical or []), set(numeric or [])
    for name in features:
        at = position[name]
        col = [row[at].strip() for row in rows]
        cells[name] = col
        given = "categorical" if name in categorical_set else "numeric" if name in numeric_set else None
        types[name] = given or _infer(name, col, na, max_categories, notes)
    text = [n for n in features if types[n] == "text"]
    for name in text:
        if name in explicit:
            distinct = len({c for c in cells[name] if c not in na})
            raise DataError(f"column '{name}' (data.features) looks like free text or IDs ({distinct} distinct "
                            f"values in {len(rows)} rows): to one-hot it anyway add data.categorical=[{name}], "
                            "or leave it out of data.features. If it holds numbers and a few words that mark "
                            f"missing values, add those to data.na_values, or set data.numeric=[{name}]")
    if text:
        notes.append(f"left out {len(text)} text column(s) (free text or IDs, too many distinct values to be "
                     f"categories): {', '.join(text)}. To one-hot one anyway: data.categorical=[{text[0]}]")
    features = [n for n in features if types[n] != "text"]
    if not features:
        raise DataError(f"CSV {source}: no usable feature column (every one is text). Name the categorical ones: "
                        f"data.categorical=[{text[0]}]")

    values = {n: _typed(source, n, cells[n], types[n], na, lines) for n in features}
    counters = [n for n in features if types[n] == "numeric" and n not in numeric_set and n not in explicit
                and _counts_rows(values[n])]
    if counters:
        first, many, named = values[counters[0]], len(counters) > 1, ", ".join(repr(n) for n in counters)
        notes.append(f"column{'s' * many} {named} count{'' if many else 's'} the rows ({first[0]:g}, "
                     f"{first[1]:g}, ..., {first[-1]:g} in file order): a row number tells the model nothing "
                     "about a row (and, in a file sorted by time or by class, something it should not learn). "
                     f"If it is an id, leave it out: data.exclude=[{counters[0]}]")
    holes = np.zeros(len(rows), dtype=bool)
    for name in features:
        gaps = [i for i, c in enumerate(cells[name]) if c in na]  # a list: no array per column of a wide file
        if gaps and missing == "error":
            i = gaps[0]
            what = "is empty" if cells[name][i] == "" else "is a missing value (data.na_values)"
            raise DataError(f"CSV {source}, row {lines[i]}, column '{name}': {cells[name][i]!r} {what} and "
                            "data.missing=error. Fill it in, or set data.missing=impute (median; a "
                            f"'{MISSING}' category) or data.missing=drop (drop such rows)")
        holes[gaps] = True
    if missing == "drop" and holes.any():
        touched = [n for n in features if any(cells[n][i] in na for i in np.flatnonzero(holes))]
        notes.append(f"dropped {int(holes.sum())} of {len(rows)} rows with a missing feature value (data.missing="
                     f"drop; columns {', '.join(touched)})")
        if holes.all():
            raise DataError(f"CSV {source}: every row has a missing feature value; data.missing=drop leaves "
                            "nothing. Use data.missing=impute")
        values = {n: col[~holes] for n, col in values.items()}
        rows = [v for v, h in zip(rows, holes, strict=True) if not h]
        labels = [v for v, h in zip(labels, holes, strict=True) if not h]
        lines = [v for v, h in zip(lines, holes, strict=True) if not h]
    if all(types[n] == "numeric" for n in features):
        x = np.array([values[n] for n in features], dtype=np.float32).T.reshape(len(labels), len(features))
    else:  # (N, F) cells: floats (NaN: missing) for numeric columns, strings (None: missing) for categorical
        x = np.empty((len(labels), len(features)), dtype=object)
        for j, name in enumerate(features):
            x[:, j] = values[name]
    y = _targets(source, target, labels, lines)
    if y.dtype.kind in "US":  # class names: spellings of one class, and marks that may mean "missing"
        notes += _label_notes(target, labels)
    spec = {"types": {n: types[n] for n in features}, "na_values": list(na_values), "missing": missing,
            "header": header, "n_columns": len(names), "notes": notes}
    groups = None
    if group is not None:
        groups = np.array([row[position[group]].strip() for row in rows], dtype=object)
        empty = [i for i, g in enumerate(groups) if g in na]
        if empty:
            raise DataError(f"CSV {source}, row {lines[empty[0]]}: the group column '{group}' (cv.group) is empty or "
                            f"missing ({groups[empty[0]]!r}) in {len(empty)} row(s); every row needs its group. "
                            "Fill them in, or drop those rows")
    return Table(x, y, None, None, features, columns=spec, groups=groups)


def _check_group(source: str, group: str, target: str, names: list[str], position: dict[str, int],
                 features: list[str] | None, categorical: list[str] | None, numeric: list[str] | None,
                 header: bool) -> None:
    """cv.group must be a column of the file, and neither the target nor a feature (a model that sees the
    group could recognise the group rather than learn what generalises across groups)."""
    if group not in position:
        hint = " The file is read without a header (data.header=false): columns are 0.." \
               f"{len(names) - 1}" if not header else ""
        raise DataError(f"CSV {source} has no column '{group}' (cv.group).{did_you_mean(group, names)} "
                        f"Columns: {columns_list(names)}.{hint}")
    if group == target:
        raise DataError(f"cv.group '{group}' is the target (data.target): the groups must be another column")
    for key, listed in (("features", features), ("categorical", categorical), ("numeric", numeric)):
        if group in (listed or []):
            raise DataError(f"cv.group '{group}' is in data.{key} too: a group id must not be a feature "
                            f"(the model would learn the groups). Remove it from data.{key}")


def _infer(name: str, col: list[str], na: set[str], max_categories: int, notes: list[str]) -> str:
    """numeric when every present cell is a number; categorical when it has few distinct values; else text."""
    present = [c for c in col if c not in na]
    if not present:
        notes.append(f"column '{name}' holds no value at all: read as numeric (imputed, or dropped by "
                     "data.missing=drop); leave it out with data.features=[...]")
        return "numeric"
    try:
        np.array(present, dtype=object).astype(np.float64)  # every cell a number: numeric (parsed at once)
        return "numeric"
    except ValueError:
        words = []  # the cells that are not numbers, up to a few more than 5% of them
        for c in present:
            if _number(c) is None:
                words.append(c)
                if len(words) > 0.05 * len(present):
                    break
    distinct = len(set(present))
    kind = "categorical" if distinct <= max_categories and distinct <= CATEGORY_SHARE * len(present) else "text"
    if len(words) <= 0.05 * len(present):  # almost all numbers: likely missing-value markers or typos
        examples = ", ".join(repr(w) for w in list(dict.fromkeys(words))[:3])
        notes.append(f"column '{name}' is mostly numbers but holds {examples}: read as {kind}. If those mark "
                     f"missing values, add them to data.na_values; to force numbers: data.numeric=[{name}]")
    return kind


def _typed(source: str, name: str, col: list[str], kind: str, na: set[str], lines: list[int]) -> np.ndarray:
    """A column's cells as floats (NaN where missing) or strings (None where missing); bad numbers refused."""
    if kind == "categorical":
        return np.array([None if c in na else c for c in col], dtype=object)
    hole = np.array([c in na for c in col], dtype=bool)
    try:  # numpy parses the whole column at once; a cell that is not a number is looked for below
        values = np.array(col, dtype=object)
        values[hole] = "nan"
        values = values.astype(np.float64)
    except ValueError:
        values = np.array([math.nan if h else (_number(c) if _number(c) is not None else math.inf)
                           for c, h in zip(col, hole, strict=True)])
    bad = ~np.isfinite(values) & ~hole
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "is not a number" if _number(col[i]) is None else "is not a finite number"
        raise DataError(f"CSV {source}, row {lines[i]}, column '{name}': {col[i]!r} {what}. Feature column "
                        f"'{name}' is numeric: declare it data.categorical=[{name}], mark such cells as "
                        "missing with data.na_values, or leave the column out with data.features=[...]")
    return values


def _targets(source: str, target: str, labels: list[str], lines: list[int]) -> np.ndarray:
    """Numbers when every label is one (finite), else strings (classes)."""
    try:
        y = np.array([float(v) for v in labels])
    except ValueError:
        return np.array(labels)  # string labels: classes, mapped to ids later
    if not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise DataError(f"CSV {source}, row {lines[i]}: the target column '{target}' holds "
                        f"{labels[i]!r}, not a finite number. Fill it in or drop the row")
    return y


def _counts_rows(values: np.ndarray) -> bool:
    """Whether a numeric column is a row number: 20 or more rows of whole numbers, each greater than the row
    before, and hardly any skipped (rows dropped for a missing target leave gaps)."""
    if len(values) < 20 or not np.isfinite(values).all() or not (values == np.round(values)).all():
        return False
    steps = np.diff(values)
    return bool((steps >= 1).all()) and float(values[-1] - values[0]) <= 1.1 * (len(values) - 1)


def _label_notes(target: str, labels: list[str]) -> list[str]:
    """Notes on a target's class names that look like mistakes in the file: names that differ only in case
    (``Yes`` / ``yes``: two classes to the model), and names without a letter or digit (``?``, ``-``), which
    often mark a missing value."""
    from collections import Counter

    counts = Counter(labels)
    spellings: dict[str, list[str]] = {}
    for name in counts:
        spellings.setdefault(name.casefold(), []).append(name)
    notes = []
    alike = [sorted(names) for names in spellings.values() if len(names) > 1]
    if alike:
        shown = ", ".join(" / ".join(f"{n!r} ({counts[n]} rows)" for n in names) for names in sorted(alike)[:5])
        notes.append(f"the target '{target}' has classes that differ only in case: {shown}. Each is a class of its "
                     "own to the model; if they mean the same, write them alike in the file")
    marks = sorted(n for n in counts if not any(ch.isalnum() for ch in n))
    if marks:
        shown = ", ".join(f"{n!r} ({counts[n]} rows)" for n in marks[:5])
        notes.append(f"the target '{target}' has classes with no letter or digit: {shown}. If they mark a missing "
                     "value, add them to data.na_values and those rows are dropped")
    return notes


def _is_missing(cell: Any, na: set[str]) -> bool:
    if cell is None:
        return True
    if isinstance(cell, str):
        return cell.strip() in na
    return isinstance(cell, (float, np.floating)) and math.isnan(cell)


def _key(cell: Any) -> str:
    """A categorical cell as its category: text as written; a number read from an array as it prints (3.0 -> 3)."""
    if isinstance(cell, str):
        return cell.strip()
    value = cell.item() if hasattr(cell, "item") else cell
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fit_columns(x: np.ndarray, names: list[str], spec: dict[str, Any], train: np.ndarray) -> dict[str, Any]:
    """The encoding of raw cells (N, F), fitted on the ``train`` rows: medians, categories, one-hot layout."""
    na, impute = set(spec["na_values"]), spec["missing"] == "impute"
    fill: dict[str, float] = {}
    categories: dict[str, list[str]] = {}
    encoded: list[str] = []
    for j, name in enumerate(names):
        col = x[train, j]
        if spec["types"][name] == "numeric":
            present = np.array([float(c) for c in col if not _is_missing(c, na)], dtype=np.float64)
            fill[name] = float(np.median(present)) if len(present) else 0.0
            encoded.append(name)
        else:
            cats = sorted({_key(c) for c in col if not _is_missing(c, na)})
            if impute and any(_is_missing(c, na) for c in col):
                cats.append(MISSING)
            categories[name] = cats
            encoded += [f"{name}={c}" for c in cats]
    if not encoded:
        raise DataError("no feature is left to learn from: every categorical column is empty in the train split")
    return {"names": list(names), "types": [spec["types"][n] for n in names], "na_values": spec["na_values"],
            "missing": spec["missing"], "fill": fill, "categories": categories, "encoded_names": encoded,
            "one_hot": [name not in fill for name in encoded], "header": spec.get("header", True),
            "n_columns": spec.get("n_columns")}


def encode_columns(x: Any, enc: dict[str, Any], lines: list[int] | None = None,
                   source: str = "the inputs") -> np.ndarray:
    """Raw records (N, F) in the run's column order -> (N, F') float32: numbers (missing: the train median),
    then a one-hot block per categorical column (missing: '<missing>'; a value unseen in training: all zeros).

    With data.missing error or drop, a missing cell is refused (a run cannot drop a row it is asked about).
    """
    x = np.asarray(x, dtype=object if not isinstance(x, np.ndarray) else None)
    names, na = enc["names"], set(enc["na_values"])
    if x.ndim != 2 or x.shape[1] != len(names):
        raise DataError(f"{source} holds rows of {x.shape[1:] if x.ndim > 1 else 'single values'}; the run takes "
                        f"{len(names)} columns: {', '.join(names)}")
    impute = enc["missing"] == "impute"
    out = np.zeros((len(x), len(enc["encoded_names"])), dtype=np.float32)
    k = 0
    for j, (name, kind) in enumerate(zip(names, enc["types"], strict=True)):
        col = x[:, j]
        if kind == "numeric":
            if col.dtype.kind == "f":  # already numbers (NaN: missing): fast path
                values = col.astype(np.float64)
                hole = np.isnan(values)
            else:
                values, hole = np.empty(len(col)), np.zeros(len(col), dtype=bool)
                for i, c in enumerate(col):
                    if _is_missing(c, na):
                        hole[i] = True
                        continue
                    v = _number(c) if isinstance(c, str) else float(c)
                    if v is None or not math.isfinite(v):
                        raise DataError(f"{source}, row {lines[i] if lines else i}, column '{name}': {c!r} is not "
                                        f"{'a number' if v is None else 'a finite number'}")
                    values[i] = v
            if hole.any() and not impute:
                _refuse(source, name, int(np.flatnonzero(hole)[0]), lines, enc["missing"])
            out[:, k] = np.where(hole, enc["fill"][name], values)
            k += 1
        else:
            cats = enc["categories"][name]
            index = {c: i for i, c in enumerate(cats)}
            for i, c in enumerate(col):
                if _is_missing(c, na):
                    if not impute:
                        _refuse(source, name, i, lines, enc["missing"])
                    pos = index.get(MISSING)  # a column without missing cells in training: all zeros
                else:
                    pos = index.get(_key(c))  # unseen in training: all zeros
                if pos is not None:
                    out[i, k + pos] = 1.0
            k += len(cats)
    return out


def _refuse(source: str, name: str, i: int, lines: list[int] | None, policy: str) -> None:
    raise DataError(f"{source}, row {lines[i] if lines else i}, column '{name}': a missing value, and the run was "
                    f"trained with data.missing={policy}. Fill it in (runs trained with data.missing=impute fill "
                    "missing cells themselves)")


def missing_note(x: np.ndarray, enc: dict[str, Any]) -> str | None:
    """'imputed N cells in M rows (columns a, b)', or None when no cell was missing."""
    if enc["missing"] != "impute":
        return None
    na = set(enc["na_values"])
    holes = np.array([[_is_missing(c, na) for c in row] for row in x], dtype=bool).reshape(x.shape)
    if not holes.any():
        return None
    touched = [n for n, hit in zip(enc["names"], holes.any(axis=0), strict=True) if hit]
    return (f"imputed {int(holes.sum())} missing cells in {int(holes.any(axis=1).sum())} of {len(x)} rows (columns "
            f"{', '.join(touched)}): numbers with the train split's median, categories as '{MISSING}' "
            "(data.missing=impute)")


def unseen_note(x: np.ndarray, enc: dict[str, Any]) -> str | None:
    """'N rows hold category values the train split never had (city: paris x12)', or None.

    Such cells are encoded as all zeros in their column's one-hot block: the model has never seen them.
    """
    na, rows, found = set(enc["na_values"]), set(), []
    for j, (name, kind) in enumerate(zip(enc["names"], enc["types"], strict=True)):
        if kind != "categorical":
            continue
        known = set(enc["categories"][name])
        counts: dict[str, int] = {}
        for i, c in enumerate(x[:, j]):
            if not _is_missing(c, na) and _key(c) not in known:
                counts[_key(c)] = counts.get(_key(c), 0) + 1
                rows.add(i)
        if counts:
            shown = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
            found.append(f"{name}: " + ", ".join(f"{v} x{n}" for v, n in shown) + (", ..." if len(counts) > 5 else ""))
    if not found:
        return None
    return (f"{len(rows)} row{'s' * (len(rows) != 1)} outside the train split hold{'s' * (len(rows) == 1)} "
            f"category values it never had, encoded as all zeros "
            f"in their one-hot block ({'; '.join(found)})")


def prepare_columns(table: Table, train: np.ndarray, fitted: dict[str, Any] | None,
                    pre: dict[str, Any]) -> np.ndarray:
    """prepare's hook: raw cells -> floats with the encoding fitted on ``train`` (or the ``fitted`` run's).

    Sets ``pre["columns"]`` (the encoding) and ``pre["notes"]`` (what was dropped, left out, imputed).
    """
    names = list(table.feature_names or [])
    enc = (fitted or {}).get("columns")
    x = table.x
    if enc is not None:  # a run's own encoding (resuming, eval, fine-tuning): its columns, in its order
        position = {n: i for i, n in enumerate(names)}  # unique: read_table refuses a name given twice
        lacking = [n for n in enc["names"] if n not in position]
        if lacking:
            raise DataError(f"the data lacks {len(lacking)} of the run's feature columns: {', '.join(lacking[:20])}")
        x = x[:, [position[n] for n in enc["names"]]]
    else:
        enc = fit_columns(x, names, table.columns, train)
    notes = list(table.columns.get("notes") or [])
    notes += [n for n in (missing_note(x, enc), unseen_note(x, enc)) if n]
    pre["columns"], pre["notes"] = enc, [*pre.get("notes", []), *notes]
    return encode_columns(x, enc)


def keep_one_hot(scaler: dict[str, Any], enc: dict[str, Any]) -> dict[str, Any]:
    """A fitted scaler that leaves the one-hot columns as 0/1 indicators (scaling numeric columns only)."""
    flags = enc["one_hot"]
    if scaler["method"] == "standard":
        scaler["mean"] = [0.0 if f else v for v, f in zip(scaler["mean"], flags, strict=True)]
        scaler["std"] = [1.0 if f else v for v, f in zip(scaler["std"], flags, strict=True)]
    elif scaler["method"] in ("minmax", "symmetric"):
        scaler["min"] = [0.0 if f else v for v, f in zip(scaler["min"], flags, strict=True)]
        scaler["max"] = [1.0 if f else v for v, f in zip(scaler["max"], flags, strict=True)]
    return scaler


def plain_numbers(table: Table, name: str) -> np.ndarray:
    """A CSV's cells as a float matrix, for a run trained on numbers only (no column encoding saved)."""
    if table.x.dtype != object:
        return table.x
    for j, column in enumerate(table.feature_names or []):
        if table.columns["types"].get(column) != "numeric":
            sample = next((c for c in table.x[:, j] if c is not None), None)
            raise DataError(f"{name}: column '{column}' holds text such as {sample!r}, but the run was trained on "
                            "numbers only. Give numeric columns, or leave it out with data.features=[...]")
    return table.x.astype(np.float32)


def run_types(data: dict[str, Any], params: dict[str, Any], enc: dict[str, Any]) -> dict[str, Any]:
    """``data`` config for reading new data for a run: the run's column types, unless the overrides name some."""
    if "categorical" not in params or "numeric" not in params or data.get("categorical") or data.get("numeric"):
        return data
    kinds = dict(zip(enc["names"], enc["types"], strict=True))
    return {**data, "categorical": [n for n, k in kinds.items() if k == "categorical"] or None,
            "numeric": [n for n, k in kinds.items() if k == "numeric"] or None}


def csv_records(rows: list[list[str]], enc: dict[str, Any], target: Any, source: str) -> tuple[np.ndarray, list[int]]:
    """A CSV's rows (``rows[0]`` the header, unless the run's file had none) as raw records (N, F) in the run's
    column order, with their line numbers; extra columns (e.g. the target) are ignored.

    A header-less file gives either every column of the training file, or all but the target.
    """
    names = enc["names"]
    if enc.get("header", True):
        header, body, first = [h.strip() for h in rows[0]], rows[1:], 2
        position = column_positions(header, source)
        lacking = [n for n in names if n not in position]
        if lacking:
            raise DataError(f"{source} lacks {len(lacking)} of the run's feature columns: {', '.join(lacking[:20])}. "
                            f"The run was trained on: {', '.join(names[:20])}")
        positions = [position[n] for n in names]
    else:
        body, first, width, total = rows, 1, len(rows[0]), enc.get("n_columns")
        if width == total:
            positions = [int(n) for n in names]
        elif total is not None and width == total - 1 and str(target).isdigit():  # the target column left out
            positions = [int(n) - (int(n) > int(target)) for n in names]
        else:
            raise DataError(f"{source} has {width} columns; the run's header-less file had {total} (with the "
                            f"target, column {target}): give rows of {total} or {(total or 1) - 1} columns")
        header = rows[0]
    for lineno, row in enumerate(body, start=first):
        if len(row) != len(header):
            raise DataError(f"malformed CSV {source}: row {lineno} has {len(row)} fields, the "
                            f"{'header' if enc.get('header', True) else 'first row'} has {len(header)}")
    cells = np.empty((len(body), len(names)), dtype=object)
    for i, row in enumerate(body):
        cells[i] = [row[p].strip() for p in positions]
    lines = list(range(first, first + len(body)))
    encode_columns(cells, enc, lines, source)  # refused cells are named by their line here, before the model runs
    return cells, lines
