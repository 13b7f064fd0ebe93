"""What a dataset loader returns: inputs, targets and what is known about them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Table:
    """A whole dataset in memory, before splitting."""

    x: np.ndarray  # (N, *sample_shape), float; or (N,) strings for text, with `text` set
    # (N,) class labels of any dtype, (N, K) 0/1 labels, (N,) / (N, T) real-valued targets, or
    # (N, L) symbol ids 1..C padded with 0 (transcription; class_names are the C symbols)
    y: np.ndarray
    kind: Literal["classification", "multilabel", "regression", "transcription"] | None = None  # None: infer
    class_names: list[str] | None = None  # names of the sorted unique labels, when known
    feature_names: list[str] | None = None
    ordered: bool = False  # rows follow time (forecasting windows): split chronologically, never shuffled
    text: dict | None = None  # x holds texts: how to tokenize them (level, max_length, min_freq, max_vocab, lowercase)
    # (N,) real steps of each sequence (N, T, F) padded at the end; None: every step is real (see padding.py)
    lengths: np.ndarray | None = None
    # (N,) or (N, horizon): added to targets and predictions for the metrics (differenced forecasts: the level
    # each change is taken from, see forecast.py); None: targets are already in their own units
    offset: np.ndarray | None = None
    # x holds a CSV's raw cells (N, F): floats (NaN: missing) or strings (None: missing); the columns' types
    # and missing-value rules, encoded in prepare (see data/columns.py)
    columns: dict | None = None
    # streamed images (data.cache): x is None; the files, decoded per batch (dlcli/data/stream.py ImageFiles)
    files: Any = None
    # (N,) "train" / "val" / "test": rows whose split is fixed (an official test file, data.test_path, ...);
    # None: every row is split at random. See dlcli/data/splits.py
    split: np.ndarray | None = None
    split_sources: dict[str, str] | None = None  # split -> where its fixed rows come from (a file name), for the record
    # (N,) each row's group (cv.strategy=group: a CSV column named by cv.group, never a feature); None: no groups
    groups: np.ndarray | None = None
    # what reading the data decided that a user should know (e.g. a CSV read as semicolon-separated): printed as
    # notes when training starts and kept in preprocessing.json; a CSV table's column notes are in `columns`
    notes: list[str] | None = None
