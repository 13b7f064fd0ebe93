"""Metrics by name per task, and the saved test confusion matrix."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from sklearn import metrics as skm

from dlcli.config.compose import compose
from dlcli.config.validate import ConfigError
from dlcli.errors import DlcliError
from dlcli.metrics import make_metric, task_metrics
from dlcli.training.train import train

torch.manual_seed(0)
PROBS = torch.softmax(torch.randn(40, 3), -1)
TARGET = torch.randint(0, 3, (40,))


@pytest.mark.parametrize(("name", "reference"), [
    ("acc", lambda p, t: skm.accuracy_score(t, p.argmax(1))),
    ("precision", lambda p, t: skm.precision_score(t, p.argmax(1), average="macro", zero_division=0)),
    ("recall", lambda p, t: skm.recall_score(t, p.argmax(1), average="macro", zero_division=0)),
    ("f1", lambda p, t: skm.f1_score(t, p.argmax(1), average="macro", zero_division=0)),
    ("f1_micro", lambda p, t: skm.f1_score(t, p.argmax(1), average="micro")),
    ("auroc", lambda p, t: skm.roc_auc_score(t, p, multi_class="ovr", average="macro")),
    ("top2_acc", lambda p, t: skm.top_k_accuracy_score(t, p, k=2)),
])
def test_multiclass_metrics_match_scikit_learn(name, reference):
    metric = make_metric(name, "multiclass", 3)
    assert metric(PROBS, TARGET).item() == pytest.approx(reference(PROBS.numpy(), TARGET.numpy()), abs=1e-4)


def test_regression_metrics_match_scikit_learn():
    pred, target = torch.randn(30), torch.randn(30)
    for name, ref in (("mae", skm.mean_absolute_error), ("mse", skm.mean_squared_error),
                      ("r2", skm.r2_score), ("explained_variance", skm.explained_variance_score)):
        assert make_metric(name, "regression", None)(pred, target).item() == pytest.approx(
            ref(target.numpy(), pred.numpy()), abs=1e-4)
    assert make_metric("rmse", "regression", None)(pred, target).item() == pytest.approx(
        skm.mean_squared_error(target.numpy(), pred.numpy()) ** 0.5, abs=1e-4)


def test_defaults_and_wrong_task():
    assert set(task_metrics("regression", None)) == {"mae", "rmse", "r2"}
    with pytest.raises(DlcliError, match="metric 'mae' does not apply to a multiclass task"):
        make_metric("mae", "multiclass", 3)


def test_unknown_metric_name_is_a_config_error():
    with pytest.raises(ConfigError, match=r"metrics\[1\]: unknown metric 'accuracy'"):
        compose(["metrics=[f1,accuracy]"])


def test_chosen_metrics_and_confusion_matrix_are_saved(make_config):
    composed = make_config("metrics=[acc,f1,top3_acc]", "trainer.max_epochs=3")
    result = train(composed.config, composed.overrides)
    assert {"test/acc", "test/f1", "test/top3_acc", "val/f1"} <= set(result.metrics)
    assert result.metrics["test/top3_acc"] >= result.metrics["test/acc"]
    rows = list(csv.reader((result.run_dir / "confusion_matrix.csv").open()))
    assert rows[0] == ["true\\predicted", *[str(d) for d in range(10)]]
    counts = [[int(v) for v in row[1:]] for row in rows[1:]]
    total = sum(map(sum, counts))
    assert total == json.loads((result.run_dir / "summary.json").read_text())["split_sizes"]["test"]
    assert sum(counts[i][i] for i in range(10)) / total == pytest.approx(result.metrics["test/acc"], abs=1e-6)
    png = result.run_dir / "plots" / "confusion_matrix.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
