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
from dlcli.config.schema import DataConfig, ModelConfig, OptimizerConfig, SchedulerConfig
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
    common = {"dataset": DataConfig, "model": ModelConfig, "scheduler": SchedulerConfig,
              "optimizer": OptimizerConfig}.get(kind)
    if common is not None:
        for key in dataclass_params(common):
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


# One sample's shape for each kind of input a model or layer declares (`inputs=` at registration).
SAMPLE_SHAPES = {
    "any": [(1, 8, 8), (5,)],
    "vector": [(5,)],
    "image": [(1, 8, 8), (3, 16, 16)],  # grayscale and RGB
    "sequence": [(12, 3)],  # (T, F)
    "series": [(12, 3), (12,)],  # (T, F), or rows of T values (univariate)
    "channels_first_sequence": [(3, 12)],  # (C, L)
    "tokens": [(10,)],  # token ids
}
VOCAB = 20


def sample_batch(kind: str, shape: tuple[int, ...]) -> torch.Tensor:
    if kind == "tokens":
        return torch.randint(1, VOCAB, (4, *shape))
    return torch.randn(4, *shape)


def input_cases(kind: str):
    """(entry, input kind, sample shape) for every entry of a registry, by the inputs it declares."""
    for entry in REGISTRIES[kind]:
        inputs = entry.meta.get("inputs")
        assert inputs in SAMPLE_SHAPES, f"{kind} '{entry.name}' must declare inputs= one of {list(SAMPLE_SHAPES)}"
        for shape in SAMPLE_SHAPES[inputs]:
            yield pytest.param(entry, inputs, shape, id=f"{entry.name}-{'x'.join(map(str, shape))}")


# Values for models' required parameters (a model with no defaults for something needs an example here).
MODEL_EXAMPLES = {
    "graph": {"nodes": {"flat": {"layer": "flatten"}, "hidden": {"layer": "dense", "input": "flat", "units": 8},
                        "skip": {"layer": "dense", "input": "flat", "units": 8},
                        "sum": {"merge": "add", "inputs": ["hidden", "skip"]},
                        "out": {"layer": "dense", "input": "sum"}}},
}


@pytest.mark.parametrize(("entry", "kind", "in_shape"), list(input_cases("model")))
def test_model_forward_backward(entry, kind, in_shape):
    params = MODEL_EXAMPLES.get(entry.name, {})
    required = {n for n, p in entry.params.items() if p.required}
    assert required <= set(params), f"add an example for model '{entry.name}' to MODEL_EXAMPLES"
    model = entry.build(params, in_shape=in_shape, out_features=3, task="multiclass", vocab_size=VOCAB)
    out = model(sample_batch(kind, in_shape))
    assert out.shape == (4, 3)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize(("entry", "kind", "in_shape"), list(input_cases("layer")))
def test_layer_forward_backward(entry, kind, in_shape):
    params = {"units": 4} if entry.name == "dense" else {"groups": 1} if entry.name == "group_norm" else {}
    layer = entry.build(params, in_shape=in_shape, vocab_size=VOCAB)
    x = sample_batch(kind, in_shape)
    if x.is_floating_point():
        x.requires_grad_(True)
    out = layer(x)
    assert out.shape[0] == 4
    out.float().sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


def _loss_inputs(task):
    if task == "multiclass":
        return torch.randn(6, 3, requires_grad=True), torch.tensor([0, 1, 2, 0, 1, 2])
    if task == "binary":
        return torch.randn(6, requires_grad=True), torch.tensor([0.0, 1, 0, 1, 1, 0])
    if task == "multilabel":
        return torch.randn(6, 3, requires_grad=True), torch.randint(0, 2, (6, 3)).float()
    if task == "reconstruction":
        return torch.randn(6, 4, requires_grad=True), torch.randn(6, 4)
    if task == "metric_learning":  # embeddings and class ids, several per class
        return torch.randn(6, 4, requires_grad=True), torch.tensor([0, 0, 1, 1, 2, 2])
    if task == "contrastive":  # embeddings of two views of the same 6 images
        return torch.randn(6, 4, requires_grad=True), torch.randn(6, 4)
    if task == "transcription":  # per-step scores (B, T, blank + 3 symbols); targets padded with 0
        return torch.randn(6, 10, 4, requires_grad=True), torch.tensor([[1, 2, 0]] * 3 + [[3, 3, 1]] * 3)
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
    for _ in range(19):  # as many steps as the run has, less the last (schedules may end at 0 after it)
        _one_step(opt, param)
        if "monitor" in sched:  # reduce-on-plateau takes the monitored value
            sched["scheduler"].step(1.0)
        else:
            sched["scheduler"].step()
    assert opt.param_groups[0]["lr"] > 0


