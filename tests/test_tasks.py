"""The task registry: each task declares its facts in its own file; nothing else compares task names."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dlcli import registry
from dlcli.cli import app
from dlcli.data.table import Table
from dlcli.errors import DlcliError
from dlcli.registry import LOSSES, TASKS, load_components
from dlcli.tasks import auto_monitor, choose_task, get_task

load_components()
runner = CliRunner()
DLCLI = Path(__file__).resolve().parents[1] / "dlcli"


def test_task_facts_live_only_in_the_task_registry():
    """No module outside dlcli/tasks/ decides anything by comparing task names."""
    pattern = re.compile(r'== "multiclass"|task in \(|task == "|task not in \(')
    found = [f"{path.relative_to(DLCLI)}:{i}: {line.strip()}"
             for path in DLCLI.rglob("*.py") if "tasks" not in path.relative_to(DLCLI).parts
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "\n".join(found)


def test_every_task_is_fitted_by_a_loss_and_names_valid_defaults():
    for entry in TASKS:
        spec = get_task(entry.name)
        fitting = [e.name for e in LOSSES if spec.name in e.meta.get("tasks", ())]
        assert spec.default_loss in fitting, f"{spec.name}: default_loss {spec.default_loss} does not fit it"
        assert set(spec.default_metrics) <= set(spec.metric_names)
        assert spec.monitor[1] in ("min", "max")


@pytest.mark.parametrize(("kind", "loss", "expected"), [
    ("classification", "cross_entropy", "multiclass"), ("classification", "bce", "binary"),
    ("classification", "focal", "multiclass"), ("classification", "triplet", "metric_learning"),
    ("classification", "nt_xent", "contrastive"), ("multilabel", "bce", "multilabel"),
    ("regression", "mse", "regression"), ("transcription", "ctc", "transcription"),
])
def test_auto_chooses_the_task_from_the_data_kind_and_the_loss(kind, loss, expected):
    assert choose_task("auto", kind, loss, LOSSES.get(loss).meta["tasks"], "d").name == expected


def test_a_loss_that_does_not_fit_names_the_task_and_the_fix():
    with pytest.raises(DlcliError, match="loss 'mse' does not fit a multiclass task .* Use loss=cross_entropy"):
        choose_task("auto", "classification", "mse", LOSSES.get("mse").meta["tasks"], "iris")


def test_a_sweep_knows_the_monitor_before_the_data_is_read():
    assert auto_monitor(LOSSES.get("cross_entropy").meta["tasks"]) == ("val/acc", "max")
    assert auto_monitor(LOSSES.get("mse").meta["tasks"]) == ("val/loss", "min")
    assert auto_monitor(LOSSES.get("ctc").meta["tasks"]) == ("val/cer", "min")


def test_predictions_and_prediction_tables_per_task():
    out = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    zero, one = torch.tensor(0.0), torch.tensor(1.0)
    probs = get_task("multiclass").predictions(out, None, zero, one)
    assert torch.allclose(probs.sum(1), torch.ones(2))
    columns, rows = get_task("multiclass").tabulate(["a", "b"], probs.numpy(), ["cat", "dog"])
    assert columns == ["id", "prediction", "prob_cat", "prob_dog"] and [r["prediction"] for r in rows] == ["cat", "dog"]
    # regression: standardised outputs back in the targets' units
    values = get_task("regression").predictions(torch.tensor([0.0, 1.0]), None, torch.tensor(10.0), torch.tensor(2.0))
    assert values.tolist() == [10.0, 12.0]
    # binary: one logit per row, a threshold on the second class's probability
    p = get_task("binary").predictions(get_task("binary").output(torch.tensor([[-3.0], [3.0]])), None, zero, one)
    _, rows = get_task("binary").tabulate([0, 1], p.numpy(), ["no", "yes"])
    assert [r["prediction"] for r in rows] == ["no", "yes"]


def test_unknown_task_in_the_config_is_refused_with_a_suggestion(make_config):
    from dlcli.config.validate import ConfigError

    with pytest.raises(ConfigError, match="unknown task 'multiclas'. Did you mean 'multiclass'"):
        make_config("task=multiclas")


def test_list_tasks_shows_each_task_with_its_losses_and_monitor():
    result = runner.invoke(app, ["list", "tasks"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if "│ regression" in ln)
    assert "mse" in line and "val/loss (min)" in line
    assert all(name in result.output for name in TASKS.names())


PLUGIN_TASK = '''
"""A task of my own: multiclass classification whose best epoch is picked by macro F1."""
from dlcli.registry import LOSSES, TASKS
from dlcli.tasks.multiclass import multiclass


@TASKS.register()
class multiclass_f1(multiclass):
    """Multiclass, reported and selected by macro F1."""

    name = "multiclass_f1"
    auto_kind = None  # only when asked for: task=multiclass_f1
    default_metrics = ("f1", "acc")
    monitor = ("val/f1", "max")
    default_loss = "smoothed_ce"


@LOSSES.register(tasks=("multiclass_f1",))
def smoothed_ce(label_smoothing: float = 0.1):
    """Cross-entropy with label smoothing."""
    import torch.nn as nn

    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
'''


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    registry._load_builtins()
    for reg in registry.REGISTRIES.values():
        monkeypatch.setattr(reg, "_entries", dict(reg._entries))
    monkeypatch.setattr(registry, "_plugins", {})
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("task_plugin", None)


def test_a_plugin_task_trains_with_its_own_metrics_and_monitor(plugin_site, tmp_path):
    (plugin_site / "task_plugin.py").write_text(PLUGIN_TASK)
    conf = tmp_path / "conf" / "loss"
    conf.mkdir(parents=True)
    (conf / "smoothed_ce.yaml").write_text("name: smoothed_ce\nlabel_smoothing: 0.1\n")
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["train", "--plugin", "task_plugin", "-C", str(tmp_path / "conf"),
                                 "task=multiclass_f1", "loss=smoothed_ce", "data=wine", "trainer.max_epochs=20",
                                 f"output_dir={out}", "trainer.enable_progress_bar=false",
                                 "trainer.accelerator=cpu", "threads=1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    assert summary["task"] == "multiclass_f1"
    assert summary["metrics"]["test/f1"] >= 0.85 and "test/acc" in summary["metrics"]
    assert summary["best"]["monitor"] == "val/f1"


def test_targets_are_made_by_the_task():
    table = Table(np.zeros((6, 2), np.float32), np.array(["b", "a", "b", "a", "b", "a"]), "classification")
    y, names = get_task("multiclass").targets(table, "t")
    assert names == ["a", "b"] and y.tolist() == [1, 0, 1, 0, 1, 0]
    with pytest.raises(DlcliError, match="has 3 classes. Use loss=cross_entropy"):
        get_task("binary").targets(Table(np.zeros((9, 1)), np.arange(9) % 3, "classification"), "t")
