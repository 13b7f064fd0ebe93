"""``predict(run, INPUT)``: a finished run's predictions for new inputs, one row per input.

INPUT is a CSV (the run's feature columns, by name), an NPZ (array ``x``), an image file or a
folder of images (read as the run's image data was), or a text file with one text per line (text
runs). Every input goes through the run's saved preprocessing before the model sees it.

Each kind of input has one reader shared by the files here and by ``dlcli serve``'s JSON bodies and
uploads: :func:`record_inputs` (a table's rows, column -> value), :func:`array_inputs` (arrays),
:func:`image_inputs` (image files or their bytes) and :func:`text_inputs` (texts). ``where(i, column)``
names a bad value's place in the messages: a CSV's row and column, or a JSON body's ``inputs[i].column``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from dlcli import startup
from dlcli.data.prepare import rows_text
from dlcli.errors import DataError, DlcliError
from dlcli.tasks import get_task
from dlcli.training.reload import LoadedRun

TEXTS = "the run's texts"
FLOAT32_MAX = float(np.finfo(np.float32).max)
# (input index, column) -> where that cell is, for error messages; column None: the whole input
Where = Callable[[int, "str | None"], str]


@dataclass
class Predictions:
    """One row per input: ``id``, ``prediction``, then one probability column per class (classification)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    source: str  # what INPUT was read as, e.g. "CSV 'new.csv' (12 rows)"
    carried: list[str] = field(default_factory=list)  # input columns carried into the rows (--keep-columns)
    notes: list[str] = field(default_factory=list)  # what reading the inputs did (e.g. cells imputed)


@dataclass
class Inputs:
    ids: list[Any]
    raw: Any  # arrays shaped as the run's dataset gave them, or a list of texts
    source: str
    # the input's own columns, one list of cells per input (a CSV's; a text file's texts), for --keep-columns
    carry: tuple[list[str], list[list[str]]] | None = None
    notes: list[str] = field(default_factory=list)  # a CSV run's: missing cells imputed, categories never seen


def predict(run: LoadedRun, input_path: str | Path, checkpoint: str = "best", batch_size: int = 512,
            keep_columns: bool | None = None) -> Predictions:
    """Read INPUT, apply the run's preprocessing and model, and tabulate the predictions.

    ``keep_columns`` carries INPUT's columns (a CSV's, or a text file's texts) into the rows, after ``id``;
    None: for a CSV only. Inputs far outside the training range are warned about (LoadedRun.inputs).
    """
    check_predictable(run)
    run.checkpoint_path(checkpoint)
    inputs = read_inputs(run, Path(input_path))
    if not len(inputs.ids):
        raise DataError(f"{inputs.source} holds no inputs")
    if keep_columns and inputs.carry is None:
        raise DlcliError(f"--keep-columns carries a CSV's columns or a text file's texts; {inputs.source} has none "
                         "to carry (its rows are named by id). Leave out --keep-columns")
    startup.settle()  # imports and loading are done: the collector runs again (dlcli/startup.py)
    out = run.predict(inputs.raw, batch_size=batch_size, checkpoint=checkpoint)
    columns, rows = tabulate(run, inputs.ids, out)
    if keep_columns is None:
        keep_columns = Path(input_path).suffix.lower() == ".csv"
    if not keep_columns or inputs.carry is None:
        return Predictions(columns, rows, inputs.source, notes=inputs.notes)
    return replace(carry_columns(columns, rows, *inputs.carry, inputs.source), notes=inputs.notes)


def carry_columns(columns: list[str], rows: list[dict[str, Any]], names: list[str], cells: list[list[str]],
                  source: str) -> Predictions:
    """The prediction rows with the input's columns after ``id``; a column whose name a prediction column
    takes already (id, prediction, prob_*) is carried as ``input_<name>``."""
    taken = set(columns)
    carried = [f"input_{n}" if n in taken else n for n in names]
    out = [{"id": row["id"], **dict(zip(carried, values, strict=True)),
            **{k: v for k, v in row.items() if k != "id"}} for row, values in zip(rows, cells, strict=True)]
    return Predictions([columns[0], *carried, *columns[1:]], out, source, carried)


def check_predictable(run: LoadedRun) -> None:
    """A DlcliError unless the run's model gives classes or values for inputs alone."""
    spec = get_task(run.task)
    if not spec.predictable:
        raise DlcliError(f"run {run.run_dir.name} is a {run.task} run: its model gives {spec.gives}, not a class or "
                         "a value. `dlcli predict` takes classification and regression runs; `dlcli export` "
                         "exports any run's model")
    if run.config["data"].get("difference"):  # its outputs are changes from levels that new windows do not carry
        raise DlcliError(f"run {run.run_dir.name} forecasts differenced windows (data.difference=1): its model "
                         "predicts changes from each window's last value, which an input file of windows does not "
                         "give. Score it with `dlcli eval RUN` (metrics in the series' units), or pass the series "
                         "as data: `dlcli eval RUN data.path=new.csv --split all`")


