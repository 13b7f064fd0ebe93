"""Differenced forecasting (data.difference, data.seasonal_lag): the model learns changes, metrics are in levels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlcli.data.forecast import differenced_windows
from dlcli.data.sequences import sine, timeseries_csv
from dlcli.errors import DataError, DlcliError

WINDOW = 24


def trending(seed: int, n: int = 300) -> np.ndarray:
    """A monthly-like series: a linear trend, a 12-step season and noise (sd 0.5)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 0.5 * t + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, n)


def write_csv(path, series: np.ndarray) -> str:
    path.write_text("month,sales\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(series)))
    return str(path)


# --- windows ------------------------------------------------------------------------------------------------------

def test_one_step_target_is_the_next_change_and_base_the_last_value():
    s = np.array([1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0])
    x, y, base = differenced_windows(s[:, None], s, window=2, horizon=1, lag=1, source="s")
    # changes: 3, 5, 7, 9, 11, 13; window i holds changes i, i+1 (times i+1, i+2), predicts s at time i+3
    assert x[:, :, 0].tolist() == [[3, 5], [5, 7], [7, 9], [9, 11]]
    assert y.tolist() == [7, 9, 11, 13]  # the next change
    assert base.tolist() == [9, 16, 25, 36]  # the window's last level
    assert (base + y).tolist() == s[3:].tolist()  # level = base + change


def test_several_steps_ahead_are_cumulative_changes_from_the_base():
    s = np.arange(20, dtype=float) ** 2
    x, y, base = differenced_windows(s[:, None], s, window=3, horizon=3, lag=1, source="s")
    assert y.shape == base.shape == (len(x), 3)
    for i in range(len(x)):
        last = 1 + i + 3 - 1
        assert np.allclose(base[i], s[last])
        assert np.allclose(base[i] + y[i], s[last + 1:last + 4])
        assert np.allclose(y[i], np.cumsum(np.diff(s)[last:last + 3]))  # the sum of the next changes


def test_seasonal_lag_takes_the_same_season_as_base():
    s = np.random.default_rng(0).normal(size=40).cumsum()
    x, y, base = differenced_windows(s[:, None], s, window=5, horizon=6, lag=4, source="s")
    assert np.allclose(x[0, :, 0], s[4:9] - s[0:5])  # seasonal changes
    last = 4 + 5 - 1
    assert np.allclose(base[0], [s[last - 3], s[last - 2], s[last - 1], s[last], s[last - 3], s[last - 2]])
    assert np.allclose(base[0] + y[0], s[last + 1:last + 7])


def test_timeseries_csv_and_sine_difference(tmp_path):
    s = trending(0, 60)
    path = write_csv(tmp_path / "s.csv", s)
    plain = timeseries_csv(seed=0, path=path, column="sales", window=5)
    diffed = timeseries_csv(seed=0, path=path, column="sales", window=5, difference=1)
    assert plain.offset is None and diffed.offset is not None
    assert len(diffed.y) == len(plain.y) - 1  # one point is spent on the first change
    assert np.allclose(diffed.y + diffed.offset, plain.y[1:], atol=1e-4)  # the same targets, in levels
    assert np.allclose(diffed.x[:, :, 0], np.diff(s)[np.arange(len(diffed.y))[:, None] + np.arange(5)], atol=1e-5)
    trend = sine(seed=0, n_points=200, trend=0.1, difference=1, window=10)
    assert np.allclose(trend.y + trend.offset, sine(seed=0, n_points=200, trend=0.1, window=10).y[1:], atol=1e-4)


@pytest.mark.parametrize(("keys", "match"), [
    ({"difference": 2}, r"data.difference is 0 .* or 1 .*got 2"),
    ({"seasonal_lag": 12}, r"seasonal_lag=12 differences at that lag only with data.difference=1"),
    ({"difference": 1, "seasonal_lag": 0}, r"data.seasonal_lag is a number of steps >= 1"),
])
def test_bad_differencing_keys(tmp_path, keys, match):
    path = write_csv(tmp_path / "s.csv", trending(0, 60))
    with pytest.raises(DataError, match=match):
        timeseries_csv(seed=0, path=path, column="sales", window=5, **keys)


# --- training ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_differenced_lstm_forecasts_a_trending_series_in_its_own_units(tmp_path, make_config):
    """An LSTM on the levels of a trending series extrapolates badly; on its changes it beats persistence, and
    its metrics and predictions are levels (R2 of levels, predictions near the true next values)."""
    from dlcli.data.prepare import split_indices
    from dlcli.training.evaluate import evaluate, rebuilt_test_split
    from dlcli.training.predict import predict
    from dlcli.training.reload import load_run
    from dlcli.training.train import train

    seed, s = 0, trending(0)
    path = write_csv(tmp_path / "sales.csv", s)
    common = ["data=timeseries_csv", f"data.path={path}", "data.column=sales", f"data.window={WINDOW}",
              "model=lstm", "model.hidden_size=32", "loss=mse", "optimizer.lr=0.01", "trainer.max_epochs=12",
              f"seed={seed}"]
    levels = train(make_config(*common).config)
    c = make_config(*common, "data.difference=1")
    result = train(c.config)
    # the persistence baseline (tomorrow = today) in the series' units, on the same test rows
    n_windows = len(s) - 1 - WINDOW  # windows of changes: one point is spent on the first change
    test = split_indices(np.zeros(n_windows), 0.15, 0.15, seed, stratify=False, ordered=True)["test"]
    now = 1 + test + WINDOW - 1  # each test window's last time step
    truth = s[now + 1]
    persistence = float(np.abs(truth - s[now]).mean())
    mae, r2 = result.metrics["test/mae"], result.metrics["test/r2"]
    print(f"MAE: differenced {mae:.3f}, levels {levels.metrics['test/mae']:.3f}, persistence {persistence:.3f}")
    assert mae < 0.7 * persistence  # seeds 0-2: 0.62-0.65 vs 1.18-1.26 (the noise alone gives MAE 0.40)
    assert mae * 10 < levels.metrics["test/mae"]  # seeds 0-2: 29-33x
    assert r2 > 0.95  # R2 of the levels (measured 0.985); the changes' R2 is far lower (season + noise)
    # the run's own predictions, with their bases added back, are the next values of the series
    run = load_run(str(result.run_dir))
    prepared = rebuilt_test_split(run, run.config)
    (x, _), base = prepared.splits["test"], prepared.offsets["test"]
    module = run.module()
    with torch.no_grad():
        levels_pred = module.predictions(module(torch.from_numpy(x))).numpy() + base
    assert np.abs(levels_pred - truth).mean() == pytest.approx(mae, rel=1e-3)
    assert evaluate(run).metrics["test/mae"] == pytest.approx(mae, rel=1e-4)  # eval adds the bases back too
    with pytest.raises(DlcliError, match=r"differenced windows \(data.difference=1\).*dlcli eval"):
        predict(run, tmp_path / "any.npz")
