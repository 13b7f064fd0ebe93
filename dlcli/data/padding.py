"""Variable-length sequences: padding at the end of (N, T, F) inputs marks each sequence's length.

A step is padding when all its features are NaN (the UCR archive's convention), or all equal
``data.pad_value`` when one is declared, and every step after it is padding too. Lengths are found
where the data is prepared (and again for new inputs at predict time), padded steps are left out of
the scaling statistics and set to 0 after scaling, and the lengths travel with every batch: recurrent
models pack the sequences, the transformer masks padded steps out of attention and pooling. A NaN
anywhere else (in the middle of a sequence, or in some features of a step only) stays an error.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from dlcli.data.table import Table
from dlcli.errors import DataError


def padded_steps(x: np.ndarray, pad_value: float | None) -> np.ndarray:
    """(N, T) True at the trailing steps that are padding: all features NaN (or == pad_value) from there on."""
    blank = np.isnan(x)
    if pad_value is not None and not np.isnan(pad_value):
        blank |= x == np.asarray(pad_value, dtype=x.dtype)  # compared in the inputs' precision (0.1 in float32)
    blank = blank.reshape(*x.shape[:2], -1).all(axis=-1)  # (N, T, F...) -> (N, T): the whole step is blank
    # padding runs to the end: a step is padding when it and every later step are blank
    return np.flip(np.logical_and.accumulate(np.flip(blank, axis=1), axis=1), axis=1)


def find_lengths(x: np.ndarray, pad_value: float | None, source: str) -> np.ndarray | None:
    """(N,) real steps per sequence, or None for inputs that are not sequences or hold no padding.

    With a ``pad_value`` declared, lengths are returned even when no sequence is padded (the data is
    declared variable-length). A sequence of padding only is refused: it has nothing to learn from.
    """
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
        if pad_value is not None and np.issubdtype(x.dtype, np.number):
            raise DataError(f"data.pad_value marks padding at the end of sequences (N, T, F); {source} has "
                            f"inputs of shape {tuple(x.shape)}. Remove data.pad_value")
        return None
    pad = padded_steps(x, pad_value)
    if pad_value is None and not pad.any():
        return None
    lengths = x.shape[1] - pad.sum(axis=1)
    if (lengths == 0).any():
        i = int(np.flatnonzero(lengths == 0)[0])
        raise DataError(f"{source}: sample {i} (counting from 0) is padding only (every step "
                        f"{'NaN' if pad_value is None else f'NaN or {pad_value}'}). Drop such samples")
    return lengths.astype(np.int64)


def strip(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """x with its padded steps set to 0 (a copy when there are any); other NaNs are left for the finite check."""
    if lengths is None:
        return x
    x = np.array(x, copy=True)
    x[~real_steps(lengths, x.shape[1])] = 0
    return x


def real_steps(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(N, T) True at each sequence's real steps, the first ``lengths[i]``."""
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def mark(table: Table, pad_value: float | None, source: str) -> Table:
    """The table with its sequences' lengths (``table.lengths``) and their padded steps set to 0."""
    if table.text is not None or table.x is None or table.columns is not None:  # texts, streamed images, CSV cells
        return table
    lengths = table.lengths if table.lengths is not None else find_lengths(table.x, pad_value, source)
    if lengths is None:
        return table
    from dataclasses import replace

    return replace(table, x=strip(table.x, lengths), lengths=lengths)


def as_missing(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """x with its padded steps NaN: what the scaler is fitted on, so that padding counts for nothing."""
    if lengths is None:
        return x
    x = np.array(x, dtype=np.float64, copy=True)
    x[~real_steps(lengths, x.shape[1])] = np.nan
    return x


def stat(x: np.ndarray, name: str, axis: Any) -> np.ndarray:
    """``x.<name>(axis)`` (mean, std, min, max), leaving NaN (padded steps, see :func:`as_missing`) out.

    A column with no value at all (a step no training sequence reaches) gets 0.
    """
    if not np.isnan(x).any():
        return getattr(x, name)(axis=axis, dtype=np.float64) if name in ("mean", "std") else getattr(x, name)(axis)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: filled below
        out = getattr(np, f"nan{name}")(x, axis=axis)
    return np.where(np.isnan(out), 0.0, out)


def scaled(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Scaled inputs with their padded steps back at 0 (the scaler moves them): padding stays blank."""
    if lengths is None:
        return x
    x[~real_steps(lengths, x.shape[1])] = 0
    return x


def take(lengths: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if lengths is None else lengths[rows]


def split_lengths(values: np.ndarray | None, idx: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Per-sample values (lengths, forecast offsets) split as the samples are: name -> values[rows]."""
    return None if values is None else {name: values[i] for name, i in idx.items()}


def saved(lengths: np.ndarray | None, pad_value: float | None) -> dict[str, Any] | None:
    """What preprocessing.json keeps, so that predict reads new inputs' padding as training did."""
    if lengths is None:
        return None
    return {"pad_value": pad_value, "max_length": int(lengths.max())}


def input_lengths(x: np.ndarray, pre: dict[str, Any], source: str) -> np.ndarray | None:
    """Lengths of new raw inputs for a run trained on variable-length sequences (None for other runs)."""
    info = pre.get("variable_length")
    if info is None:
        return None
    lengths = find_lengths(np.asarray(x, dtype=np.float32), info["pad_value"], source)
    return lengths if lengths is not None else np.full(len(x), np.asarray(x).shape[1], dtype=np.int64)


def check_finite(x: np.ndarray, lengths: np.ndarray | None, source: str) -> None:
    """No NaN or infinity in the real steps; padded steps may hold anything."""
    real = strip(x, lengths)
    if not np.all(np.isfinite(real)):
        i, t = (int(v) for v in np.argwhere(~np.isfinite(real))[0][:2])
        hint = (" NaN marks padding only at the end of a sequence, in every feature of every step from there on"
                if real.ndim == 3 else "")
        raise DataError(f"{source}: sample {i} holds a missing or infinite value at step {t}.{hint} "
                        "Fill it in or drop the sample")


def takes_lengths(model: Any) -> bool:
    """Whether a model's forward accepts ``lengths`` (recurrent models, the transformer on float sequences)."""
    forward = getattr(model, "forward", None)
    try:
        return forward is not None and "lengths" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False