def tabulate(run: LoadedRun, ids: list[Any], out: np.ndarray) -> tuple[list[str], list[dict[str, Any]]]:
    """Model outputs (probabilities or values) as rows: id, prediction, a probability per class.

    Binary and multilabel runs decide with the run's threshold (``dlcli eval --tune-threshold``; else 0.5).
    """
    return get_task(run.task).tabulate(ids, out, run.classes, threshold=run.threshold)


def read_inputs(run: LoadedRun, path: Path) -> Inputs:
    """INPUT by its kind: a folder or an image file, a CSV, an NPZ, else a text file (text runs)."""
    from dlcli.data.images import IMAGE_SUFFIXES

    if not path.exists():
        raise DataError(f"INPUT '{path}' not found. Give a CSV, an NPZ, an image, a folder of images, "
                        "or a text file with one text per line")
    text_run = run.preprocessing.get("text") is not None
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in IMAGE_SUFFIXES:
        if text_run:
            raise DataError(f"INPUT '{path}' is an image or a folder, but run {run.run_dir.name} was trained on "
                            "texts: give a text file with one text per line, or a CSV")
        return _read_images(run, path)
    if suffix in COMPRESSED and len(path.suffixes) > 1:  # data.csv.gz: a compressed CSV (or text file)
        suffix = path.suffixes[-2].lower()
    if suffix in (".csv", ".tsv"):
        return _read_csv(run, path)
    if suffix == ".npz":
        return _read_npz(run, path)
    if not text_run:
        raise DataError(f"INPUT '{path}' is neither a CSV, an NPZ nor an image ({', '.join(IMAGE_SUFFIXES)}); "
                        f"run {run.run_dir.name} takes arrays. Text files (one text per line) are for text runs")
    lines = _read_text(run, path).splitlines()
    kept = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    inputs = text_inputs(run, [line for _, line in kept], [n for n, _ in kept],
                         f"text file '{path}' ({len(kept)} lines)")
    inputs.carry = (["text"], [[line] for _, line in kept])
    return inputs


COMPRESSED = (".gz", ".bz2", ".xz", ".zip")


def _read_text(run: LoadedRun, path: Path) -> str:
    """INPUT's text, decompressed and decoded as the run read its data files (data.encoding)."""
    from dlcli.data.files import read_text

    encoding = run.config["data"].get("encoding") or "utf-8"
    return read_text(path, str(path), "path", encoding, named=f"INPUT '{path}'",
                     recode=f"New inputs are read in the encoding the run read its data in ({encoding}): save the "
                            f"file in it (e.g. `iconv -f latin1 -t {encoding} in.csv > out.csv`)")


def _read_csv(run: LoadedRun, path: Path) -> Inputs:
    """CSV rows; the feature columns by the run's feature names (other columns, e.g. the target, ignored)."""
    from dlcli.data.files import split_csv

    data = run.config["data"]
    rows = split_csv(_read_text(run, path), data.get("delimiter") or ",", f"CSV '{path}'",
                     header=(run.preprocessing.get("columns") or {}).get("header", True),
                     decimal=data.get("decimal") or ".", na_values=data.get("na_values") or ())
    if not rows:
        raise DataError(f"CSV '{path}' is empty: it needs a header row and a row per input")
    columns = run.preprocessing.get("columns")
    if columns is not None:  # a CSV run: raw cells (text, missing values) are encoded by the run's preprocessing
        from dlcli.data.columns import csv_records

        cells, lines = csv_records(rows, columns, run.config["data"].get("target"), f"CSV '{path}'")
        header = [h.strip() for h in rows[0]] if columns.get("header", True) else \
            [f"column_{i}" for i in range(len(rows[0]))]
        body = rows[1:] if columns.get("header", True) else rows
        return Inputs(list(range(len(cells))), cells, f"CSV '{path}' ({rows_text(len(cells))})", (header, body),
                      notes=cell_notes(cells, columns))
    header, body = [h.strip() for h in rows[0]], rows[1:]
    from dlcli.data.columns import column_positions

    column_positions(header, f"'{path}'")  # a name given twice: each record would keep only the last column
    for lineno, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"malformed CSV '{path}': row {lineno} has {len(row)} fields, the header has {len(header)}")
    records = [dict(zip(header, row, strict=True)) for row in body]

    def where(i: int, column: str | None) -> str:
        return f"CSV '{path}', row {i + 2}" + (f", column '{column}'" if column else "")

    inputs = record_inputs(run, records, list(range(len(body))), f"CSV '{path}' ({rows_text(len(body))})", where,
                           header)
    inputs.carry = (header, body)  # --keep-columns: the CSV's own cells, as written
    return inputs


