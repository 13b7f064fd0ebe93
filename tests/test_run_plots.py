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


def _drawn(monkeypatch, draw, *args) -> list:
    """The figures ``draw(*args)`` saves, measured before they are saved."""
    import dlcli.runs.plots as plots

    figures = []
    save = plots._save

    def keep(fig, out):
        fig.canvas.draw()
        figures.append((fig, fig.get_tightbbox(fig.canvas.get_renderer()),
                        [ax.get_tightbbox(fig.canvas.get_renderer()) for ax in fig.axes if ax.get_visible()]))
        return save(fig, out)

    monkeypatch.setattr(plots, "_save", keep)
    draw(*args)
    return figures


def _inside(fig, box, slack=0.02) -> bool:
    width, height = fig.get_size_inches()
    return box.x0 >= -slack and box.y0 >= -slack and box.x1 <= width + slack and box.y1 <= height + slack


def test_the_pictures_labels_fit_their_figure_without_overlapping(tmp_path, monkeypatch):
    """The margins are set in inches instead of measured by drawing: every title, tick label and axis label
    still lies inside the figure, and no panel's labels run into another's."""
    from dlcli.runs.plots import save_confusion

    quantities_ = ["loss", "acc", "f1_macro", "precision_macro", "recall_macro"]  # two rows of panels
    for values in ((0.5, 0.25), (123456.0, 654321.0), (1e-7, 3e-7)):  # long tick labels, and exponents
        rows = [{"epoch": e, **{f"{s}/{q}": values[e] * (1 + i) for i, q in enumerate(quantities_)
                                for s in ("train", "val")}} for e in range(2)]
        for fig, box, axes in _drawn(monkeypatch, save_curves, tmp_path / "run-with-a-long-name-1234", rows):
            assert _inside(fig, box), (values, box)
            for i, a in enumerate(axes):
                for b in axes[i + 1:]:
                    assert not a.overlaps(b) or a.x1 <= b.x0 + 1 or b.x1 <= a.x0 + 1, (values, a, b)
    for names in (["cat", "dog"], [str(d) for d in range(10)], [f"class_number_{i:02d}" for i in range(30)]):
        matrix = [[(i * 7 + j * 3) % 50 for j in range(len(names))] for i in range(len(names))]
        for fig, box, _ in _drawn(monkeypatch, save_confusion, tmp_path, matrix, names):
            assert _inside(fig, box), (len(names), box)
