"""Preprocessing saved with a run (image conversion, per-channel normalisation, scaling, vocabulary)
and re-applied by anything that reloads the run: the same inputs give the same model inputs and outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlcli.data.prepare import apply_scaler, convert_images, fit_scaler, label_subset
from dlcli.errors import DataError, DlcliError
from dlcli.registry import DATASETS
from dlcli.training.build import load_data
from dlcli.training.reload import load_run
from dlcli.training.train import train


def run(make_config, *overrides):
    composed = make_config(*overrides)
    return train(composed.config, composed.overrides)


def test_channel_statistics_are_fitted_per_channel_or_taken_as_given():
    rng = np.random.default_rng(0)
    x = rng.normal([[[[1.0]], [[5.0]], [[-3.0]]]], [[[[2.0]], [[0.5]], [[1.0]]]], size=(400, 3, 6, 6))
    scaler = fit_scaler(x, "channel")
    assert scaler["axis"] == 1 and np.allclose(scaler["mean"], [1, 5, -3], atol=0.2)
    out = apply_scaler(x, scaler)
    assert np.allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5) and np.allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-4)
    given = fit_scaler(x, "channel", mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    assert given["mean"] == [0.5] * 3
    assert np.allclose(apply_scaler(x, given), (x - 0.5) / 0.25, atol=1e-5)
    with pytest.raises(DataError, match="data.channel_mean has 1 values, but the inputs have 3 channels"):
        fit_scaler(x, "channel", mean=[0.5], std=[0.2])


def test_grayscale_rgb_and_resize():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    rgb = convert_images(x, {"channels": 3, "resize": None})
    assert rgb.shape == (2, 3, 4, 4) and all(np.array_equal(rgb[:, c], x[:, 0]) for c in range(3))
    gray = convert_images(rgb, {"channels": 1, "resize": None})
    assert gray.shape == (2, 1, 4, 4) and np.allclose(gray, x, atol=1e-4)  # luma weights sum to 1
    big = convert_images(x, {"channels": None, "resize": [8, 6]})
    assert big.shape == (2, 1, 8, 6)
    assert np.isclose(big.mean(), x.mean(), atol=0.5)  # bilinear keeps the level


def test_label_fraction_keeps_a_stratified_share_of_the_training_split():
    y = np.repeat(np.arange(10), 100)
    keep = label_subset(y, np.arange(1000), 0.1, seed=0, stratify=True)
    assert len(keep) == 100 and np.array_equal(np.bincount(y[keep]), np.full(10, 10))
    with pytest.raises(DataError, match="label_fraction"):
        label_subset(y, np.arange(1000), 1.5, seed=0, stratify=True)
    with pytest.raises(DataError, match=r"data.label_fraction=0.005 keeps 5 of the 1000 training rows, fewer than "
                                        r"the 10 classes, .* Use a larger fraction, or set data.stratify=false"):
        label_subset(y, np.arange(1000), 0.005, seed=0, stratify=True)
    assert len(label_subset(y, np.arange(1000), 0.005, seed=0, stratify=False)) == 5


def test_image_options_reach_the_model_and_are_saved(make_config):
    cfg = make_config("data.scaling=channel", "data.channels=3", "data.resize=[12,12]").config
    from dlcli.config.validate import validate

    prepared = load_data(validate(cfg))
    assert prepared.in_shape == (3, 12, 12)
    pre = prepared.preprocessing
    assert pre["image"] == {"channels": 3, "resize": [12, 12]} and pre["scaling"]["method"] == "channel"
    x_train = prepared.splits["train"][0]
    assert np.allclose(x_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)  # fitted on the train split
    json.dumps(pre)  # plain data: saved as preprocessing.json


@pytest.mark.parametrize("overrides", [
    ["data.scaling=channel", "data.channels=3", "data.resize=[12,12]", "model=cnn", "model.channels=[8,16]"],
    ["data.scaling=minmax"],
])
def test_reloaded_run_gives_the_same_inputs_and_outputs(make_config, overrides):
    result = run(make_config, *overrides, "trainer.max_epochs=3")
    loaded = load_run(str(result.run_dir))
    cfg = loaded.config
    prepared = load_data(cfg)  # what training saw, rebuilt the same way
    table = DATASETS.get("digits").build({}, seed=cfg["seed"])
    test_rows = _test_rows(table.y, cfg)
    x = loaded.inputs(table.x[test_rows])  # raw pixels through the saved preprocessing
    assert np.array_equal(x, prepared.splits["test"][0])
    probs = loaded.predict(table.x[test_rows])
    acc = float((probs.argmax(1) == prepared.splits["test"][1]).mean())
    assert acc == pytest.approx(result.metrics["test/acc"], abs=1e-6)  # the same model, the same inputs


def _test_rows(y, cfg):
    from dlcli.data.prepare import split_indices

    d = cfg["data"]
    return split_indices(np.unique(y, return_inverse=True)[1], d["val_fraction"], d["test_fraction"], cfg["seed"],
                         d["stratify"])["test"]


def test_reloaded_text_run_encodes_with_its_vocabulary(make_config):
    result = run(make_config, "experiment=text_gru", "trainer.max_epochs=2", "data.n_samples=400")
    loaded = load_run(result.run_dir.name[:15], output_dir=str(result.run_dir.parent))
    prepared = load_data(loaded.config)
    table = DATASETS.get("reviews").build({"n_samples": 400}, seed=loaded.config["seed"])
    rows = _test_rows(table.y, loaded.config)
    assert np.array_equal(loaded.inputs(list(table.x[rows])), prepared.splits["test"][0])
    probs = loaded.predict(list(table.x[rows]))
    acc = float((probs.argmax(1) == prepared.splits["test"][1]).mean())
    assert acc == pytest.approx(result.metrics["test/acc"], abs=1e-6)


def test_fine_tuning_re_applies_the_source_runs_preprocessing(make_config, tmp_path):
    source = run(make_config, "data.scaling=channel", "data.channel_mean=[8.0]", "data.channel_std=[4.0]",
                 "trainer.max_epochs=1")
    tuned = run(make_config, f"model.pretrained={source.run_dir}", "data.scaling=minmax", "data.label_fraction=0.2",
                "trainer.max_epochs=1")
    pre = json.loads((tuned.run_dir / "preprocessing.json").read_text())
    assert pre["scaling"] == {"method": "channel", "axis": 1, "mean": [8.0], "std": [4.0]}
    assert pre["reused_from"] == str(source.run_dir) and pre["label_fraction"] == 0.2
    assert pre["split_sizes"]["train"] == round(0.2 * json.loads(
        (source.run_dir / "preprocessing.json").read_text())["split_sizes"]["train"])
    with pytest.raises(DlcliError, match=r"Convert the inputs to fit: data.channels=1 data.resize=\[8,8\]"):
        run(make_config, f"model.pretrained={source.run_dir}", "data.channels=3", "data.resize=16",
            "trainer.max_epochs=1")


def test_image_options_on_tables_and_stray_statistics_are_refused(make_config):
    with pytest.raises(DataError, match="data.resize converts images"):
        run(make_config, "data=iris", "data.resize=8")
    with pytest.raises(DataError, match="add data.scaling=channel"):
        run(make_config, "data.scaling=standard", "data.channel_mean=[0.5]", "data.channel_std=[0.2]")