def cell_notes(cells: np.ndarray, columns: dict[str, Any]) -> list[str]:
    """What encoding a CSV run's raw cells (N, F) does that a user should know: cells imputed, categories the
    run never saw (encoded as all zeros)."""
    from dlcli.data.columns import missing_note, unseen_note

    return [n for n in (missing_note(cells, columns), unseen_note(cells, columns)) if n]


def record_inputs(run: LoadedRun, records: Sequence[dict[str, Any]], ids: list[Any], source: str, where: Where,
                  header: list[str] | None = None) -> Inputs:
    """A table's rows as records (column -> value: numbers, or text as a CSV holds it) -> Inputs.

    Text runs read their text column; CSV runs (typed columns) their raw cells, encoded and checked by the
    run's preprocessing; other runs their feature columns as numbers. ``header``: the columns every record
    has (a CSV's header); else each record's own keys. Columns the run does not use are ignored.
    """
    pre = run.preprocessing
    if pre.get("text") is not None:  # a text run: the column its data read texts from
        column = run.config["data"].get("text") or "text"
        _check_columns(records, [column], header, source, where, what=TEXTS)
        return text_inputs(run, [r[column] for r in records], ids, source)
    if pre.get("columns") is not None:  # a CSV run: raw cells, encoded (and refused, naming them) by its columns
        from dlcli.data.columns import encode_columns

        names = pre["columns"]["names"]
        _check_columns(records, names, header, source, where)
        cells = np.empty((len(records), len(names)), dtype=object)  # (N, F) raw cells in the run's column order
        for i, record in enumerate(records):
            cells[i] = [_cell(record[n], where, i, n) for n in names]
        encode_columns(cells, pre["columns"], ids, source)  # refused cells named by their id, before the model runs
        return Inputs(ids, cells, source, notes=cell_notes(cells, pre["columns"]))
    features = pre.get("feature_names")
    if features:
        _check_columns(records, features, header, source, where)
    else:  # trained on unnamed features (e.g. an NPZ): every column but the run's target, in order
        target = run.config["data"].get("target")
        features = [h for h in (header if header is not None else list(records[0]) if records else []) if h != target]
    x = np.empty((len(records), len(features)), dtype=np.float32)
    for i, record in enumerate(records):
        for j, column in enumerate(features):
            x[i, j] = _number(record[column], where, i, column)
    return Inputs(ids, run.raw_arrays(x, source), source)


def _check_columns(records: Sequence[dict[str, Any]], wanted: list[str], header: list[str] | None, source: str,
                   where: Where, what: str = "the run's feature columns") -> None:
    """A DataError naming the columns the header (or else the first record lacking any) does not have."""
    for place, keys in ([(source, header)] if header is not None
                        else ((where(i, None), list(r)) for i, r in enumerate(records))):
        missing = [c for c in wanted if c not in keys]
        if what == TEXTS and missing:
            raise DataError(f"{place} has no column '{wanted[0]}' ({what}). Columns: {_names(keys)}")
        if missing:
            raise DataError(f"{place} lacks {len(missing)} of {what}: {_names(missing)}. "
                            f"The run was trained on: {_names(wanted)}")


def _cell(value: Any, where: Where, i: int, column: str) -> Any:
    """A raw table cell: a number, a string or None (missing); anything else is refused."""
    if value is None or isinstance(value, (str, float, int)) and not isinstance(value, bool):
        return value
    raise DataError(f"{where(i, column)}: expected a number or a string, got {value!r}")


def _number(value: Any, where: Where, i: int, column: str) -> float:
    """A cell as a finite number (a CSV's text or a JSON number)."""
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError
        number = float(value)
    except ValueError:
        raise DataError(f"{where(i, column)}: {value!r} is not a number") from None
    if not abs(number) <= FLOAT32_MAX:  # inf, nan, or beyond what the model's float32 inputs hold
        raise DataError(f"{where(i, column)}: {number} is not a finite number: fill it in or drop the row")
    return number


def _names(names: list[str], limit: int = 20) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def text_inputs(run: LoadedRun, texts: Sequence[Any], ids: list[Any], source: str) -> Inputs:
    """Texts for a text run (any string; the run's tokenizer and vocabulary encode it)."""
    if run.preprocessing.get("text") is None:
        raise DataError(f"{source} holds texts, but run {run.run_dir.name} takes arrays (shape "
                        f"{tuple(run.preprocessing['input_shape'])}): give numbers")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"{source}, input {ids[bad]}: expected a text, got {texts[bad]!r}")
    return Inputs(ids, list(texts), source)


