"""The shipped experiment presets reach what their comments promise."""

from __future__ import annotations

import numpy as np
import pytest

from dlcli.training.build import load_data
from dlcli.training.train import train


@pytest.mark.slow
def test_digits_cnn_beats_svc_on_the_same_split(make_config):
    from sklearn.svm import SVC

    composed = make_config("experiment=digits_cnn")
    result = train(composed.config, composed.overrides)
    cnn_acc = result.metrics["test/acc"]
    assert cnn_acc >= 0.99

    # scikit-learn's SVC, side by side: same rows, same scaling, same test split
    prepared = load_data(composed.config)
    (x_train, y_train), (x_test, y_test) = prepared.splits["train"], prepared.splits["test"]
    svc = SVC().fit(x_train.reshape(len(x_train), -1), y_train)
    svc_acc = float(np.mean(svc.predict(x_test.reshape(len(x_test), -1)) == y_test))
    assert 0.95 < svc_acc < cnn_acc


@pytest.mark.slow
def test_text_gru_learns_the_reviews(make_config):
    composed = make_config("experiment=text_gru", "trainer.max_epochs=6")
    result = train(composed.config, composed.overrides)
    assert result.metrics["test/acc"] >= 0.9


@pytest.mark.slow  # ~10 s of training
def test_digits_autoencoder_flags_the_held_out_digit(make_config):
    composed = make_config("experiment=digits_autoencoder")
    prepared = load_data(composed.config)
    y_train, y_val, y_test = (prepared.splits[k][1] for k in ("train", "val", "test"))
    assert y_train.sum() == 0 and y_val.sum() == 0  # no zeros seen while training or validating
    assert y_test.sum() == 178  # every zero of the 1,797 digits is in the test split
    assert prepared.out_features == 64  # it reconstructs the whole 1x8x8 image
    result = train(composed.config, composed.overrides)
    assert result.summary["task"] == "reconstruction" and result.best["monitor"] == "val/loss"
    assert result.metrics["test/anomaly_auroc"] >= 0.9


@pytest.mark.slow
def test_multilabel_with_bce(make_config):
    result = train(*_config(make_config, "data=multilabel", "loss=bce"))
    assert result.summary["task"] == "multilabel"
    assert result.metrics["test/acc"] >= 0.78 and result.metrics["test/f1"] >= 0.6


def _config(make_config, *overrides):
    composed = make_config(*overrides)
    return composed.config, composed.overrides


def test_sgd_nesterov_with_onecycle_records_the_lr_curve(make_config):
    import csv

    result = train(*_config(make_config, "optimizer=sgd", "optimizer.momentum=0.9", "optimizer.nesterov=true",
                            "scheduler=onecycle", "trainer.max_epochs=6", "~callbacks.early_stopping"))
    lrs = [float(r["lr"]) for r in csv.DictReader((result.run_dir / "metrics.csv").open())]
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1  # up, then down: one cycle
    assert lrs[0] < max(lrs) / 5 and lrs[-1] < max(lrs) / 5
    assert result.metrics["test/acc"] > 0.9
