"""Request bodies -> :class:`Inputs`, through the readers ``dlcli predict`` uses for files; outputs -> JSON results.

A JSON body's ``inputs`` holds one item per input: a record (column -> value) for table runs, a nested
array (flat, or shaped as the run's dataset gave it) for sequence and image runs, a string for text runs.
Errors name the item: ``inputs[3].sepal_length: 'abc' is not a number``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from dlcli.errors import DataError
from dlcli.training.predict import Inputs, array_inputs, image_inputs, record_inputs, tabulate, text_inputs
from dlcli.training.reload import LoadedRun

MAX_PIXELS = 4096 * 4096  # an uploaded image larger than this is refused (413) before it is decoded


class TooLarge(DataError):
    """An input over a size limit (HTTP 413)."""


def _where(i: int, column: str | None) -> str:
    return f"inputs[{i}]" + (f".{column}" if column else "")


def json_inputs(run: LoadedRun, items: list[Any]) -> Inputs:
    """A JSON body's ``inputs`` (one item per input, all of one kind) -> Inputs, ids 0..N-1."""
    if not items:
        raise DataError("inputs: empty; give one item per input")
    ids = list(range(len(items)))
    kind = _kind(items[0])
    if kind not in ("record", "text", "array"):
        raise DataError(f"inputs[0]: expected a record {{column: value}}, an array of numbers or a text, got {kind}")
    other = next((i for i, item in enumerate(items) if _kind(item) != kind), None)
    if other is not None:
        raise DataError(f"inputs[{other}]: {_article(_kind(items[other]))}, but inputs[0] is {_article(kind)}: give "
                        "every input in one form")
    if kind == "record":
        return record_inputs(run, items, ids, "inputs", _where)
    if kind == "text":
        return text_inputs(run, items, ids, "inputs")
    return array_inputs(run, _stack(run, items), ids, "inputs")


def _kind(item: Any) -> str:
    if isinstance(item, dict):
        return "record"
    if isinstance(item, str):
        return "text"
    if isinstance(item, (list, int, float)) and not isinstance(item, bool):
        return "array"
    return type(item).__name__ if item is not None else "null"


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _stack(run: LoadedRun, items: list[Any]) -> np.ndarray:
    """Nested lists of numbers, one per input -> (N, ...) float32; shorter sequences of a variable-length run
    are padded at the end with NaN, as in an NPZ."""
    arrays = []
    for i, item in enumerate(items):
        try:
            a = np.asarray(item, dtype=np.float64)  # numbers only; ragged lists and strings raise
        except (ValueError, TypeError):
            raise DataError(f"inputs[{i}]: expected a nested array of numbers with one shape (rows of equal "
                            f"length), got {_short(item)}") from None
        arrays.append(a)
    if run.preprocessing.get("variable_length") and all(a.ndim == 2 for a in arrays):
        longest = max(len(a) for a in arrays)
        arrays = [np.concatenate([a, np.full((longest - len(a), a.shape[1]), np.nan)]) for a in arrays]
    shape = arrays[0].shape
    other = next((i for i, a in enumerate(arrays) if a.shape != shape), None)
    if other is not None:
        raise DataError(f"inputs[{other}]: shape {arrays[other].shape} differs from inputs[0]'s {shape}: "
                        "every input needs the run's input shape")
    return np.stack(arrays).astype(np.float32)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def image_uploads(run: LoadedRun, files: list[tuple[str, bytes]]) -> Inputs:
    """Uploaded image files ((name, bytes) each) -> Inputs, read as ``dlcli predict`` reads image files."""
    from PIL import Image

    if not files:
        raise DataError("file: no image in the upload; send each image as a multipart field named 'file'")
    shape = run.preprocessing.get("input_shape") or []
    if run.preprocessing.get("text") is not None or len(shape) != 3:  # uploads are images only
        takes = "texts" if run.preprocessing.get("text") is not None else f"inputs of shape {tuple(shape)}"
        raise DataError(f"file: uploads are image files, and run {run.run_dir.name} takes {takes}, not images. "
                        "Send its inputs as JSON instead: {\"inputs\": [...]} (GET /metadata shows the inputs it "
                        "takes)")
    for name, data in files:
        try:
            with Image.open(io.BytesIO(data)) as img:  # reads the header only: the size before any decoding
                width, height = img.size
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # not an image: the shared reader refuses it, naming the file
        if width * height > MAX_PIXELS:
            raise TooLarge(f"file '{name}': {width}x{height} pixels, more than the {MAX_PIXELS:,} an upload may "
                           "have: resize it first")
    ids = [name for name, _ in files]
    what = f"{len(files)} uploaded image{'s' * (len(files) != 1)}"
    return image_inputs(run, [io.BytesIO(data) for _, data in files], ids, what, f"upload '{ids[0]}'")


def results(run: LoadedRun, ids: list[Any], out: np.ndarray) -> list[dict[str, Any]]:
    """Model outputs as JSON results, from the rows ``dlcli predict`` writes (same labels, same numbers): a label
    and the class probabilities, or a value (a list of values for several targets)."""
    columns, rows = tabulate(run, ids, out)
    classes = run.classes
    if classes is not None and any(c.startswith("prob_") for c in columns):
        return [{"id": row["id"], "label": row["prediction"],
                 "probabilities": {c: row[f"prob_{c}"] for c in classes}} for row in rows]
    names = [c for c in columns if c != "id"]
    return [{"id": row["id"], "value": row[names[0]] if len(names) == 1 else [row[n] for n in names]}
            for row in rows]
