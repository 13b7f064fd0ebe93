"""Differenced forecasting windows: the model learns changes, the metrics see levels.

A trending series is hard to forecast from its levels (the test split's values lie outside anything
seen in training) and easy from its changes. With ``data.difference=1`` the inputs are the
differenced series d[t] = s[t] - s[t-k] (k = ``data.seasonal_lag``, or 1), and the target is the
change of the forecast column from its *base*, the last observed value of the same season:
s[t+j] - s[t+j-k*ceil(j/k)] for the j-th step ahead. For one step ahead that is the next
difference d[t+1]; for several it is the cumulative sum of the differences up to that step. The
base of every window is kept beside the targets (``Table.offset``) and added back to targets and
predictions before any metric, so that MAE, RMSE and R2 are in the series' own units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlcli.errors import DataError

if TYPE_CHECKING:
    import numpy as np


def lag_of(difference: int, seasonal_lag: int | None, source: str) -> int:
    """The differencing lag: 0 (none), 1, or the seasonal lag; a DataError for values that do not fit."""
    if difference not in (0, 1):
        raise DataError(f"{source}: data.difference is 0 (forecast the levels) or 1 (forecast the changes), "
                        f"got {difference}")
    if seasonal_lag is not None and (not isinstance(seasonal_lag, int) or seasonal_lag < 1):
        raise DataError(f"{source}: data.seasonal_lag is a number of steps >= 1 (e.g. 12 for monthly data with a "
                        f"yearly season) or null, got {seasonal_lag}")
    if seasonal_lag is not None and not difference:
        raise DataError(f"{source}: data.seasonal_lag={seasonal_lag} differences at that lag only with "
                        "data.difference=1: add it, or set data.seasonal_lag=null")
    return (seasonal_lag or 1) if difference else 0


def differenced_windows(inputs: np.ndarray, target: np.ndarray, window: int, horizon: int, lag: int,
                        source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows over the lag-``lag`` differences of ``inputs`` (P, F); targets as changes from their bases.

    Returns x (N, window, F), y and base, both (N,) for one step ahead or (N, horizon), with
    N = P - lag - window - horizon + 1: level = base + y (see the module's docstring).
    """
    import numpy as np

    from dlcli.data.sequences import windows

    if len(inputs) <= lag:
        raise DataError(f"{source} has {len(inputs)} time points: too few to difference at lag {lag}")
    changes = inputs[lag:] - inputs[:-lag]  # (P - lag, F): row u is the change at time u + lag
    x, _ = windows(changes, target[lag:], window, horizon, source)  # x[i]: changes at times lag+i .. lag+i+window-1
    last = lag + np.arange(len(x)) + window - 1  # (N,) the time of each window's last step
    ahead = np.arange(1, horizon + 1)  # (horizon,) steps ahead
    base_at = last[:, None] + ahead - lag * -(-ahead // lag)  # the latest observed time in the same season
    base = target[base_at]  # (N, horizon)
    y = (target[last[:, None] + ahead] - base).astype(np.float32)
    base = base.astype(np.float32)
    return x, (y[:, 0] if horizon == 1 else y), (base[:, 0] if horizon == 1 else base)
