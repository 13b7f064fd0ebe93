"""The registry mechanism, and every registered component built and run once.

New components are covered for free: the tests below are parametrized over the registries.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import yaml

from dlcli.config.compose import shipped_config_dir
from dlcli.config.schema import DataConfig
from dlcli.config.validate import dataclass_params
from dlcli.data.table import Table
from dlcli.errors import DlcliError
from dlcli.registry import REGISTRIES, Registry, UnknownComponent, load_components

load_components()


def entries(kind):
    return [pytest.param(e, id=e.name) for e in REGISTRIES[kind]]


def test_duplicate_name_raises():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="duplicate thing name 'a'"):
        reg.register("a")(lambda: 2)


def test_unknown_name_suggests_closest_and_lists_all():
    with pytest.raises(UnknownComponent) as info:
        REGISTRIES["model"].get("mpl")
    assert "unknown model 'mpl'. Did you mean 'mlp'?" in str(info.value)
    assert "perceptron" in str(info.value)


def test_injected_params_are_hidden_from_the_config():
    assert "params" not in REGISTRIES["optimizer"].get("adam").params
    assert "in_shape" not in REGISTRIES["model"].get("mlp").params


def test_every_entry_has_a_one_line_description():
    for kind, reg in REGISTRIES.items():
        for entry in reg:
            assert entry.summary, f"{kind} '{entry.name}' needs a docstring"


# Each registered component has a YAML of the same name in its config group, listing every
# parameter with the builder's default, so the YAML shows every knob and cannot drift.
GROUP_OF = {"model": "model", "loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler",
            "augmentation": "augmentation", "logger": "logger", "dataset": "data"}


@pytest.mark.parametrize(("kind", "entry"), [(k, e) for k in GROUP_OF for e in REGISTRIES[k]],
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_each_component_has_a_matching_yaml(kind, entry):
    path = shipped_config_dir() / GROUP_OF[kind] / f"{entry.name}.yaml"
    assert path.is_file(), f"missing {path}"
    node = yaml.safe_load(path.read_text()) or {}
    assert node.pop("name") == entry.name
    if kind == "dataset":
        for key in dataclass_params(DataConfig):
            node.pop(key, None)
    assert set(node) == set(entry.params), f"{path}: keys differ from {entry.fn.__qualname__}'s parameters"
    for key, param in entry.params.items():
        expected = "???" if param.required else param.default
        if isinstance(expected, tuple):
            expected = list(expected)
        assert node[key] == expected, f"{path}: {key} is {node[key]!r}, the builder's default is {expected!r}"


def test_each_callback_param_is_documented_in_a_preset():
    presets = [yaml.safe_load(p.read_text()) or {} for p in (shipped_config_dir() / "callbacks").glob("*.yaml")]
    for entry in REGISTRIES["callback"]:
        shown = [p[entry.name] for p in presets if entry.name in p]
        assert shown, f"callback '{entry.name}' appears in no conf/callbacks preset"


@pytest.mark.parametrize("entry", entries("model"))
def test_model_forward_backward(entry):
    for in_shape in ((1, 8, 8), (5,)):
        model = entry.build({}, in_shape=in_shape, out_features=3)
        out = model(torch.randn(4, *in_shape))
        assert out.shape == (4, 3)
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _loss_inputs(task):
    if task == "multiclass":
        return torch.randn(6, 3, requires_grad=True), torch.tensor([0, 1, 2, 0, 1, 2])
    if task == "binary":
        return torch.randn(6, requires_grad=True), torch.tensor([0.0, 1, 0, 1, 1, 0])
    return torch.randn(6, requires_grad=True), torch.randn(6)


@pytest.mark.parametrize("entry", entries("loss"))
def test_loss_forward_backward(entry):
    assert entry.meta.get("tasks"), f"loss '{entry.name}' must declare the tasks it fits"
    for task in entry.meta["tasks"]:
        out, target = _loss_inputs(task)
        loss = entry.build({})(out, target)
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        assert out.grad is not None


def _one_step(optimizer, param):
    optimizer.zero_grad()
    (param ** 2).sum().backward()
    optimizer.step()


@pytest.mark.parametrize("entry", entries("optimizer"))
def test_optimizer_takes_a_step(entry):
    param = torch.nn.Parameter(torch.ones(3))
    _one_step(entry.build({}, params=[param]), param)
    assert torch.all(param < 1)  # moved downhill


@pytest.mark.parametrize("entry", entries("scheduler"))
def test_scheduler_steps(entry):
    param = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = entry.build({}, optimizer=opt, max_epochs=5, steps_per_epoch=4)
    if sched is None:
        return  # constant learning rate
    assert sched["interval"] in ("epoch", "step")
    for _ in range(20):
        _one_step(opt, param)
        sched["scheduler"].step()
    assert opt.param_groups[0]["lr"] > 0


@pytest.mark.parametrize("entry", entries("augmentation"))
def test_augmentation_keeps_batch_shapes(entry):
    aug = entry.build({})
    if aug is None:
        return
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    x2, y2 = aug(x, y)
    assert x2.shape == x.shape and len(y2) == 4


@pytest.mark.parametrize("entry", entries("callback"))
def test_callback_builds(entry, tmp_path):
    import pytorch_lightning as pl

    params = {k: ("val/loss" if k == "monitor" else "min" if k == "mode" else v.default)
              for k, v in entry.params.items() if not v.required}
    assert isinstance(entry.build(params, run_dir=str(tmp_path)), pl.Callback)


@pytest.mark.parametrize("entry", entries("logger"))
def test_logger_builds(entry, tmp_path):
    try:
        logger = entry.build({}, run_dir=str(tmp_path))
    except DlcliError as e:  # an optional package is missing: the message says what to install
        assert "pip install" in str(e)
        return
    assert logger is None or hasattr(logger, "log_metrics")


def _dataset_files(tmp_path):
    """Required parameters for the file-backed datasets, pointing at small files made here."""
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(20)))
    npz = tmp_path / "t.npz"
    np.savez(npz, x=np.random.rand(20, 2, 3), y=np.arange(20) % 2)
    return {"csv": {"path": str(csv), "target": "label"}, "npz": {"path": str(npz)}}


@pytest.mark.parametrize("entry", entries("dataset"))
def test_dataset_loads(entry, tmp_path):
    required = [name for name, p in entry.params.items() if p.required]
    params = _dataset_files(tmp_path).get(entry.name, {})
    assert set(required) <= set(params), f"add test files for dataset '{entry.name}' to _dataset_files"
    table = entry.build(params, seed=0)
    assert isinstance(table, Table)
    assert table.x.dtype == np.float32 and len(table.x) == len(table.y) > 10
    assert inspect.getdoc(entry.fn)
