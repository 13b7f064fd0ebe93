"""Callbacks do what their names say: stop, keep the best, reduce the rate, average, refuse NaN."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlcli.errors import DlcliError
from dlcli.registry import CALLBACKS, load_components
from dlcli.training.train import train

load_components()


class Scripted(pl.LightningModule):
    """Trains a tiny linear layer; its validation metric follows a script, one value per epoch."""

    def __init__(self, script, name="val/loss"):
        super().__init__()
        self.layer, self.script, self.name = nn.Linear(2, 1), script, name

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log(self.name, float(self.script[min(self.current_epoch, len(self.script) - 1)]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(module, callbacks, epochs, tmp_path):
    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
                         default_root_dir=tmp_path, enable_checkpointing=any(
                             isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks))
    trainer.fit(module, data, data)
    return trainer


def build(name, tmp_path, **params):
    return CALLBACKS.get(name).build(params, run_dir=str(tmp_path))


def test_early_stopping_stops_patience_epochs_after_the_best(tmp_path):
    stop = build("early_stopping", tmp_path, monitor="val/loss", mode="min", patience=2)
    trainer = fit(Scripted([5, 4, 3, 3.5, 3.2, 1, 1]), [stop], 7, tmp_path)
    assert trainer.current_epoch == 5  # best at epoch 2; epochs 3 and 4 do not improve -> stopped after 4
    assert stop.stopped_epoch == 4


@pytest.mark.parametrize(("mode", "best_epoch"), [("max", 1), ("min", 0)])
def test_checkpoint_keeps_the_best_epoch_by_metric_and_mode(tmp_path, mode, best_epoch):
    ckpt = build("model_checkpoint", tmp_path, monitor="val/acc", mode=mode, tiebreak=None)  # [best, last]
    fit(Scripted([0.5, 0.9, 0.7], name="val/acc"), ckpt, 3, tmp_path)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] == best_epoch
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


class TwoScripted(Scripted):
    """Logs val/acc and val/loss, each from its own script."""

    def __init__(self, acc, loss):
        super().__init__(acc, name="val/acc")
        self.loss_script = loss

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        self.log("val/loss", float(self.loss_script[min(self.current_epoch, len(self.loss_script) - 1)]))


# val/acc saturates at 1.0 in epoch 0 and never strictly improves; val/loss goes on falling to epoch 3
SATURATED = ([1.0, 1.0, 0.9, 1.0, 1.0], [0.60, 0.30, 0.20, 0.25, 0.40])


def test_checkpoint_breaks_ties_in_a_saturated_metric_by_validation_loss(tmp_path):
    ckpt = build("model_checkpoint", tmp_path, monitor="val/acc", mode="max")  # tiebreak: val/loss (default)
    fit(TwoScripted(*SATURATED), ckpt, 5, tmp_path)
    # epoch 2 has the lowest loss but not the best acc; among the epochs at 1.0, epoch 3's loss is lowest
    assert torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == 3
    assert ckpt[0].best_model_score == 1.0


def test_checkpoint_keeps_the_first_epoch_when_its_loss_is_also_the_lowest(tmp_path):
    ckpt = build("model_checkpoint", tmp_path, monitor="val/acc", mode="max")
    fit(TwoScripted([1.0, 1.0, 1.0], [0.1, 0.3, 0.2]), ckpt, 3, tmp_path)
    assert torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == 0


def test_checkpoint_without_tiebreak_keeps_the_first_best_epoch(tmp_path):
    ckpt = build("model_checkpoint", tmp_path, monitor="val/acc", mode="max", tiebreak=None)
    fit(TwoScripted(*SATURATED), ckpt, 5, tmp_path)
    assert torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == 0


def test_checkpoint_top_k_ranks_ties_by_validation_loss(tmp_path):
    ckpt = build("model_checkpoint", tmp_path, monitor="val/acc", mode="max", save_top_k=2)
    fit(TwoScripted(*SATURATED), ckpt, 5, tmp_path)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("best-*.ckpt"))
    assert kept == ["best-1.ckpt", "best-3.ckpt"]  # the two epochs at 1.0 with the lowest losses (0.30, 0.25)
    assert ckpt[0].best_model_path.endswith("best-3.ckpt")


def test_reduce_lr_on_plateau_multiplies_the_rate_after_patience(tmp_path):
    cb = build("reduce_lr_on_plateau", tmp_path, monitor="val/loss", mode="min", factor=0.5, patience=2)
    trainer = fit(Scripted([3, 2, 2, 2, 2, 2]), [cb], 6, tmp_path)
    # no improvement after epoch 1: reductions after epochs 3 and 5
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 * 0.5)


def test_ema_weights_differ_from_raw_and_are_saved(tmp_path):
    ema = build("ema", tmp_path, decay=0.9)
    ckpt = build("model_checkpoint", tmp_path, monitor="val/loss", mode="min")
    module = Scripted([1.0])
    fit(module, [ema, *ckpt], 3, tmp_path)
    raw = module.layer.weight.detach()
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]["layer.weight"]
    assert torch.allclose(saved, ema.shadow["layer.weight"])
    assert not torch.allclose(saved, raw)


def test_terminate_on_nan_fails_the_run_and_names_the_step(make_config, out_dir):
    composed = make_config("data=regression", "loss=mse", "optimizer=sgd", "optimizer.lr=1e12",
                           "+callbacks.terminate_on_nan={}", "trainer.max_epochs=3")
    with pytest.raises(RuntimeError, match="the training loss became (nan|inf) in epoch 0"):
        train(composed.config, composed.overrides)
    (run_dir,) = out_dir.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "optimizer.lr" in summary["error"]


def test_checkpoint_tiebreak_naming_no_logged_metric_is_refused(tmp_path):
    ckpt = build("model_checkpoint", tmp_path, monitor="val/acc", mode="max", tiebreak="val/lss")
    with pytest.raises(DlcliError, match=r"tiebreak: this run logs no 'val/lss' \(it logs val/acc, val/loss\)"):
        fit(TwoScripted(*SATURATED), ckpt, 2, tmp_path)


def test_a_run_whose_val_acc_saturates_in_epoch_one_tests_the_lowest_loss_epoch(make_config, tmp_path):
    """Two far-apart clusters: val/acc is 1.0 from the first epoch on, while val/loss goes on falling."""
    import csv

    import numpy as np

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-4, 1, (100, 2)), rng.normal(4, 1, (100, 2))]).astype("f4")
    y = np.repeat([0, 1], 100)
    np.savez(tmp_path / "easy.npz", x=x, y=y)
    result = train(make_config("data=npz", f"data.path={tmp_path / 'easy.npz'}", "trainer.max_epochs=6",
                               "threads=1").config)
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    acc = [float(r["val/acc"]) for r in rows]
    loss = [float(r["val/loss"]) for r in rows]
    assert acc[0] == 1.0 and max(acc) == 1.0
    best = min((e for e, a in enumerate(acc) if a == 1.0), key=lambda e: loss[e])
    assert best > 0  # the loss fell after the first epoch
    assert torch.load(result.run_dir / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == best
    assert json.loads((result.run_dir / "summary.json").read_text())["best"]["epoch"] == best
