"""Sequence datasets: windows of a time series for forecasting, and synthetic waveforms to classify.

Every loader returns inputs x of shape (N, T, F): N sequences of T steps with F features each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from dlcli.data.columns import NA_VALUES, column_positions, columns_list
from dlcli.data.files import csv_rows, delimiter_hint
from dlcli.data.table import Table
from dlcli.errors import DataError
from dlcli.registry import DATASETS, did_you_mean

if TYPE_CHECKING:
    import numpy as np

WAVEFORMS = ("sine", "square", "sawtooth", "triangle")


def windows(inputs: np.ndarray, target: np.ndarray, window: int, horizon: int,
            source: str) -> tuple[np.ndarray, np.ndarray]:
    """Slide a window over a series: x[i] = inputs[i : i+window], y[i] = target[i+window : i+window+horizon].

    ``inputs`` is (P, F) and ``target`` (P,) for P time points; returns x (N, window, F) and y (N,) for
    one step ahead or (N, horizon), with N = P - window - horizon + 1. ``source`` names the data in errors.
    """
    import numpy as np

    if window < 1 or horizon < 1:
        raise DataError(f"{source}: data.window and data.horizon must be at least 1, got {window} and {horizon}")
    n = len(inputs) - window - horizon + 1
    if n < 1:
        raise DataError(f"{source} has {len(inputs)} time points: too few for data.window={window} plus "
                        f"data.horizon={horizon}. Use a shorter window or more data")
    # (P, F) -> (P - window + 1, F, window) -> (N, window, F); copied so that x owns its memory
    x = np.lib.stride_tricks.sliding_window_view(inputs, window, axis=0)[:n].transpose(0, 2, 1)
    y = np.lib.stride_tricks.sliding_window_view(target[window:], horizon)[:n]  # (N, horizon)
    x, y = np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)
    return x, (y[:, 0] if horizon == 1 else y)


@DATASETS.register()
def sine(seed: int, n_points: int = 2000, period: float = 50.0, noise: float = 0.05, window: int = 30,
         horizon: int = 1, trend: float = 0.0, difference: int = 0, seasonal_lag: int | None = None):
    """Noisy sine wave forecasting: windows of past values, predict the next horizon value(s) (synthetic)."""
    import numpy as np

    if period <= 0 or noise < 0:
        raise DataError(f"sine: data.period must be > 0 and data.noise >= 0, got {period} and {noise}")
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    series = np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)) + rng.normal(0, noise, n_points) + trend * t
    return _forecast_table(series[:, None], series, window, horizon, difference, seasonal_lag, "sine", ["value"])


def _forecast_table(inputs: np.ndarray, target: np.ndarray, window: int, horizon: int, difference: int,
                    seasonal_lag: int | None, source: str, names: list[str]) -> Table:
    """Forecasting windows over ``inputs`` (P, F) for ``target`` (P,), differenced when asked (forecast.py)."""
    from dlcli.data.forecast import differenced_windows, lag_of

    lag = lag_of(difference, seasonal_lag, source)
    if not lag:
        x, y = windows(inputs, target, window, horizon, source)  # (N, window, F), (N,) or (N, horizon)
        return Table(x, y, "regression", feature_names=names, ordered=True)
    x, y, base = differenced_windows(inputs, target, window, horizon, lag, source)
    return Table(x, y, "regression", feature_names=names, ordered=True, offset=base)


@DATASETS.register()
def timeseries_csv(seed: int, path: str, column: str, features: list[str] | None = None, window: int = 30,
                   horizon: int = 1, delimiter: str = "auto", difference: int = 0, seasonal_lag: int | None = None,
                   decimal: Literal[".", ",", "auto"] = "auto", encoding: str = "utf-8",
                   na_values: list[str] = NA_VALUES, missing: Literal["error", "previous", "interpolate"] = "error"):
    """A time series in a CSV file (header row, one row per time step): windows of rows predict a column ahead."""
    import numpy as np

    notes: list[str] = []  # a delimiter other than a comma found, decimal commas read, missing values filled
    rows = csv_rows(path, delimiter, decimal=decimal, na_values=na_values, notes=notes,
                    encoding=encoding)  # (line number, fields), no blank lines
    header = [h.strip() for h in rows[0][1]]
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"malformed CSV '{path}': row {lineno} has {len(row)} fields, the header has "
                            f"{len(header)}. {delimiter_hint(rows.delimiter)}")
    position = column_positions(header, f"'{path}'")  # refuses a name given twice
    names = list(features) if features is not None else [column]
    for name, key in [(column, "column"), *((n, "features") for n in names)]:
        if name not in position:
            raise DataError(f"CSV '{path}' has no column '{name}' (data.{key}).{did_you_mean(name, header)} "
                            f"Columns: {columns_list(header)}")
    if not names:
        raise DataError(f"CSV '{path}': data.features is empty; list the input columns, or null for just "
                        f"the target column '{column}'")
    wanted = list(dict.fromkeys([column, *names]))  # target first, each column parsed once
    values = np.empty((len(rows) - 1, len(wanted)), dtype=np.float64)  # (P, columns)
    at, na = [position[name] for name in wanted], set(na_values)
    fill = {"previous": "the value before it", "interpolate": "a straight line between the values around it"}
    for i, (lineno, row) in enumerate(rows[1:]):
        for j, name in enumerate(wanted):
            cell = row[at[j]]
            if cell.strip() in na:
                if missing == "error":
                    raise DataError(f"CSV '{path}', row {lineno}, column '{name}': {cell!r} is a missing value "
                                    "(data.na_values). Fill it in, or fill every gap: data.missing=previous (the "
                                    "value before it) or data.missing=interpolate (a straight line between the "
                                    "values around it)")
                values[i, j] = np.nan
                continue
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise DataError(f"CSV '{path}', row {lineno}, column '{name}': {cell!r} is not a number. Time "
                                "series columns must be numeric; if it marks a missing value, add it to "
                                "data.na_values and set data.missing=previous or interpolate") from None
            if not np.isfinite(values[i, j]):
                raise DataError(f"CSV '{path}', row {lineno}, column '{name}': {cell!r} is not a finite number")
    holes = np.isnan(values)
    if holes.any():
        empty = [wanted[j] for j in np.flatnonzero(holes.all(axis=0))]
        if empty:
            raise DataError(f"CSV '{path}': column '{empty[0]}' holds no value at all, only missing ones")
        values = fill_gaps(values, missing)
        gappy = [wanted[j] for j in np.flatnonzero(holes.any(axis=0))]
        notes.append(f"filled {int(holes.sum())} missing cells in {int(holes.any(axis=1).sum())} of {len(values)} "
                     f"rows (columns {', '.join(gappy)}) with {fill[missing]} (data.missing={missing}; a gap at "
                     "the start takes the first value after it)")
    column_of = {n: j for j, n in enumerate(wanted)}
    inputs = values[:, [column_of[n] for n in names]]  # (P, F)
    table = _forecast_table(inputs, values[:, 0], window, horizon, difference, seasonal_lag, f"CSV '{path}'", names)
    table.notes = notes or None
    return table


def fill_gaps(values: np.ndarray, how: str) -> np.ndarray:
    """(P, F) values with NaN gaps, each column filled along its rows: ``previous`` carries the last value
    forward, ``interpolate`` draws a straight line between the values around a gap; before a column's first
    value, both take that first value (and ``interpolate`` after its last, the last)."""
    import numpy as np

    out = values.copy()
    rows = np.arange(len(values))
    for j in range(values.shape[1]):
        known = ~np.isnan(values[:, j])
        if known.all():
            continue
        if how == "interpolate":
            out[:, j] = np.interp(rows, rows[known], values[known, j])
        else:  # the index of the last known row at or before each row (the first known row before any)
            last = np.maximum.accumulate(np.where(known, rows, -1))
            out[:, j] = values[np.where(last >= 0, last, np.flatnonzero(known)[0]), j]
    return out


def _wave(kind: str, cycles: np.ndarray) -> np.ndarray:
    """One period-1 waveform of amplitude 1 evaluated at ``cycles`` (time in periods, any shape)."""
    import numpy as np

    frac = cycles % 1.0
    if kind == "sine":
        return np.sin(2 * np.pi * cycles)
    if kind == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    if kind == "sawtooth":
        return 2 * frac - 1
    return 1 - 4 * np.abs(frac - 0.5)  # triangle


@DATASETS.register()
def waveforms(seed: int, n_samples: int = 1000, length: int = 64, noise: float = 0.2):
    """Which waveform is it: sine, square, sawtooth or triangle, random frequency and phase (synthetic)."""
    import numpy as np

    if n_samples < len(WAVEFORMS) or length < 2 or noise < 0:
        raise DataError(f"waveforms: need data.n_samples >= {len(WAVEFORMS)}, data.length >= 2 and "
                        f"data.noise >= 0; got {n_samples}, {length} and {noise}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n_samples) % len(WAVEFORMS))  # balanced classes, in random order
    # 2 to 6 periods per sequence: at least two of each shape, at least ~10 steps per period at length 64
    freq = rng.uniform(2, 6, size=(n_samples, 1)) / length  # periods per step
    phase = rng.uniform(0, 1, size=(n_samples, 1))
    cycles = freq * np.arange(length) + phase  # (N, length), time in periods
    x = np.empty((n_samples, length))
    for k, kind in enumerate(WAVEFORMS):
        x[y == k] = _wave(kind, cycles[y == k])
    x += rng.normal(0, noise, x.shape)
    return Table(x[..., None].astype(np.float32), y, "classification", list(WAVEFORMS), ["value"])  # (N, length, 1)


@DATASETS.register()
def transcription(seed: int, n_samples: int = 1200, alphabet: str = "abcde", min_symbols: int = 2,
                  max_symbols: int = 4, min_frames: int = 2, max_frames: int = 4, noise: float = 0.3):
    """Synthetic sequence transcription (for ctc): frames of noisy symbol codes -> the symbol string, unaligned."""
    import numpy as np

    from dlcli.data.table import Table

    if not 1 <= min_symbols <= max_symbols or not 1 <= min_frames <= max_frames:
        from dlcli.errors import DataError

        raise DataError("data: need 1 <= min_symbols <= max_symbols and 1 <= min_frames <= max_frames")
    rng = np.random.default_rng(seed)
    k, length = len(alphabet), max_symbols * (max_frames + 1)  # room for every symbol and a pause after it
    x = rng.normal(0, noise, (n_samples, length, k)).astype(np.float32)
    y = np.zeros((n_samples, max_symbols), dtype=np.int64)  # symbol ids 1..k, 0 pads (and is CTC's blank)
    for i in range(n_samples):
        t = 0
        for j in range(rng.integers(min_symbols, max_symbols + 1)):
            s = rng.integers(k)
            hold = rng.integers(min_frames, max_frames + 1)
            x[i, t:t + hold, s] += 1.0  # the symbol's code, held for a few frames
            y[i, j] = s + 1
            t += hold + rng.integers(0, 2)  # sometimes a pause: repeats stay distinguishable
    return Table(x, y, "transcription", list(alphabet), [f"code_{c}" for c in alphabet])
