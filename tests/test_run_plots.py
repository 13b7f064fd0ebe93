"""Every run leaves plots/curves.png (train against validation per epoch) and config.json for `dlcli runs`."""

from __future__ import annotations

import json
import math

import yaml
from PIL import Image

from dlcli.runs.plots import quantities, save_curves
from dlcli.training.train import train


def non_blank(path, min_width=400, min_height=250) -> Image.Image:
    image = Image.open(path)
    assert image.format == "PNG" and image.width >= min_width and image.height >= min_height
    assert len(set(image.convert("L").getdata())) > 20  # lines, labels and legend: not one flat colour
    return image


def test_a_run_saves_its_curves_and_a_json_copy_of_its_config(make_config):
    composed = make_config("trainer.max_epochs=3", "model=perceptron", "name=curves")
    result = train(composed.config, composed.overrides)
    run = result.run_dir
    image = non_blank(run / "plots" / "curves.png", min_width=800)  # two panels: loss, acc
    assert image.width > image.height
    config = json.loads((run / "config.json").read_text())
    assert config == yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["name"] == "perceptron"


def test_curves_need_epochs_and_tolerate_missing_values(tmp_path):
    assert save_curves(tmp_path, []) is None and not (tmp_path / "plots").exists()  # stopped in its first epoch
    rows = [{"epoch": 0, "train/loss": 1.0, "val/loss": 1.2, "val/acc": 0.5, "lr": 0.1},
            {"epoch": 1, "train/loss": math.nan, "val/loss": 0.8, "val/acc": 0.7, "lr": 0.1}]  # a diverged epoch
    assert quantities(rows) == ["loss", "acc"]  # loss first; lr is not a train/val quantity
    non_blank(save_curves(tmp_path, rows))