def _read_npz(run: LoadedRun, path: Path) -> Inputs:
    key = run.config["data"].get("x_key") or "x"
    try:
        with np.load(path, allow_pickle=False) as arrays:  # never unpickle an input file
            if key not in arrays.files:
                raise DataError(f"NPZ '{path}' has no array '{key}'. Arrays: {', '.join(arrays.files) or 'none'}")
            x = arrays[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        why = "it is empty" if isinstance(e, EOFError) else str(e) or type(e).__name__
        raise DataError(f"cannot read INPUT '{path}' as a .npz file ({why}): give an NPZ written by numpy.savez "
                        "holding the inputs as a numeric array") from None
    if x.ndim < 1 or not np.issubdtype(x.dtype, np.number):
        raise DataError(f"NPZ '{path}': array '{key}' must be numeric with one row per input, got {x.dtype} "
                        f"of shape {x.shape}")
    return array_inputs(run, x, list(range(len(x))), f"NPZ '{path}'", f"array '{key}'")


def array_inputs(run: LoadedRun, x: np.ndarray, ids: list[Any], source: str, what: str = "the inputs") -> Inputs:
    """Numeric arrays, one row per input, flat or shaped as the run's dataset gave them -> Inputs."""
    x = run.raw_arrays(x, source)
    if run.preprocessing.get("variable_length"):  # sequences padded at the end with NaN (or the run's pad_value)
        from dlcli.data.padding import check_finite

        check_finite(x, run.lengths(x, source), source)
    elif not np.all(np.isfinite(x)):
        raise DataError(f"{source}: {what} has missing or infinite values: clean them first")
    return Inputs(ids, x, f"{source} ({rows_text(len(x))})")


def _read_images(run: LoadedRun, path: Path) -> Inputs:
    """An image file, or the images in a folder (its subfolders too, hidden ones left out)."""
    from dlcli.data.images import IMAGE_SUFFIXES

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise DataError(f"folder '{path}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
        ids = [p.relative_to(path).as_posix() for p in files]
    else:
        files, ids = [path], [path.name]
    what = f"folder '{path}' ({len(files)} images)" if path.is_dir() else f"image '{path}'"
    return image_inputs(run, files, ids, what, f"INPUT '{path}'")


def image_inputs(run: LoadedRun, images: Sequence[Path | IO[bytes]], ids: list[Any], what: str,
                 given: str = "the input") -> Inputs:
    """Image files (paths, or open binary files such as uploads) read as the run's image data was: its size,
    and its channels unless it converts them. ``ids`` name each image in errors."""
    from dlcli.data.images import _load_rgb

    pre, shape = run.preprocessing, run.preprocessing["input_shape"]
    if pre.get("text") is not None:
        raise DataError(f"{given} holds images, but run {run.run_dir.name} was trained on texts: give texts")
    if len(shape) != 3:
        raise DataError(f"{given} holds images, but run {run.run_dir.name} takes inputs of shape "
                        f"{tuple(shape)}, not images: give a CSV or an NPZ")
    data_size = run.config["data"].get("size")  # image_folder resizes every file to data.size first
    size = tuple(data_size) if data_size else tuple(shape[1:])
    rgb = np.stack([_load_rgb(f, size, None if isinstance(f, Path) else str(i))  # (N, H, W, 3) uint8
                    for f, i in zip(images, ids, strict=True)])
    converts = (pre.get("image") or {}).get("channels") is not None
    if shape[0] == 3 or (converts and (rgb[..., 0] != rgb[..., 1]).any()):
        x = rgb.transpose(0, 3, 1, 2).astype(np.float32)  # (N, H, W, 3) -> (N, 3, H, W)
    else:  # ITU-R 601 luma, as image_folder reads grayscale images
        x = np.clip(np.rint(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)), 0, 255)
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
    return Inputs(ids, run.raw_arrays(x, what), what)


def check_output(path: Path) -> None:
    """--output names a .csv or .json file (or a name without a suffix: CSV); checked before any work."""
    if path.suffix and path.suffix.lower() not in (".csv", ".json"):
        raise DlcliError(f"--output '{path}': predictions are written as CSV (.csv) or JSON (.json), not "
                         f"{path.suffix}: name the file so, e.g. --output {path.with_suffix('.csv')}")


def write_predictions(pred: Predictions, path: Path) -> None:
    """CSV, or JSON (a list of rows) when the name ends in .json; written atomically."""
    from dlcli.runs import folder

    check_output(path)
    if not path.parent.is_dir():
        raise DlcliError(f"cannot write predictions to '{path}': the folder '{path.parent}' does not exist")
    try:
        if path.suffix.lower() == ".json":
            folder.write_json(path, pred.rows)
        else:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=pred.columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in pred.rows)
            folder.atomic_write_text(path, buffer.getvalue())
    except OSError as e:
        raise DlcliError(f"cannot write predictions to '{path}': {e.strerror or e}") from None
