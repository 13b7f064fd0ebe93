"""Recurrent models (rnn, lstm, gru) and the sequence datasets (sine, timeseries_csv, waveforms)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlcli.data.prepare import split_indices
from dlcli.data.sequences import WAVEFORMS, sine, timeseries_csv, waveforms
from dlcli.errors import DataError, DlcliError
from dlcli.registry import MODELS, load_components

load_components()


# --- models ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("head", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_one_heads_give_one_row_per_sequence(name, head, bidirectional):
    model = MODELS.get(name).build({"hidden_size": 8, "num_layers": 2, "dropout": 0.1, "head": head,
                                    "bidirectional": bidirectional}, in_shape=(12, 3), out_features=5)
    out = model(torch.randn(4, 12, 3))
    assert out.shape == (4, 5)
    assert model.linear.in_features == 8 * (2 if bidirectional else 1)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_many_predicts_every_step(bidirectional):
    model = MODELS.get("lstm").build({"hidden_size": 8, "head": "many_to_many", "bidirectional": bidirectional},
                                     in_shape=(12, 3), out_features=24)
    x = torch.randn(4, 12, 3)
    out = model(x)
    assert out.shape == (4, 24)  # 12 steps x 2 values, flattened step-major
    if not bidirectional:  # a forward-only net: step t's outputs depend on steps <= t only
        x2 = x.clone()
        x2[:, 5:] += 1.0
        out2 = model(x2).view(4, 12, 2)
        assert torch.allclose(out.view(4, 12, 2)[:, :5], out2[:, :5])
        assert not torch.allclose(out.view(4, 12, 2)[:, 5:], out2[:, 5:])


def test_last_head_takes_the_last_step():
    model = MODELS.get("gru").build({"hidden_size": 8}, in_shape=(12, 3), out_features=1).eval()
    x = torch.randn(2, 12, 3)
    steps, _ = model.recurrent.rnn(x)  # (B, T, H)
    assert torch.allclose(model(x), model.linear(steps[:, -1]))


def test_many_to_many_needs_a_multiple_of_the_steps():
    with pytest.raises(DlcliError, match=r"output count \(3\) must be a multiple of 12.*model.head=last"):
        MODELS.get("gru").build({"head": "many_to_many"}, in_shape=(12, 3), out_features=3)


def test_recurrent_model_refuses_non_sequence_input():
    with pytest.raises(DlcliError, match=r"model 'rnn' needs sequences \(T, F\).*\(1, 8, 8\)"):
        MODELS.get("rnn").build({}, in_shape=(1, 8, 8), out_features=3)


# --- datasets ---------------------------------------------------------------------------------------------------

def test_sine_windows_and_targets_line_up():
    table = sine(seed=0, n_points=200, window=10)
    assert table.x.shape == (190, 10, 1) and table.y.shape == (190,)
    assert table.x.dtype == np.float32 and table.kind == "regression" and table.ordered
    # y[i] is the value right after window i, which window i+1 ends with
    assert np.array_equal(table.y[:-1], table.x[1:, -1, 0])
    assert np.array_equal(table.x[1:, :-1], table.x[:-1, 1:])  # consecutive windows shift by one step
    assert np.array_equal(sine(seed=0, n_points=200, window=10).x, table.x)  # seeded
    assert not np.array_equal(sine(seed=1, n_points=200, window=10).x, table.x)


def test_sine_horizon_gives_the_next_values():
    table = sine(seed=0, n_points=100, window=10, horizon=3)
    assert table.x.shape == (88, 10, 1) and table.y.shape == (88, 3)
    for h in range(3):
        assert np.array_equal(table.y[:-3, h], table.x[1 + h:88 - 2 + h, -1, 0])


def test_sine_too_short_for_the_window():
    with pytest.raises(DataError, match="too few for data.window=30"):
        sine(seed=0, n_points=20)


@pytest.fixture
def series_csv(tmp_path):
    path = tmp_path / "s.csv"
    rows = [f"{i},{i * 10},{100 + i}" for i in range(20)]
    path.write_text("day,load,temp\n" + "\n".join(rows[:7]) + "\n\n" + "\n".join(rows[7:]) + "\n")
    return path


def test_timeseries_csv_windows_one_column(series_csv):
    table = timeseries_csv(seed=0, path=str(series_csv), column="load", window=5)
    assert table.x.shape == (15, 5, 1) and table.x.dtype == np.float32 and table.ordered
    assert table.x[0, :, 0].tolist() == [0, 10, 20, 30, 40]
    assert table.y.tolist() == [10.0 * (i + 5) for i in range(15)]  # the value right after each window


def test_timeseries_csv_with_features_and_horizon(series_csv):
    table = timeseries_csv(seed=0, path=str(series_csv), column="load", features=["temp", "load"], window=4,
                           horizon=2)
    assert table.x.shape == (15, 4, 2) and table.y.shape == (15, 2)
    assert table.feature_names == ["temp", "load"]
    assert table.x[2].tolist() == [[102, 20], [103, 30], [104, 40], [105, 50]]
    assert table.y[2].tolist() == [60, 70]


def test_timeseries_csv_errors(tmp_path, series_csv):
    with pytest.raises(DataError, match=r"not found: '.*nope.csv' \(data.path\)"):
        timeseries_csv(seed=0, path=str(tmp_path / "nope.csv"), column="load")
    with pytest.raises(DataError, match=r"no column 'lod' \(data.column\). Did you mean 'load'\?"):
        timeseries_csv(seed=0, path=str(series_csv), column="lod", window=5)
    with pytest.raises(DataError, match=r"no column 'tmp' \(data.features\). Did you mean 'temp'\?"):
        timeseries_csv(seed=0, path=str(series_csv), column="load", features=["tmp"], window=5)
    with pytest.raises(DataError, match="20 time points: too few for data.window=30"):
        timeseries_csv(seed=0, path=str(series_csv), column="load")
    bad = tmp_path / "bad.csv"
    bad.write_text("t,v\n1,2.5\n2,n/a\n")
    with pytest.raises(DataError, match=r"row 3, column 'v': 'n/a' is not a number"):
        timeseries_csv(seed=0, path=str(bad), column="v", window=1)
    bad.write_text("t,v\n1,2.5\n2,\n")
    with pytest.raises(DataError, match=r"row 3, column 'v': '' is a missing value \(data.na_values\). Fill it "
                                        "in, or fill every gap: data.missing=previous"):
        timeseries_csv(seed=0, path=str(bad), column="v", window=1)


def test_waveforms_are_balanced_labelled_sequences():
    table = waveforms(seed=0, n_samples=200, length=32, noise=0.0)
    assert table.x.shape == (200, 32, 1) and table.x.dtype == np.float32
    assert table.kind == "classification" and table.class_names == list(WAVEFORMS)
    assert np.bincount(table.y).tolist() == [50, 50, 50, 50]
    x = table.x[..., 0]
    square = x[table.y == WAVEFORMS.index("square")]
    assert set(np.unique(square)) == {-1.0, 1.0}  # noise-free square waves take two values only
    assert np.abs(x).max() <= 1.0 + 1e-6


# --- training ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sine_lstm_beats_the_naive_forecast_tenfold(tmp_path):
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    c = compose([f"output_dir={tmp_path / 'o'}", "experiment=sine_lstm", "trainer.enable_progress_bar=false"])
    result = train(c.config, c.overrides)
    data = c.config["data"]
    table = sine(seed=c.config["seed"], n_points=data["n_points"], period=data["period"], noise=data["noise"],
                 window=data["window"], horizon=data["horizon"])
    test = split_indices(table.y, data["val_fraction"], data["test_fraction"], c.config["seed"], stratify=False,
                         ordered=True)["test"]
    naive_mse = float(np.mean((table.x[test, -1, 0] - table.y[test]) ** 2))  # tomorrow = today
    mse = result.metrics["test/rmse"] ** 2  # original units
    print(f"sine_lstm test MSE {mse:.6f}, naive {naive_mse:.6f}, ratio {naive_mse / mse:.1f}")
    assert mse * 10 <= naive_mse, f"LSTM test MSE {mse:.5f} vs naive {naive_mse:.5f}"


@pytest.mark.slow
def test_gru_classifies_waveforms(tmp_path):
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    c = compose([f"output_dir={tmp_path / 'o'}", "data=waveforms", "data.n_samples=600", "data.length=32",
                 "model=gru", "model.hidden_size=32", "optimizer.lr=0.01", "trainer.max_epochs=15",
                 "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"])
    result = train(c.config, c.overrides)
    print("waveforms gru test/acc", result.metrics["test/acc"])
    # 0.889-0.922 over seeds 0, 1, 2 and 42 (threads 1 and 2 alike) here; another x86 CPU gave 0.800 at seed 42
    # (float differences change the path). Chance is 0.25: the floor keeps a margin below every measurement
    assert result.metrics["test/acc"] >= 0.7