@pytest.mark.parametrize("entry", entries("augmentation"))
def test_augmentation_keeps_batch_shapes(entry):
    if entry.meta.get("inputs") == "tokens":  # text augmentation: word-level token ids and their vocabulary
        text = {"level": "word", "max_length": 10, "min_freq": 1, "max_vocab": None, "lowercase": True}
        aug = entry.build({"p": 1.0}, in_shape=(10,), num_classes=3, task="multiclass",
                          vocab=["<pad>", "<unk>", *(f"w{i}" for i in range(VOCAB - 2))], text=text)
        x = sample_batch("tokens", (10,))
    else:
        aug = entry.build({}, in_shape=(1, 8, 8), num_classes=3, task="multiclass")
        x = torch.rand(4, 1, 8, 8)
    if aug is None:
        return
    x2, y2 = aug(x, torch.tensor([0, 1, 2, 0]))
    assert x2.shape == x.shape and x2.dtype == x.dtype and len(y2) == 4


@pytest.mark.parametrize("entry", entries("augmentation_op"))
@pytest.mark.parametrize("in_shape", [(1, 8, 8), (3, 12, 10)])
def test_augmentation_op_keeps_shapes(entry, in_shape):
    if entry.name in ("saturation", "hue") and in_shape[0] != 3:
        return  # RGB only; refusing grayscale is tested with the pipeline
    op = entry.build({}, in_shape=in_shape)
    x = torch.rand(4, *in_shape)
    out = op(x, torch.tensor([0, 1, 2, 0]), 3) if entry.name in ("mixup", "cutmix") else op(x)
    out_x = out[0] if isinstance(out, tuple) else out
    assert out_x.shape == x.shape


@pytest.mark.parametrize("entry", entries("callback"))
def test_callback_builds(entry, tmp_path):
    import pytorch_lightning as pl

    params = {k: ("val/loss" if k == "monitor" else "min" if k == "mode" else v.default)
              for k, v in entry.params.items() if not v.required}
    built = entry.build(params, run_dir=str(tmp_path))
    assert all(isinstance(cb, pl.Callback) for cb in (built if isinstance(built, list) else [built]))


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
    # image datasets: 8 + 4 IDX images (28x28), 2 classes x 6 PNGs, 2 + 10 CIFAR-10 binary records
    from PIL import Image

    idx = tmp_path / "idx"
    idx.mkdir()
    for split, n in (("train", 8), ("t10k", 4)):
        header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
        (idx / f"{split}-images-idx3-ubyte").write_bytes(header + bytes(n * 28 * 28))
        labels = (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(i % 10 for i in range(n))
        (idx / f"{split}-labels-idx1-ubyte").write_bytes(labels)
    images = tmp_path / "images"
    for cls, value in (("dark", 20), ("light", 230)):
        (images / cls).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (10, 12), value + i).save(images / cls / f"{i}.png")
    cifar = tmp_path / "cifar-10-batches-bin"
    cifar.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (cifar / name).write_bytes(bytes([1]) + bytes(3072) + bytes([7]) + bytes(3072))
    texts = tmp_path / "texts.csv"
    texts.write_text("text,label\n" + "".join(f"sample text number {i},{'ab'[i % 2]}\n" for i in range(20)))
    return {"csv": {"path": str(csv), "target": "label"}, "npz": {"path": str(npz)},
            "timeseries_csv": {"path": str(csv), "column": "a", "window": 5},
            "text_csv": {"path": str(texts)},
            "idx": {"root": str(idx)}, "image_folder": {"root": str(images)}, "cifar10": {"root": str(tmp_path)}}


@pytest.mark.parametrize("entry", entries("dataset"))
def test_dataset_loads(entry, tmp_path):
    required = [name for name, p in entry.params.items() if p.required]
    params = _dataset_files(tmp_path).get(entry.name, {})
    assert set(required) <= set(params), f"add test files for dataset '{entry.name}' to _dataset_files"
    table = entry.build(params, seed=0)
    assert isinstance(table, Table)
    assert len(table.x) == len(table.y) > 10
    if table.text is not None:  # raw texts; dlcli tokenizes them after splitting
        assert all(isinstance(t, str) for t in table.x) and table.text["max_length"] > 0
    else:
        assert table.x.dtype == np.float32
    assert inspect.getdoc(entry.fn)
