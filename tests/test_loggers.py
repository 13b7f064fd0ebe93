"""Experiment loggers besides metrics.csv: TensorBoard event files, MLflow params and metrics (optional extras)."""

from __future__ import annotations

import csv

import pytest

from dlcli.training.train import train


def test_tensorboard_writes_event_files_with_the_epoch_metrics(make_config):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    composed = make_config("logger=tensorboard", "trainer.max_epochs=2", "model=perceptron")
    run = train(composed.config, composed.overrides).run_dir
    events = list((run / "logs").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"train/loss", "val/loss", "val/acc"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("val/acc")) == 2  # one per epoch


@pytest.mark.slow
def test_mlflow_records_the_config_as_params_and_metrics_per_epoch(make_config, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # restored afterwards; the logger sets it too
    composed = make_config("logger=mlflow", "trainer.max_epochs=2", "model=perceptron", "optimizer.lr=0.003")
    run = train(composed.config, composed.overrides).run_dir

    client = MlflowClient(tracking_uri=(run / "mlruns").as_uri())  # the local store in the run folder
    experiment = client.get_experiment_by_name("dlcli")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == run.name and found.info.status == "FINISHED"
    params = found.data.params
    assert params["optimizer.lr"] == "0.003" and params["model.name"] == "perceptron"
    assert params["data.name"] == "digits" and params["trainer.max_epochs"] == "2"
    with (run / "metrics.csv").open() as f:
        expected = [float(row["val/acc"]) for row in csv.DictReader(f)]
    history = client.get_metric_history(found.info.run_id, "val/acc")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(expected)
    assert "test/acc" in found.data.metrics


def test_mlflow_takes_another_tracking_uri_and_experiment(make_config, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = (tmp_path / "shared-mlruns").as_uri()
    composed = make_config("logger=mlflow", f"logger.tracking_uri={store}", "logger.experiment_name=digits",
                           "trainer.max_epochs=1", "model=perceptron")
    run = train(composed.config, composed.overrides).run_dir
    assert not (run / "mlruns").exists()
    experiment = MlflowClient(tracking_uri=store).get_experiment_by_name("digits")
    (found,) = MlflowClient(tracking_uri=store).search_runs([experiment.experiment_id])
    assert found.info.run_name == run.name
