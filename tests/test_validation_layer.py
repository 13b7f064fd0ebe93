"""One validation layer: `config show` refuses what `train` refuses, before any data is read.

Values are checked against the ranges declared with their parameters (``Annotated[float, Range(...)]``),
nested component lists against their registries, and keys that relate to each other by registered rules.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.config.types import Range, conform, describe
from dlcli.config.validate import ConfigError

runner = CliRunner()

REFUSED = [
    (["optimizer.lr=-1"], "optimizer.lr: expected a number > 0, got -1"),
    (["scheduler.warmup_start_factor=5"], "scheduler.warmup_start_factor: expected a number in (0, 1], got 5"),
    (["model=sequential", "model.layers=[flatten,{dense: {unitz: 3}}]"],
     "model.layers[1].unitz: unknown key for layer 'dense'. Did you mean 'units'?"),
    (["augmentation=pipeline", "augmentation.ops=[{rotaton: {degrees: 10}}]"],
     "augmentation.ops[0]: unknown augmentation op 'rotaton'. Did you mean 'rotation'?"),
    (["data.path=iris.csv"],
     "data.path: unknown key for dataset 'digits'. It is a key of dataset csv, npz, text_csv, timeseries_csv, not of "
     "'digits': choose one first, e.g. data=csv data.path=..."),
    (["modle=perceptron"], "modle: unknown key for the top level. Did you mean 'model'?"),
    (["data", "=", "iris"], "overrides: 'data' '=' 'iris' look like one override written with spaces around '=': "
                            "write it without them, data=iris"),
    (["callbacks.early_stopping.monitor=val/accc"],
     "callbacks.early_stopping.monitor: 'val/accc' is no metric a run logs. Did you mean 'val/acc'?"),
    (["callbacks.model_checkpoint.monitor=vall/acc"],
     "callbacks.model_checkpoint.monitor: 'vall/acc' is no metric a run logs: the part before '/' is train, val or "
     "test. Did you mean 'val'?"),
]


@pytest.mark.parametrize("command", [["config", "show"], ["train"]], ids=["config-show", "train"])
@pytest.mark.parametrize(("overrides", "expected"), REFUSED, ids=[r[0][-1][:30] for r in REFUSED])
def test_config_show_and_train_refuse_the_same_values_before_reading_data(command, overrides, expected, tmp_path):
    out = tmp_path / "outputs"
    result = runner.invoke(app, [*command, *overrides, f"output_dir={out}", "threads=1"])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.output
    assert "splits:" not in result.output  # the data was never read...
    assert not out.exists()  # ...and no run folder made


def test_every_problem_in_nested_lists_is_reported_at_once():
    with pytest.raises(ConfigError) as e:
        compose(["model=sequential", "model.layers=[flatten,{dense: {unitz: 3}},{dropot: {rate: 0.1}},"
                 "{dropout: {rate: 2}}]", "augmentation=pipeline",
                 "augmentation.ops=[{rotaton: {degrees: 10}},{hflip: {p: 1.5}}]"])
    assert {p.path for p in e.value.problems} == {
        "model.layers[1].unitz", "model.layers[2]", "model.layers[3].rate", "augmentation.ops[0]",
        "augmentation.ops[1].p"}
    assert "model.layers[3].rate: expected a number in [0, 1), got 2" in str(e.value)


def test_graph_nodes_are_checked_against_the_layer_registry():
    nodes = "{a: {layer: flatten}, b: {layer: dense, unitz: 4, input: a}, c: {merge: sum, inputs: [a, zz]}}"
    with pytest.raises(ConfigError) as e:
        compose(["model=graph", f"model.nodes={nodes}"])
    message = str(e.value)
    assert "model.nodes.b.unitz: unknown key for layer 'dense'" in message
    assert "model.nodes.c.merge: unknown merge 'sum'" in message
    assert "model.nodes.c.inputs: 'zz' is not an earlier node" in message


@pytest.mark.parametrize(("override", "key"), [
    ("optimizer.lr=nan", "optimizer.lr"), ("optimizer.betas=[0.9,1.0]", "optimizer.betas"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay"), ("data.num_workers=-1", "data.num_workers"),
    ("seed=-1", "seed"), ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches"),
    ("trainer.devices=0", "trainer.devices"), ("threads=0", "threads"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"), ("model.dropout=1.0", "model.dropout"),
    ("callbacks.early_stopping.patience=-1", "callbacks.early_stopping.patience"),
    ("data.batch_size=0", "data.batch_size"), ("model.hidden=[64,0]", "model.hidden"),
    ("metrics=[top0_acc]", "metrics[0]"),
])
def test_values_outside_their_declared_range_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        compose([override])
    assert [p.path for p in e.value.problems] == [key]


def test_scheduler_steps_and_hidden_sizes_have_ranges_too():
    with pytest.raises(ConfigError) as e:
        compose(["scheduler=step", "scheduler.step_size=0", "model=gru", "model.hidden_size=0"])
    assert {p.path for p in e.value.problems} == {"scheduler.step_size", "model.hidden_size"}


def test_a_range_is_part_of_the_type():
    assert Range(0, 1, open_high=True).words() == "in [0, 1)"
    assert Range(0, None, open_low=True).words() == "> 0"
    from typing import Annotated

    ann = Annotated[float, Range(0, 1)]
    assert conform(0.5, ann) == (True, 0.5)
    assert conform(1, ann) == (True, 1.0)
    assert conform(1.5, ann)[0] is False
    assert conform(float("nan"), ann)[0] is False
    assert describe(ann | None) == "a number in [0, 1] or null"
    assert conform(None, ann | None)[0] is True


def test_config_show_says_what_no_validation_split_changes():
    result = runner.invoke(app, ["config", "show", "data.val_fraction=0"])
    assert result.exit_code == 0, result.output
    assert "callbacks.model_checkpoint, callbacks.early_stopping watch train/loss" in result.stderr
    assert "monitor: train/loss" in result.stdout


def test_no_validation_split_trains_on_the_training_loss_and_says_so(tmp_path):
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["train", "data.val_fraction=0", "trainer.max_epochs=3", "threads=1",
                                 f"output_dir={out}"])
    assert result.exit_code == 0, result.output
    assert "data.val_fraction=0 leaves no validation split" in result.stderr
    (run,) = out.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["best"]["monitor"] == "train/loss"
    assert summary["split_sizes"] == {"train": 1527, "test": 270}
    # digits MLP, 3 epochs, no validation split: 0.933-0.970 over seeds 0, 1, 2 and 42; floor with a margin
    assert summary["metrics"]["test/acc"] > 0.85


def test_top_k_beyond_the_classes_is_refused_naming_the_metric_and_leaves_no_run(tmp_path):
    """A bundled dataset declares its classes: refused with the config, before any data is read; for a
    file's data the classes are known once it is read, and it is refused then, before any run folder."""
    out = tmp_path / "outputs"
    for command in (["config", "show"], ["train"]):
        result = runner.invoke(app, [*command, "metrics=[top100_acc]", "threads=1", f"output_dir={out}"])
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.split())
        assert "metrics[0]: top100_acc counts the true class among the top 100, and data 'digits' has 10" in message
        assert "splits:" not in result.output and not out.exists()
    csv_path = tmp_path / "three.csv"
    csv_path.write_text("a,b,y\n" + "".join(f"{i},{i % 7},{i % 3}\n" for i in range(60)))
    result = runner.invoke(app, ["train", "data=csv", f"data.path={csv_path}", "data.target=y",
                                 "metrics=[top5_acc]", "threads=1", f"output_dir={out}"])
    assert result.exit_code == 2, result.output
    assert "top5_acc counts the true class among the top 5, and this data has 3 classes" in \
        " ".join(result.stderr.split())
    assert not out.exists() and "Traceback" not in result.output


def test_a_validation_split_too_small_for_the_classes_is_refused_in_dlclis_terms_and_leaves_no_run(tmp_path):
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["train", "data=iris", "data.val_fraction=0.01", "threads=1", f"output_dir={out}"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert ("cannot split the data: the validation split (data.val_fraction=0.01 of 150 rows) would hold 2 rows, "
            "fewer than the 3 classes") in message
    assert "data.stratify=false" in message and "test_size" not in message
    assert not out.exists() and "Traceback" not in result.output
